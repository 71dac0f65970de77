"""Tests of analysis/: numbers against hand-computed values, invariants, degenerate input.

The synthetic tables are built so the right answers are known in closed form:
  * flops_measured = budget, and every budget has the same shape grid, so shape
    effects are balanced across budgets and OLS slopes against compute are exact;
  * val_loss = c_arch - s_arch·ln F + K·(ln params - ln P_STAR)², so the IsoFLOP
    optimum over params is P_STAR and the scaling-rate ratio is s_ebt/s_tpp - 1;
  * creativity at the default decoding = 0.02·(F/1e15)^0.1·(1 - 0.05·(ln params - ln P_STAR)²),
    so its compute exponent is 0.1 and its IsoFLOP maximum is at P_STAR;
  * novelty_valid = 3 - 0.2·level, so the trade-off slope is -0.2.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from analysis import fits, isoflop, pareto, plots, powerlaw, tradeoff

BUDGETS = [1e15, 1e16, 1e17]
SHAPES = [(2, 96), (4, 128), (6, 160), (8, 192), (12, 320)]  # (depth, width); 4 distinct d/L
P_STAR = 12 * 5 * 160**2  # inside the grid of params = 12·depth·width²
SLOPE = {"tpp": 0.10, "ebt": 0.13}  # d val_loss / d ln F; ratio 0.13/0.10 - 1 = 0.3
K_LOSS = 0.02
DECODINGS = {
    "tpp": [("greedy", "greedy", np.nan, np.nan, 1.0), ("temp1.0_k8", "sample", np.nan, 8, 0.8)],
    "ebt": [("think_x1", "think", 1, np.nan, 1.0), ("think_x2", "think", 2, np.nan, 1.1),
            ("verify_m4", "verify", 1, 4, 1.2)],
}  # name, family, steps_multiplier, num_candidates, creativity factor
LEVELS = [1, 2, 3, 4]
ERR = plots.ERROR_COLUMNS


def params_of(depth, width):
    return 12 * depth * width**2


def make_runs(archs=("tpp", "ebt"), budgets=BUDGETS, shapes=SHAPES, with_diverged=True) -> pd.DataFrame:
    rows = []
    for arch in archs:
        for budget in budgets:
            for depth, width in shapes:
                n = params_of(depth, width)
                loss = 5.0 - SLOPE[arch] * math.log(budget) + K_LOSS * (math.log(n) - math.log(P_STAR)) ** 2
                rows.append(dict(run_id=f"{arch}-{budget:.0e}-{depth}x{width}-s0", arch=arch,
                                 variant="tpp" if arch == "tpp" else "system2", depth=depth, width=width,
                                 heads=max(depth // 2, 1), params=n, params_with_embeddings=n + 1000 * width,
                                 budget=budget, seed=0, flops_per_step_measured=budget / 100, flops_measured=budget,
                                 flops_6nd=budget, flops_analytic=budget, tokens=budget / (6 * n), steps=100,
                                 train_loss=loss - 0.01, val_loss=loss, status="ok", diverged_step=np.nan,
                                 wall_seconds=10.0))
        if with_diverged:  # an extra seed that blew up; the ok grid stays balanced
            bad = dict(rows[-1], run_id=f"{arch}-diverged", seed=1, status="diverged", diverged_step=40,
                       val_loss=np.nan, train_loss=np.nan)
            rows.append(bad)
    return pd.DataFrame(rows)


def make_metrics(runs: pd.DataFrame, zero_creativity=False) -> pd.DataFrame:
    rows = []
    for r in runs.itertuples(index=False):
        shape_term = 1 - 0.05 * (math.log(r.params) - math.log(P_STAR)) ** 2
        base = 0.0 if zero_creativity else 0.02 * (r.flops_measured / 1e15) ** 0.1 * shape_term
        validity = 0.5 * (r.flops_measured / 1e15) ** 0.05
        for name, family, steps_mult, m, factor in DECODINGS[r.arch]:
            for level in [0, *LEVELS]:
                errs = dict.fromkeys(ERR, 0.0) | {"err_none": validity, "err_parse": 1 - validity}
                rows.append(dict(
                    run_id=r.run_id, arch=r.arch, variant=r.variant, budget=r.budget, depth=r.depth,
                    width=r.width, seed=r.seed, flops_measured=r.flops_measured, params=r.params,
                    decoding=name, decoding_family=family, steps_multiplier=steps_mult, num_candidates=m,
                    temperature=np.nan, beta=np.nan, noise_sigma=np.nan, level=level, n_samples=100,
                    n_prompts=100, validity=validity,
                    novelty_valid=3.0 - 0.2 * level if level else 2.5,
                    utility=0.5 * level * factor if level else 1.0,
                    utility_soft=0.5, creativity=base * factor, copy_rate=0.1, combinatorial_novelty=0.3,
                    diversity_jaccard=0.4, diversity_edit=0.4, **errs))
    return pd.DataFrame(rows)


def make_samples(runs: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for r in runs.itertuples(index=False):
        for p in range(3):
            ebt = r.arch == "ebt"
            rows.append(dict(run_id=r.run_id, decoding="think_x1" if ebt else "greedy", prompt_id=p, level=1,
                             walk=["a", "r", "b"], valid=True, error_type="none", hops=1, novelty=2.0,
                             utility=1.0, utility_soft=1.0, creativity=2.0, copied=False,
                             combinatorial_novelty=0.0, mean_logprob=np.nan if ebt else -1.0,
                             mean_energy=1.0 if ebt else np.nan,
                             energy_by_step=[3.0 - p * 0.1, 2.0, 1.5] if ebt else []))
    return pd.DataFrame(rows)


def make_curves(runs: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for r in runs.itertuples(index=False):
        for step in range(1, 6):
            rows.append(dict(run_id=r.run_id, arch=r.arch, step=step, tokens=step * 1000,
                             train_loss=4.0 / step, val_loss=4.0 / step if step % 2 else np.nan, lr=1e-3))
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def tables():
    runs = make_runs()
    return runs, make_metrics(runs)


@pytest.fixture(scope="module")
def fit_table(tables):
    runs, metrics = tables
    return fits.compute_fits(runs, metrics, n_boot=200, seed=0)


def pick(df, **match) -> pd.DataFrame:
    mask = np.ones(len(df), dtype=bool)
    for col, value in match.items():
        mask &= df[col] == value
    return df[mask]


# ---------------------------------------------------------------- powerlaw

def test_power_law_recovers_exact_law_and_counts_dropped():
    x = np.array([1e15, 1e16, 1e17, 1e18, 1e19])
    y = 3.0 * x**0.25
    y_with_bad = np.r_[y, 0.0, -1.0, np.nan]
    fit = powerlaw.fit_power_law(np.r_[x, 1e15, 1e16, 1e17], y_with_bad)
    assert fit.exponent == pytest.approx(0.25, rel=1e-9)
    assert fit.prefactor == pytest.approx(3.0, rel=1e-6)
    assert (fit.n_points, fit.n_dropped) == (5, 3)
    assert fit.exponent_ci[0] <= 0.25 <= fit.exponent_ci[1]


def test_power_law_ols_ci_matches_hand_computation():
    # log y = [0, 1, 1, 2] against log x = [0, 1, 2, 3]: slope 0.6, residuals [0.1,0.5,-0.1,...]
    lx = np.array([0.0, 1, 2, 3])
    ly = np.array([0.0, 1, 1, 2])
    fit = powerlaw.fit_power_law(np.exp(lx), np.exp(ly))
    slope = 0.6
    resid = ly - (0.1 + slope * lx)
    se = math.sqrt(resid @ resid / 2 / np.sum((lx - lx.mean()) ** 2))
    half = 4.302652729911275 * se  # t_{0.975, df=2}
    assert fit.exponent == pytest.approx(slope)
    assert fit.prefactor == pytest.approx(math.exp(0.1))
    assert fit.exponent_ci == pytest.approx((slope - half, slope + half))


def test_power_law_degenerate_inputs_give_nan_with_note():
    all_zero = powerlaw.fit_power_law([1, 2, 3], [0, 0, 0])
    assert math.isnan(all_zero.exponent) and all_zero.n_dropped == 3 and "distinct x" in all_zero.note
    one_x = powerlaw.fit_power_law([5, 5, 5], [1, 2, 3])
    assert math.isnan(one_x.exponent)
    two = powerlaw.fit_power_law([1, 10], [1, 100])
    assert two.exponent == pytest.approx(2) and math.isnan(two.exponent_ci[0]) and "2 points" in two.note


def test_bootstrap_is_reproducible_and_covers_truth():
    rng = np.random.default_rng(1)
    x = np.geomspace(1e15, 1e19, 40)
    y = 2.0 * x**0.3 * np.exp(rng.normal(0, 0.05, len(x)))
    b1, a1 = powerlaw.bootstrap_power_law(x, y, n_boot=500, seed=7)
    b2, _ = powerlaw.bootstrap_power_law(x, y, n_boot=500, seed=7)
    b3, _ = powerlaw.bootstrap_power_law(x, y, n_boot=500, seed=8)
    assert b1 == b2 and b1 != b3
    assert b1.n_boot == 500 and b1.seed == 7
    assert b1.low < 0.3 < b1.high and b1.high - b1.low < 0.05
    assert a1.low < a1.high


def test_bootstrap_skips_unfittable_resamples():
    # Two distinct x among 3 points: resamples drawing one x only cannot be fitted.
    ci, _ = powerlaw.bootstrap_power_law([1, 1, 10], [1, 1, 10], n_boot=300, seed=0)
    assert 0 < ci.n_boot < 300
    assert ci.low == pytest.approx(1.0) and ci.high == pytest.approx(1.0)  # every fit is exact: slope 1


def test_saturating_power_law_recovers_floor():
    x = np.geomspace(1e15, 1e20, 12)
    y = 1.8 + 4e3 * x ** (-0.3)
    fit = powerlaw.fit_saturating_power_law(x, y)
    assert fit.E == pytest.approx(1.8, rel=1e-4)
    assert fit.A == pytest.approx(4e3, rel=1e-3)
    assert fit.b == pytest.approx(0.3, rel=1e-4)
    few = powerlaw.fit_saturating_power_law([1, 2, 3], [3, 2, 1])
    assert math.isnan(few.E) and "4 distinct" in few.note


def test_scaling_rate_ratio_exact(tables):
    runs, _ = tables
    ok = fits.ok_runs(runs)
    rate = powerlaw.scaling_rate_ratio(ok, "flops_measured", n_boot=100, seed=0)
    assert rate.slope_tpp == pytest.approx(-SLOPE["tpp"])
    assert rate.slope_ebt == pytest.approx(-SLOPE["ebt"])
    assert rate.ratio == pytest.approx(0.3)
    assert rate.ci.low <= rate.ratio <= rate.ci.high and rate.ci.n_boot > 0


def test_scaling_rate_missing_arch_is_nan():
    runs = fits.ok_runs(make_runs(archs=("tpp",)))
    rate = powerlaw.scaling_rate_ratio(runs, "params", n_boot=10, seed=0)
    assert math.isnan(rate.ratio) and rate.n_ebt == 0 and "not identified" in rate.note


# ---------------------------------------------------------------- isoflop

def test_isoflop_vertex_of_exact_parabola_and_edge_distance():
    shapes = np.array([1.0, 2, 4, 8, 16])
    u = np.log(shapes)
    loss = 2 + (u - math.log(3.0)) ** 2
    opt = isoflop.fit_isoflop(shapes, loss, maximize=False)
    assert opt.method == "parabola"
    assert opt.optimum == pytest.approx(3.0)
    assert opt.metric_at_optimum == pytest.approx(2.0)
    assert opt.edge_distance == pytest.approx(math.log(3.0) - 0.0)  # nearer edge is shape 1
    assert opt.best_grid_point == 4.0  # |ln4 - ln3| < |ln2 - ln3|


def test_isoflop_vertex_outside_grid_has_negative_edge_distance():
    shapes = np.array([1.0, 2, 4])
    u = np.log(shapes)
    creativity = 1 - (u - math.log(8.0)) ** 2
    opt = isoflop.fit_isoflop(shapes, creativity, maximize=True)
    assert opt.optimum == pytest.approx(8.0)
    assert opt.edge_distance == pytest.approx(math.log(4.0) - math.log(8.0))


def test_isoflop_wrong_curvature_and_too_few_shapes():
    shapes = np.array([1.0, 2, 4, 8])
    bowl = np.log(shapes) ** 2
    no_max = isoflop.fit_isoflop(shapes, bowl, maximize=True)
    assert no_max.method == "no_interior_optimum" and math.isnan(no_max.optimum)
    # Two shapes, two seeds each: best grid point by the per-shape mean (4 has mean 0.5 < 0.6).
    fb = isoflop.fit_isoflop([2, 2, 4, 4], [0.5, 0.7, 0.4, 0.6], maximize=False)
    assert fb.method == "best_grid_point" and fb.optimum == 4 and fb.metric_at_optimum == pytest.approx(0.5)
    assert "2 distinct" in fb.note
    empty = isoflop.fit_isoflop([], [], maximize=False)
    assert empty.method == "no_data"


def test_isoflop_optima_per_budget_on_synthetic_runs(tables):
    runs, _ = tables
    out = isoflop.isoflop_optima(fits.ok_runs(runs), "val_loss", "params", maximize=False)
    assert len(out) == 2 * len(BUDGETS)
    assert (out["method"] == "parabola").all()
    np.testing.assert_allclose(out["optimum"], P_STAR, rtol=1e-8)
    assert (out["edge_distance"] > 0).all()
    ratio = isoflop.shape_values(pd.DataFrame({"width": [256], "depth": [4]}), "width_depth_ratio")
    assert ratio.iloc[0] == 64
    with pytest.raises(ValueError, match="unknown shape axis"):
        isoflop.shape_values(runs, "heads")


# ---------------------------------------------------------------- pareto

def test_pareto_mask_hand_examples_with_ties_and_duplicates():
    x = np.array([3, 2, 1, 2, 3, 1, 0.5, np.nan, 3])
    y = np.array([1, 2, 3, 1, 1, 1, 0.5, 9.0, 0.5])
    # (3,1) twice: duplicates, both on the front. (2,1): beaten by (2,2). (1,1): beaten by (1,3).
    # (0.5,0.5): beaten. NaN: never on the front. (3,0.5): tied x with (3,1), worse y.
    expected = [True, True, True, False, True, False, False, False, False]
    np.testing.assert_array_equal(pareto.pareto_front_mask(x, y), expected)


def test_pareto_mask_matches_brute_force():
    rng = np.random.default_rng(0)
    x = rng.integers(0, 5, 60).astype(float)  # small integer grid: many ties
    y = rng.integers(0, 5, 60).astype(float)
    dominated = [
        any((x[j] >= x[i]) and (y[j] >= y[i]) and ((x[j] > x[i]) or (y[j] > y[i])) for j in range(len(x)))
        for i in range(len(x))
    ]
    np.testing.assert_array_equal(pareto.pareto_front_mask(x, y), ~np.array(dominated))


def test_hypervolume_hand_examples():
    # Staircase (3,1), (2,2), (1,3) over (0,0): 3·1 + 2·1 + 1·1 = 6.
    assert pareto.hypervolume_2d([3, 2, 1], [1, 2, 3]) == pytest.approx(6.0)
    # Dominated points and duplicates add nothing.
    assert pareto.hypervolume_2d([3, 2, 1, 1, 3], [1, 2, 3, 1, 1]) == pytest.approx(6.0)
    # Reference (1,1): (3,1) and (1,3) are not strictly better than it; (2,2) adds 1·1.
    assert pareto.hypervolume_2d([3, 2, 1], [1, 2, 3], reference=(1, 1)) == pytest.approx(1.0)
    assert pareto.hypervolume_2d([], []) == 0.0


def test_pareto_fronts_grouped_summary():
    pts = pd.DataFrame({"g": ["a"] * 3 + ["b"] * 2, "novelty_valid": [3, 2, 1, 1, 1], "utility": [1, 2, 3, 1, 1]})
    marked, summary = pareto.pareto_fronts(pts, by=["g"])
    assert summary.set_index("g")["hypervolume"].to_dict() == pytest.approx({"a": 6.0, "b": 1.0})
    assert summary.set_index("g")["n_front"].to_dict() == {"a": 3, "b": 2}
    assert marked["on_front"].all()


# ---------------------------------------------------------------- tradeoff

def test_tradeoff_slope_exact_and_nan_levels_skipped():
    s = tradeoff.novelty_level_slope([1, 2, 3, 4, 5], [3.0, 2.8, 2.6, np.nan, 2.2])
    assert s.slope == pytest.approx(-0.2) and s.n_levels == 4
    assert s.ci_low == pytest.approx(-0.2) and s.ci_high == pytest.approx(-0.2)  # zero residuals
    noisy = tradeoff.novelty_level_slope([1, 2, 3, 4], [3.0, 2.9, 2.5, 2.4])
    # Hand: slope = Σdx·dy/Σdx² = (-1.5·.3 - .5·.2 + .5·(-.2) + 1.5·(-.3))/5 = -0.22
    assert noisy.slope == pytest.approx(-0.22)
    assert noisy.ci_low < -0.22 < noisy.ci_high
    one = tradeoff.novelty_level_slope([1, 2], [3.0, np.nan])
    assert math.isnan(one.slope) and "need >= 2" in one.note


def test_tradeoff_slopes_per_run_and_decoding(tables):
    runs, metrics = tables
    out = tradeoff.tradeoff_slopes(metrics)
    assert len(out) == metrics.groupby(["run_id", "decoding"]).ngroups
    np.testing.assert_allclose(out["slope"], -0.2)
    assert (out["n_levels"] == len(LEVELS)).all()


# ---------------------------------------------------------------- fits

def test_fits_columns_and_kinds(fit_table):
    assert list(fit_table.columns) == fits.COLUMNS
    assert set(fit_table["kind"]) == {"power_law", "saturating_power_law", "isoflop_optimum", "isoflop_power_law",
                                      "scaling_rate", "tradeoff_slope", "pareto_hypervolume", "pareto_front"}
    assert set(zip(fit_table["arch"], fit_table["variant"])) >= {("tpp", "tpp"), ("ebt", "system2")}


def test_fits_power_laws(fit_table):
    law = pick(fit_table, kind="power_law", arch="tpp", decoding="greedy", metric="creativity")
    exp = law.set_index("parameter").loc["exponent"]
    pre = law.set_index("parameter").loc["prefactor"]
    assert exp["estimate"] == pytest.approx(0.1, rel=1e-9)
    # ln creativity = ln 0.02 - 0.1 ln 1e15 + 0.1 ln F + mean over shapes of ln(shape_term)
    shape_terms = [1 - 0.05 * (math.log(params_of(d, w)) - math.log(P_STAR)) ** 2 for d, w in SHAPES]
    expected_pre = 0.02 * 1e15**-0.1 * math.exp(np.mean(np.log(shape_terms)))
    assert pre["estimate"] == pytest.approx(expected_pre, rel=1e-6)
    assert exp["ci_low"] <= 0.1 <= exp["ci_high"] and exp["ols_ci_low"] <= 0.1 <= exp["ols_ci_high"]
    assert exp["n"] == len(BUDGETS) * len(SHAPES) and exp["n_dropped"] == 0
    assert exp["n_excluded_diverged"] == 1 and exp["n_boot"] == 200 and exp["ci_method"] == "bootstrap_percentile"
    # The saturating form is fitted to one run per budget; 3 budgets cannot fix 3 parameters + noise.
    sat = pick(fit_table, kind="saturating_power_law")
    assert len(sat) == 2 * 3 and sat["estimate"].isna().all() and (sat["n"] == len(BUDGETS)).all()
    assert sat["note"].str.contains(">= 4 distinct x").all()
    val = pick(fit_table, kind="power_law", arch="ebt", metric="val_loss", parameter="exponent")
    assert len(val) == 1 and val["decoding"].item() == fits.NO_DECODING
    # One (arch, decoding) pair per decoding in the data, two metrics, two parameters.
    n_pairs = sum(len(v) for v in DECODINGS.values())
    assert len(pick(fit_table, kind="power_law").query("metric != 'val_loss'")) == n_pairs * 2 * 2


def test_fits_isoflop_optima(fit_table):
    iso = pick(fit_table, kind="isoflop_optimum", parameter="optimum", x="params")
    loss = iso[iso["metric"] == "val_loss"]
    creat = iso[iso["metric"] == "creativity"]
    assert len(loss) == len(creat) == 2 * len(BUDGETS)
    np.testing.assert_allclose(loss["estimate"], P_STAR, rtol=1e-8)
    np.testing.assert_allclose(creat["estimate"], P_STAR, rtol=1e-8)
    assert set(creat["decoding"]) == {"greedy", "think_x1"}
    # Every shape axis appears, each with an edge distance row.
    for axis in isoflop.SHAPE_AXES:
        assert len(pick(fit_table, kind="isoflop_optimum", x=axis, parameter="edge_distance")) == 4 * len(BUDGETS)
    # The diverged run sits in the largest budget.
    top = pick(loss, budget=BUDGETS[-1])
    assert (top["n_excluded_diverged"] == 1).all()


def test_fits_scaling_rate_and_tradeoff(fit_table):
    rate = pick(fit_table, kind="scaling_rate", x="flops_measured", parameter="ratio")
    assert rate["estimate"].item() == pytest.approx(0.3)
    assert rate["ci_low"].item() <= 0.3 <= rate["ci_high"].item()
    assert rate["n_excluded_diverged"].item() == 2
    assert len(pick(fit_table, kind="scaling_rate", x="params", parameter="ratio")) == 1
    slopes = pick(fit_table, kind="tradeoff_slope")
    np.testing.assert_allclose(slopes["estimate"], -0.2)
    assert not slopes["run_id"].str.contains("diverged").any()


def test_fits_pareto(fit_table, tables):
    runs, metrics = tables
    hv = pick(fit_table, kind="pareto_hypervolume", parameter="hypervolume")
    assert len(hv) == 2 * len(BUDGETS)
    # Hand value for EBT: front over levels 1-4 is verify_m4 (factor 1.2) at each level:
    # points (3-0.2l, 0.6l), l=1..4 -> staircase x=[2.8,2.6,2.4,2.2], y steps of 0.6.
    expected_ebt = 0.6 * (2.8 + 2.6 + 2.4 + 2.2)
    np.testing.assert_allclose(pick(hv, arch="ebt")["estimate"], expected_ebt)
    front = pick(fit_table, kind="pareto_front", arch="ebt", budget=BUDGETS[0])
    # Every ok EBT run at that budget ties on the front: 5 shapes × 4 levels × 2 rows.
    assert len(front) == len(SHAPES) * len(LEVELS) * 2
    assert set(front["decoding"]) == {"verify_m4"}


def test_fits_degenerate_inputs_do_not_crash():
    # One run per arch.
    one = make_runs(budgets=[1e16], shapes=[(4, 128)], with_diverged=False)
    out = fits.compute_fits(one, make_metrics(one), n_boot=20, seed=0)
    laws = pick(out, kind="power_law")
    assert laws["estimate"].isna().all() and (laws["note"] != "").all()
    assert pick(out, kind="scaling_rate", parameter="ratio")["estimate"].isna().all()
    assert set(pick(out, kind="isoflop_optimum")["method"]) == {"best_grid_point"}

    # All-zero creativity: every point dropped, NaN with a note; validity still fits.
    runs = make_runs()
    out = fits.compute_fits(runs, make_metrics(runs, zero_creativity=True), n_boot=20, seed=0)
    creat = pick(out, kind="power_law", metric="creativity", parameter="exponent")
    assert creat["estimate"].isna().all()
    assert (creat["n_dropped"] == len(BUDGETS) * len(SHAPES)).all() and (creat["n"] == 0).all()
    assert pick(out, kind="power_law", metric="validity", parameter="exponent")["estimate"].notna().all()
    assert (pick(out, kind="isoflop_optimum", metric="creativity")["method"] == "no_interior_optimum").all()

    # A single budget: the compute exponent is not identified, the IsoFLOP optimum is.
    single = make_runs(budgets=[1e16])
    out = fits.compute_fits(single, make_metrics(single), n_boot=20, seed=0)
    law = pick(out, kind="power_law", parameter="exponent")
    assert law["estimate"].isna().all() and law["note"].str.contains("1 budget").all()
    opt = pick(out, kind="isoflop_optimum", metric="val_loss", x="params", parameter="optimum")
    np.testing.assert_allclose(opt["estimate"], P_STAR, rtol=1e-8)

    # No metrics at all.
    empty = fits.compute_fits(runs, make_metrics(runs).iloc[:0], n_boot=20, seed=0)
    assert list(empty.columns) == fits.COLUMNS


def test_fits_round_trip_parquet(fit_table, tmp_path):
    path = tmp_path / "fits.parquet"
    fit_table.to_parquet(path, index=False)
    back = pd.read_parquet(path)
    assert back.shape == fit_table.shape


# ---------------------------------------------------------------- plots

def _plot_calls(runs, metrics, samples, curves):
    return {
        "compute_scaling": lambda p: plots.plot_compute_scaling(runs, metrics, p, n_boot=50),
        "isoflop_loss": lambda p: plots.plot_isoflop(runs, metrics, p, metric="val_loss", axes=("params",)),
        "isoflop_creativity": lambda p: plots.plot_isoflop(runs, metrics, p, metric="creativity",
                                                           axes="width_depth_ratio"),
        "pareto": lambda p: plots.plot_pareto_fronts(runs, metrics, p),
        "novelty_level": lambda p: plots.plot_novelty_by_level(runs, metrics, p),
        "errors": lambda p: plots.plot_error_shares(runs, metrics, p),
        "thinking": lambda p: plots.plot_thinking_curves(runs, metrics, p),
        "energy": lambda p: plots.plot_energy_descent(runs, samples, p),
        "loss_curves": lambda p: plots.plot_loss_curves(runs, curves, p),
    }


PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("case", ["full", "empty", "one_run_per_arch"])
def test_plots_write_pngs_atomically(tables, tmp_path, case):
    runs, metrics = tables
    if case == "one_run_per_arch":
        runs = make_runs(budgets=[1e16], shapes=[(4, 128)], with_diverged=False)
        metrics = make_metrics(runs, zero_creativity=True)
    samples, curves = make_samples(runs), make_curves(runs)
    if case == "empty":  # right columns, no rows
        runs, metrics, samples, curves = (t.iloc[:0] for t in (runs, metrics, samples, curves))
    for name, call in _plot_calls(runs, metrics, samples, curves).items():
        out = call(tmp_path / f"{name}.png")
        assert out.read_bytes()[:8] == PNG_MAGIC, name
    # Atomic writes leave no temp files behind.
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(f"{n}.png" for n in _plot_calls(runs, metrics, samples, curves))


def test_fits_saturating_law_on_compute_frontier():
    budgets = [1e15, 1e16, 1e17, 1e18, 1e19]
    runs = make_runs(archs=("tpp",), budgets=budgets, with_diverged=False)
    # Best shape at each budget follows 1.8 + 50·F^-0.1; other shapes are worse by a margin.
    best = runs["params"] == params_of(*SHAPES[2])
    runs["val_loss"] = 1.8 + 50 * runs["flops_measured"] ** -0.1 + np.where(best, 0.0, 0.5)
    out = fits.compute_fits(runs, make_metrics(runs), n_boot=10, seed=0)
    sat = pick(out, kind="saturating_power_law").set_index("parameter")["estimate"]
    assert sat["E"] == pytest.approx(1.8, rel=1e-4)
    assert sat["A"] == pytest.approx(50, rel=1e-3)
    assert sat["b"] == pytest.approx(0.1, rel=1e-3)


# ---------------------------------------------------------------- (arch, variant), Approach 2, bootstrap CIs

SLOPE_BY_VARIANT = {"tpp": 0.10, "system1": 0.12, "system2": 0.13}  # ratios vs tpp: 0.2 and 0.3


def make_two_variant_runs(budgets=BUDGETS, opt_exponent=0.0) -> pd.DataFrame:
    """tpp plus both EBT variants with different loss slopes; optimum params P_STAR·(F/1e16)^opt_exponent."""
    frames = []
    for arch, variant in (("tpp", "tpp"), ("ebt", "system1"), ("ebt", "system2")):
        runs = make_runs(archs=(arch,), budgets=budgets, with_diverged=(variant == "system1"))
        runs["variant"] = variant
        runs["run_id"] = runs["run_id"] + f"-{variant}"
        p_opt = P_STAR * (runs["budget"] / 1e16) ** opt_exponent
        runs["val_loss"] = (7.0 - SLOPE_BY_VARIANT[variant] * np.log(runs["budget"])
                            + K_LOSS * (np.log(runs["params"]) - np.log(p_opt)) ** 2)
        runs.loc[runs["status"] != "ok", "val_loss"] = np.nan
        frames.append(runs)
    return pd.concat(frames, ignore_index=True)


@pytest.fixture(scope="module")
def two_variant_fits():
    runs = make_two_variant_runs()
    return fits.compute_fits(runs, make_metrics(runs), n_boot=50, seed=0)


def test_arch_label():
    assert fits.arch_label("tpp", "tpp") == "tpp"
    assert fits.arch_label("ebt", "system1") == "ebt-system1"
    assert fits.arch_label("ebt", np.nan) == "ebt"
    labelled = fits.with_labels(pd.DataFrame({"arch": ["tpp", "ebt", "ebt"], "variant": ["tpp", "system2", None]}))
    assert list(labelled[fits.LABEL]) == ["tpp", "ebt-system2", "ebt"]
    assert list(labelled["variant"]) == ["tpp", "system2", "ebt"]


def test_fits_never_pool_ebt_variants(two_variant_fits):
    out = two_variant_fits
    law = pick(out, kind="power_law", metric="val_loss", parameter="exponent")
    assert sorted(zip(law["arch"], law["variant"])) == [("ebt", "system1"), ("ebt", "system2"), ("tpp", "tpp")]
    # Each variant's own grid only (pooled, n would be 30), and only its own diverged run counted.
    assert (law["n"] == len(BUDGETS) * len(SHAPES)).all()
    assert pick(law, variant="system1")["n_excluded_diverged"].item() == 1
    assert pick(law, variant="system2")["n_excluded_diverged"].item() == 0
    # val_loss = c - s·ln F + shape term: slope in ln F is -s, so F-exponent of the power law differs by variant.
    slopes = pick(out, kind="scaling_rate", x="flops_measured", parameter="slope").set_index("variant")["estimate"]
    assert slopes.to_dict() == pytest.approx({v: -s for v, s in SLOPE_BY_VARIANT.items()})
    ratio = pick(out, kind="scaling_rate", x="flops_measured", parameter="ratio").set_index("variant")
    assert ratio["estimate"].to_dict() == pytest.approx({"system1/tpp": 0.2, "system2/tpp": 0.3})
    assert (ratio["arch"] == "ebt/tpp").all() and (ratio["n_boot"] > 0).all()
    hv = pick(out, kind="pareto_hypervolume", parameter="hypervolume")
    assert len(hv) == 3 * len(BUDGETS)
    iso = pick(out, kind="isoflop_optimum", metric="val_loss", x="params", parameter="optimum")
    assert len(iso) == 3 * len(BUDGETS)


def test_isoflop_power_law_through_optima(two_variant_fits):
    # The optimum is P_STAR at every budget: exponent 0, prefactor P_STAR, per (arch, variant).
    law = pick(two_variant_fits, kind="isoflop_power_law", metric="val_loss")
    assert len(law) == 3 * 2 and (law["x"] == "budget").all()
    exp = law[law["parameter"] == "exponent"]
    pre = law[law["parameter"] == "prefactor"]
    np.testing.assert_allclose(exp["estimate"], 0.0, atol=1e-9)
    np.testing.assert_allclose(pre["estimate"], P_STAR, rtol=1e-6)
    assert (exp["n"] == len(BUDGETS)).all() and (exp["n_boot"] > 0).all()


def test_isoflop_power_law_needs_two_interior_budgets():
    single = make_runs(budgets=[1e16])
    out = fits.compute_fits(single, make_metrics(single), n_boot=10, seed=0)
    law = pick(out, kind="isoflop_power_law")
    assert len(law) and law["estimate"].isna().all()
    assert law["note"].str.contains("1 budget").all()
    one_shape = make_runs(shapes=[(4, 128)])
    out = fits.compute_fits(one_shape, make_metrics(one_shape), n_boot=10, seed=0)
    law = pick(out, kind="isoflop_power_law")
    assert law["estimate"].isna().all() and law["note"].str.contains("without a parabola vertex").all()


def test_isoflop_power_law_leaves_out_extrapolated_vertices():
    # Optimum P_STAR·(F/1e16)^0.5, exact vertex of each parabola in ln params: 4.9e5, 1.5e6, 4.9e6
    # inside the grid (2.2e5 .. 1.47e7), 1.5e7 at 1e18 just beyond it.
    budgets = [1e15, 1e16, 1e17, 1e18]
    runs = make_two_variant_runs(budgets=budgets, opt_exponent=0.5)
    optima = isoflop.isoflop_optima(fits.with_labels(fits.ok_runs(runs)), "val_loss", "params", False)
    assert (optima.query("budget == 1e18")["edge_distance"] < 0).all()
    assert (optima.query("budget < 1e18")["edge_distance"] > 0).all()
    out = fits.compute_fits(runs, pd.DataFrame(), n_boot=10, seed=0)  # no metrics at all, not even columns
    law = pick(out, kind="isoflop_power_law", metric="val_loss").set_index(["variant", "parameter"])["estimate"]
    notes = pick(out, kind="isoflop_power_law", metric="val_loss")
    assert (notes["n"] == 3).all() and notes["note"].str.contains("1 vertex").all()
    for variant in SLOPE_BY_VARIANT:
        assert law[(variant, "exponent")] == pytest.approx(0.5, rel=1e-6)
        assert law[(variant, "prefactor")] == pytest.approx(P_STAR * 1e16**-0.5, rel=1e-5)


def test_bootstrap_vertex_exact_parabola_and_skips():
    shapes = np.repeat([1.0, 2, 4, 8, 16], 2)
    loss = 2 + (np.log(shapes) - math.log(3.0)) ** 2
    ci = isoflop.bootstrap_vertex(shapes, loss, maximize=False, n_boot=300, seed=0)
    # Every resample with >= 3 distinct shapes refits the exact parabola: vertex 3.
    assert ci.low == pytest.approx(3.0) and ci.high == pytest.approx(3.0)
    # Resamples of 10 points over 5 shapes with < 3 distinct shapes are rare but possible; all others count.
    assert 0 < ci.n_boot <= 300 and ci.seed == 0
    few = isoflop.bootstrap_vertex([1.0, 2, 4], [3, 2, 3], maximize=False, n_boot=100, seed=0)
    assert math.isnan(few.low) and few.n_boot == 0 and "needs >= 4" in few.note
    # 4 points over 4 shapes: a resample needs 3 distinct shapes, so some are skipped and counted.
    four = isoflop.bootstrap_vertex([1.0, 2, 4, 8], [3, 2, 2.1, 3.5], maximize=False, n_boot=400, seed=0)
    assert 0 < four.n_boot < 400 and "skipped" in four.note


def test_bootstrap_vertex_noisy_reproducible_and_in_fits(tables, fit_table):
    rng = np.random.default_rng(3)
    shapes = np.repeat([1.0, 2, 4, 8, 16], 4)
    y = (np.log(shapes) - math.log(4.0)) ** 2 + rng.normal(0, 0.05, len(shapes))
    a = isoflop.bootstrap_vertex(shapes, y, False, 500, seed=1)
    assert a == isoflop.bootstrap_vertex(shapes, y, False, 500, seed=1)
    assert a != isoflop.bootstrap_vertex(shapes, y, False, 500, seed=2)
    est = isoflop.fit_isoflop(shapes, y, False).optimum
    assert a.low < est < a.high and a.low < 4.0 < a.high
    opt = pick(fit_table, kind="isoflop_optimum", metric="val_loss", x="params", parameter="optimum")
    np.testing.assert_allclose(opt["ci_low"], P_STAR, rtol=1e-6)  # exact synthetic parabola
    np.testing.assert_allclose(opt["ci_high"], P_STAR, rtol=1e-6)
    assert (opt["n_boot"] > 0).all() and (opt["ci_method"] == "bootstrap_percentile").all()
    # 3 distinct d/L... the width/depth axis has 4 distinct values over 5 runs: still >= 4 points.
    assert (pick(fit_table, kind="isoflop_optimum", parameter="edge_distance")["n_boot"] == 0).all()


def test_bootstrap_hypervolume():
    # Five copies of one point: every resample has hypervolume 2·3 = 6.
    lo, hi, n, note = pareto.bootstrap_hypervolume([2] * 5, [3] * 5, n_boot=50, seed=0)
    assert (lo, hi, n, note) == (6.0, 6.0, 50, "")
    # Staircase (3,1),(2,2),(1,3) + two dominated points: HV 6; resamples can only lose front points.
    x, y = [3, 2, 1, 1, 0.5], [1, 2, 3, 1, 0.5]
    lo, hi, n, _ = pareto.bootstrap_hypervolume(x, y, n_boot=400, seed=0)
    assert hi <= 6.0 + 1e-12 and lo < 6.0 and n == 400
    assert (lo, hi) == pareto.bootstrap_hypervolume(x, y, n_boot=400, seed=0)[:2]
    few = pareto.bootstrap_hypervolume([1, 2], [2, 1], n_boot=50, seed=0)
    assert math.isnan(few[0]) and few[2] == 0 and "needs >= 5" in few[3]


def test_fits_pareto_hypervolume_ci(fit_table):
    hv = pick(fit_table, kind="pareto_hypervolume", parameter="hypervolume", arch="ebt")
    # Each front point is tied across 5 runs (see test_fits_pareto): a resample almost always keeps
    # the whole front, and can never exceed it.
    np.testing.assert_allclose(hv["ci_high"], hv["estimate"])
    assert (hv["ci_low"] <= hv["estimate"]).all() and (hv["ci_low"] > 0.99 * hv["estimate"]).all()
    assert (hv["n_boot"] == 200).all() and (hv["seed"] == 0).all()


def test_plot_palette_is_per_architecture():
    assert plots.arch_color("tpp") != plots.arch_color("ebt-system1") != plots.arch_color("ebt-system2")
    assert plots.arch_color("unknown-x") == plots.arch_color("unknown-x")
    assert plots.fmt_flops(3e16) == "3e16" and plots.fmt_flops(1e15) == "1e15"


def test_isoflop_figure_has_a_row_per_architecture(tmp_path):
    from PIL import Image

    runs = make_two_variant_runs()
    metrics = make_metrics(runs)
    three = plots.plot_isoflop(runs, metrics, tmp_path / "three.png", n_boot=20)
    one = plots.plot_isoflop(runs[runs["variant"] == "system1"], metrics, tmp_path / "one.png", n_boot=20)
    h3, h1 = Image.open(three).size[1], Image.open(one).size[1]
    assert h3 > 2.5 * h1 - 100  # rows = architectures (tpp, ebt-system1, ebt-system2)
    # Single shape, all-zero creativity: the figure still renders.
    flat = make_runs(budgets=[1e16], shapes=[(4, 128)], with_diverged=False)
    assert plots.plot_isoflop_creativity(flat, make_metrics(flat, zero_creativity=True),
                                         tmp_path / "flat.png").exists()
