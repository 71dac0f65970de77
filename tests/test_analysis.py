"""Tests of analysis/: numbers against hand-computed values, invariants, degenerate input.

The synthetic study (make_study) is built so the right answers are known in closed form:
  * 100 test prompts, 25 per utility level 1-4. A run with validity v answers the first
    round(25·v) prompts of every level validly (and correctly: utility > 0), so its
    validity and correct rate are exactly v at every level;
  * a valid walk at level l has utility l and novelty a + b·l with b = -s, a = 2.4 + 3s, so
    creativity = mean(U·N) = (v/4)·(10a + 30b) = 6·v whatever s is;
  * 4 budgets over 3 decades (enough for an exponent); 3 shapes at every budget and 2 more
    at 1e16, so 1e16 has 5 model sizes spaced by factors of 2 around the best (4x64);
  * the best shape has validity VALIDITY[arch][budget] at the default decoding; the
    others 0.08 less. VALIDITY doubles per decade, so creativity on the frontier is
    6·v ∝ FLOPs^log10(2). The EBT at 1e15 has 0.08·100·2 = 16 correct walks over its two
    seeds at its default decoding: fewer than min_correct (20), so it is not compared there;
  * the novelty slope is s = 0.2 - 0.01·ln(F/1e15); the feasible-set baseline's is -0.1,
    so the net slope is -0.1 + 0.01·ln(F/1e15): 0.01 per e-fold of FLOPs;
  * val_loss = FLOOR + A_LOSS·(F/1e15)^(-B_LOSS[arch]) + K·(ln params - ln P_STAR)², so the
    excess loss of the best shape is an exact power law with exponent -B_LOSS[arch].
"""

from __future__ import annotations

import ast
import math
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from analysis import (findings, fits, isoflop, paired, pareto, plots, plots_raw, powerlaw, resample,
                      samples_table, scaling)

PER_LEVEL = 25
LEVELS = [1, 2, 3, 4]
BUDGETS = [1e15, 1e16, 1e17, 1e18]
SHAPES = [(2, 64), (4, 64), (4, 128)]  # (depth, width); (4, 64) is the best
ISO_BUDGET, ISO_SHAPES = 1e16, [(1, 64), (8, 64)]  # with SHAPES: 5 sizes, 2x apart
BEST = (4, 64)
SEEDS = [0, 1]
VALIDITY = {"tpp": {1e15: 0.12, 1e16: 0.24, 1e17: 0.48, 1e18: 0.96},
            "ebt": {1e15: 0.08, 1e16: 0.16, 1e17: 0.32, 1e18: 0.64}}
FLOOR, A_LOSS = 1.0, 2.0
B_LOSS = {"tpp": 0.10, "ebt": 0.13}
K_LOSS = 0.02
MIN_CORRECT = 20
# name, family, validity added, inference FLOPs per sample
DECODINGS = {
    "tpp": [("greedy", "greedy", 0.0, 1e6), ("bestofk_ll_k4", "best_of_k_ll", 0.04, 4e6),
            ("tilt_beta1_k4", "reward_tilt", 1.0, 4e6)],
    "ebt": [("think_x1", "think", 0.0, 3e6), ("think_x2", "think", 0.04, 6e6), ("verify_m4", "verify", 0.08, 12e6)],
}
N_BOOT = 60


def params_of(depth, width):
    return 12 * depth * width**2


P_STAR = params_of(*BEST)


def novelty_slope(budget):
    return 0.2 - 0.01 * math.log(budget / 1e15)


def excess_loss(arch, budget) -> float:
    return A_LOSS * (budget / 1e15) ** -B_LOSS[arch]


def make_runs(archs=("tpp", "ebt"), budgets=None, iso=True) -> pd.DataFrame:
    rows = []
    for arch in archs:
        for budget in (budgets or {}).get(arch, BUDGETS):
            for depth, width in SHAPES + (ISO_SHAPES if iso and budget == ISO_BUDGET else []):
                for seed in SEEDS:
                    n = params_of(depth, width)
                    loss = FLOOR + excess_loss(arch, budget) + K_LOSS * (math.log(n) - math.log(P_STAR)) ** 2
                    rows.append(dict(run_id=f"{arch}-{budget:.0e}-{depth}x{width}-s{seed}", arch=arch,
                                     variant="tpp" if arch == "tpp" else "system2", depth=depth, width=width,
                                     heads=2, params=n, budget=budget, seed=seed, flops_measured=budget,
                                     tokens=budget / (6 * n), val_loss=loss, status="ok",
                                     epochs=budget / 1e15 + seed, train_val_gap=0.1 * seed))
    return pd.DataFrame(rows)


def make_loss_floor() -> pd.DataFrame:
    return pd.DataFrame({"scope": ["validation", "corpus"], "floor": [FLOOR, 0.9], "ci_low": [0.99, 0.89],
                         "ci_high": [1.01, 0.91], "method": ["monte_carlo", "exact"], "n_tokens": [5000, 90000],
                         "n_sequences": [256, 6000]})


def _validity(run, add: float) -> float:
    v = VALIDITY[run.arch].get(run.budget, 0.4) - (0 if (run.depth, run.width) == BEST else 0.08)
    return min(1.0, v + add)


def make_samples(runs: pd.DataFrame, ood: bool = True) -> pd.DataFrame:
    rows = []
    for run in runs.itertuples(index=False):
        s = novelty_slope(run.budget)
        for name, _, add, flops in DECODINGS[run.arch]:
            n_valid = round(PER_LEVEL * _validity(run, add))
            for pid in range(PER_LEVEL * len(LEVELS)):
                level, rank = 1 + pid // PER_LEVEL, pid % PER_LEVEL
                valid = rank < n_valid
                novelty = 2.4 + 3 * s - s * level
                row = _sample(run.run_id, name, pid, level, rank, valid, novelty, "test")
                rows.append(row | {"inference_flops": flops})
            if ood:
                rows += [_sample(run.run_id, name, 1000 + r, 2, r, r % 2 == 0, 3.0, "ood") for r in range(8)]
    return pd.DataFrame(rows)


def _sample(run_id, decoding, pid, level, rank, valid, novelty, split) -> dict:
    return dict(run_id=run_id, decoding=decoding, prompt_id=pid, sample_index=0, split=split, level=level,
                start="a", end="b", include=[], exclude=[], walk=["a", "r", "b"] if valid else ["a"], valid=valid,
                error_type="none" if valid else ("parse" if rank % 2 else "revisit"),
                novelty=novelty if valid else np.nan, utility=float(level) if valid else 0.0,
                creativity=level * novelty if valid else 0.0, copied=valid and rank % 4 == 0,
                combinatorial_novelty=0.5 if valid else np.nan, uses_heldout=valid and rank % 2 == 0)


def make_baseline() -> pd.DataFrame:
    rows = [_sample("feasible_baseline", "uniform_feasible", pid, 1 + pid // PER_LEVEL, pid % PER_LEVEL, True,
                    3.0 - 0.1 * (1 + pid // PER_LEVEL), "test") for pid in range(PER_LEVEL * len(LEVELS))]
    return pd.DataFrame(rows)


def make_metrics(runs: pd.DataFrame, samples: pd.DataFrame) -> pd.DataFrame:
    """Per (run, decoding, split, level) means, level 0 pooling the split's levels."""
    s = samples.assign(novelty_valid=samples["novelty"].where(samples["valid"]),
                       err_none=(samples["error_type"] == "none").astype(float),
                       err_parse=(samples["error_type"] == "parse").astype(float),
                       err_revisit=(samples["error_type"] == "revisit").astype(float))
    agg = dict(validity=("valid", "mean"), novelty_valid=("novelty_valid", "mean"), utility=("utility", "mean"),
               creativity=("creativity", "mean"), err_none=("err_none", "mean"), err_parse=("err_parse", "mean"),
               err_revisit=("err_revisit", "mean"))
    keys = ["run_id", "decoding", "split"]
    per_level = s.groupby([*keys, "level"], as_index=False).agg(**agg)
    pooled = s.groupby(keys, as_index=False).agg(**agg).assign(level=0)
    table = pd.concat([per_level, pooled], ignore_index=True)
    settings = pd.DataFrame([dict(decoding=n, decoding_family=f, inference_flops=c,
                                  steps_multiplier=float(n[-1]) if f == "think" else np.nan,
                                  num_candidates=4.0 if f == "verify" else np.nan)
                             for arch in DECODINGS for n, f, _, c in DECODINGS[arch]])
    cols = ["run_id", "arch", "variant", "budget", "depth", "width", "params", "flops_measured", "seed"]
    return runs[cols].merge(table.merge(settings, on="decoding"), on="run_id")


@pytest.fixture(scope="module")
def study():
    runs = make_runs()
    samples = make_samples(runs)
    return runs, make_metrics(runs, samples), samples, make_baseline()


@pytest.fixture(scope="module")
def fit_table(study):
    runs, metrics, samples, baseline = study
    return fits.compute_fits(runs, metrics, samples, baseline, loss_floor=make_loss_floor(), n_boot=N_BOOT, seed=0,
                             min_correct=MIN_CORRECT)


def pick(df, **match) -> pd.DataFrame:
    mask = np.ones(len(df), dtype=bool)
    for col, value in match.items():
        mask &= (df[col] == value).to_numpy()
    return df[mask]


def one(df, **match):
    hit = pick(df, **match)
    assert len(hit) == 1, (match, len(hit))
    return hit.iloc[0]


# ---------------------------------------------------------------- OLS power laws and IsoFLOP

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


# ---------------------------------------------------------------- batch fits

def test_batch_glm_recovers_exact_laws_and_keeps_zeros():
    x = np.geomspace(1e9, 1e12, 6)
    u = np.log(x)[None]
    a, b = powerlaw.batch_glm(u, (2e-3 * x**0.2)[None], "log")
    assert b[0] == pytest.approx(0.2, rel=1e-8) and math.exp(a[0]) == pytest.approx(2e-3, rel=1e-6)
    a, b = powerlaw.batch_glm(u, 1 / (1 + np.exp(10 - 0.5 * u)), "logit")
    assert (a[0], b[0]) == pytest.approx((-10.0, 0.5), rel=1e-8)
    # A zero is a data point: the fit exists and differs from the fit without it.
    y = np.array([[0.0, 0.1, 0.3, 0.5, 0.9, 1.0]])
    with_zero = powerlaw.batch_glm(u, y, "log")[1][0]
    without = powerlaw.batch_glm(u[:, 1:], y[:, 1:], "log")[1][0]
    assert np.isfinite(with_zero) and with_zero > without
    # Not identified: all zero; all one for the logit; perfect separation; one distinct x.
    assert np.isnan(powerlaw.batch_glm(u, np.zeros((1, 6)), "log")[1][0])
    assert np.isnan(powerlaw.batch_glm(u, np.ones((1, 6)), "logit")[1][0])
    assert np.isnan(powerlaw.batch_glm(u, np.array([[0, 0, 0, 1, 1, 1.0]]), "logit")[1][0])
    assert np.isnan(powerlaw.batch_glm(np.full((1, 3), 2.0), np.ones((1, 3)), "log")[1][0])
    # Zeros at the low end only: the log-link MLE runs off to b = +inf (separation), not an estimate.
    assert np.isnan(powerlaw.batch_glm(np.array([[0.0, 1, 2, 3]]), np.array([[0, 0, 0, 1.0]]), "log")[1][0])
    with pytest.raises(ValueError):
        powerlaw.batch_glm(u, y, "probit")


def test_batch_ols_rows_and_missing_points():
    u = np.array([[0.0, 1, 2, 3], [0.0, 1, 2, 3]])
    y = np.array([[1.0, 3, 5, 7], [1.0, np.nan, 5, 9]])
    a, b = powerlaw.batch_ols(u, y)
    assert (a[0], b[0]) == pytest.approx((1.0, 2.0))
    # Row 2 is fitted without its NaN point.
    xs, ys = np.array([0.0, 2, 3]), np.array([1.0, 5, 9])
    assert b[1] == pytest.approx(np.polyfit(xs, ys, 1)[0])


# ---------------------------------------------------------------- resampling

def test_prompt_stats_row_zero_is_the_observed_mean(study):
    runs, metrics, samples, _ = study
    test = samples[samples["split"] == "test"]
    stats = resample.prompt_stats(test)
    w = resample.count_weights(len(stats.prompt_ids), 5, np.random.default_rng(0))
    assert (w[1:].sum(axis=1) == len(stats.prompt_ids)).all() and (w[0] == 1).all()
    pooled = metrics[(metrics["level"] == 0) & (metrics["split"] == "test")].set_index(["run_id", "decoding"])
    for metric in ("creativity", "validity", "novelty_valid", "utility"):
        got = pd.Series(stats.values(metric, w[:1])[0], index=pd.MultiIndex.from_frame(stats.units))
        np.testing.assert_allclose(got, pooled.loc[got.index, metric], rtol=1e-12)
    # One level, and a share over valid walks only.
    j = stats.unit_index(runs["run_id"].iloc[0], "greedy")
    sub = test[(test["run_id"] == runs["run_id"].iloc[0]) & (test["decoding"] == "greedy") & (test["level"] == 2)]
    assert stats.values("copy_rate", w[:1], rows=[j], level=2)[0, 0] == pytest.approx(sub.loc[sub.valid, "copied"].mean())
    assert stats.values("revisit_rate", w[:1], rows=[j])[0, 0] == pytest.approx(
        (test.loc[(test.run_id == runs.run_id.iloc[0]) & (test.decoding == "greedy"), "error_type"] == "revisit").mean())


def test_cell_values_weight_seeds():
    runs = pd.DataFrame({"budget": [1, 1, 2], "depth": [1, 1, 1], "width": [8, 8, 8], "seed": [0, 1, 0]})
    cells = resample.make_cells(runs, ["budget", "depth", "width"], seeds=[0, 1])
    assert cells.index.tolist() == [[0, 1], [2, -1]]
    values = np.array([[1.0, 3.0, 5.0], [1.0, 3.0, 5.0], [1.0, np.nan, 5.0]])
    seed_w = np.array([[1.0, 1.0], [2.0, 0.0], [0.0, 2.0]])
    out = resample.cell_values(values, cells, seed_w)
    # Row 0: mean of seeds; row 1: seed 0 only; row 2: seed 1 only, but it is NaN / missing.
    np.testing.assert_allclose(out[:2], [[2.0, 5.0], [1.0, 5.0]])
    assert np.isnan(out[2]).all()


def test_draws_are_reproducible():
    a, b, c = (resample.draw(10, [0, 1, 2], 20, s) for s in (3, 3, 4))
    assert (a.prompt == b.prompt).all() and (a.seed == b.seed).all() and not (a.prompt == c.prompt).all()
    assert a.n_boot == 20 and list(a.seeds) == [0, 1, 2]


# ---------------------------------------------------------------- the headline

def test_paired_delta_at_default_decoding_is_exact(fit_table):
    for budget in BUDGETS[1:]:
        rows = pick(fit_table, kind="paired_delta", x="default_decoding", budget=budget)
        v_e, v_t = VALIDITY["ebt"][budget], VALIDITY["tpp"][budget]
        assert one(rows, metric="correct_rate", parameter="delta")["estimate"] == pytest.approx(v_e - v_t)
        assert one(rows, metric="validity", parameter="delta")["estimate"] == pytest.approx(v_e - v_t)
        delta = one(rows, metric="creativity", parameter="delta")
        assert delta["estimate"] == pytest.approx(6 * (v_e - v_t))
        assert one(rows, metric="creativity", parameter="treatment")["estimate"] == pytest.approx(6 * v_e)
        assert delta["ci_low"] <= delta["estimate"] <= delta["ci_high"] and delta["n_boot"] == N_BOOT
        assert delta["ci_method"] == "t_seeds_plus_prompt_bootstrap" and delta["n_seeds"] == len(SEEDS)
        assert delta["decoding"] == "think_x1 vs greedy" and delta["variant"] == "system2"
        # Each arm's compute-optimal shape (lowest val loss), whatever shapes the budget has.
        assert "ebt 4x64; tpp 4x64" in delta["note"]
        n = len(SEEDS) * PER_LEVEL * len(LEVELS)
        assert one(rows, metric="n_correct", parameter="treatment")["estimate"] == round(n * v_e)


def test_a_degenerate_comparison_is_refused_with_counts(fit_table):
    """At 1e15 the EBT has 16 correct walks at its default decoding (< min_correct = 20)."""
    rows = pick(fit_table, kind="paired_delta", x="default_decoding", budget=1e15, parameter="delta")
    assert len(rows) and rows["estimate"].isna().all() and (rows["ci_method"] == "").all()
    assert rows["note"].str.contains("not comparable: EBT System 2 16, Transformer++ 24 correct walks; "
                                     "each needs >= 20", regex=False).all()
    # The arm's own rate is still reported; only the comparison is refused.
    rate = one(fit_table, kind="paired_delta", x="default_decoding", budget=1e15, metric="correct_rate",
               parameter="treatment")
    assert rate["estimate"] == pytest.approx(0.08)
    # With a lower threshold the same cell is compared.
    runs, metrics, samples, baseline = _study_args()[:4]
    lenient = fits.compute_fits(runs, metrics, samples, baseline, n_boot=5, min_correct=16)
    assert one(lenient, kind="paired_delta", x="default_decoding", budget=1e15, metric="correct_rate",
               parameter="delta")["estimate"] == pytest.approx(0.08 - 0.12)
    page = findings.findings_html(fit_table)
    first_screen = page[page.index("class=answer"):page.index("</div>")]
    assert "fewer than 20 correct walks" in first_screen and "EBT System 2 − Transformer++ at 1e15 (16 vs 24)" in \
        first_screen


def test_paired_delta_at_matched_inference_flops(fit_table):
    rows = pick(fit_table, kind="paired_delta", x="matched_inference_flops", budget=1e16)
    # Level = min(4e6 tpp, 12e6 ebt) = 4e6; the tilt is an oracle and is left out. Under it the
    # EBT has only think_x1; the TPP's best (by creativity) is bestofk_ll_k4, not greedy.
    delta = one(rows, metric="validity", parameter="delta")
    assert delta["decoding"] == "think_x1 vs bestofk_ll_k4"
    assert delta["estimate"] == pytest.approx(0.16 - (0.24 + 0.04))
    assert one(rows, parameter="treatment_inference_flops")["estimate"] == 3e6
    assert "ratio 0.75" in delta["note"]


def test_matched_flops_from_metrics_when_samples_lack_them(study):
    runs, metrics, samples, baseline = study
    out = fits.compute_fits(runs, metrics, samples.drop(columns="inference_flops"), baseline, n_boot=5)
    assert one(out, kind="paired_delta", x="matched_inference_flops", budget=1e16, metric="validity",
               parameter="delta")["decoding"] == "think_x1 vs bestofk_ll_k4"
    none = fits.compute_fits(runs, metrics.drop(columns="inference_flops"), samples.drop(columns="inference_flops"),
                             baseline, n_boot=5)
    assert set(pick(none, kind="paired_delta")["x"]) == {"default_decoding"}


def test_matched_decodings_pick_each_arms_best_setting_measured_on_every_run():
    """Level = the smaller of the arms' most expensive settings (on their cheapest run) = min(4, 24) = 4.
    tpp: temp1_k4 (4) beats greedy (1) and fits. ebt: think_x2 costs 3 on run e0 but 5 on
    run e1, so it does not fit although its mean (4) does; think_x1 (2, 2) is the best that
    does, although think_x2 scores higher."""
    menus = pd.DataFrame({"side": ["tpp"] * 6 + ["ebt"] * 6,
                          "run_id": ["t0", "t0", "t0", "t1", "t1", "t1", "e0", "e0", "e0", "e1", "e1", "e1"],
                          "decoding": ["greedy", "temp1_k4", "tilt_beta1_k4"] * 2 + ["think_x1", "think_x2", "think_x4"] * 2,
                          "flops": [1, 4, 100, 1, 4, 100, 2, 3, 24, 2, 5, 30.0]})
    scores = pd.DataFrame({"side": ["tpp", "tpp", "tpp", "ebt", "ebt", "ebt"],
                           "decoding": ["greedy", "temp1_k4", "tilt_beta1_k4", "think_x1", "think_x2", "think_x4"],
                           "score": [1.0, 2.0, 9.0, 1.0, 3.0, 5.0]})
    chosen, flops, note = paired.matched_decodings(menus, scores)
    assert chosen == {"tpp": "temp1_k4", "ebt": "think_x1"} and flops == {"tpp": 4.0, "ebt": 2.0}
    assert "level 4 " in note and "ratio 0.50" in note
    # A cheaper, better setting wins over the most expensive one under the level.
    better = scores.assign(score=[3.0, 2.0, 9.0, 1.0, 3.0, 5.0])
    assert paired.matched_decodings(menus, better)[0]["tpp"] == "greedy"
    # Every EBT setting costs 7, more than any TPP setting: the cap rises to the EBT's cheapest (7),
    # so both arms have a setting; the TPP then uses its best under it.
    dear = menus.assign(flops=np.where(menus["side"] == "ebt", 7.0, menus["flops"]))
    chosen, _, note = paired.matched_decodings(dear, scores)
    assert chosen == {"tpp": "temp1_k4", "ebt": "think_x4"} and "level 7 " in note
    assert paired.matched_decodings(menus[menus["side"] == "tpp"], scores)[2] == "no inference FLOPs for one of the arms"


def test_no_shared_budget_is_said_not_failed():
    runs = make_runs(budgets={"tpp": [1e15, 1e16], "ebt": [1e17]})
    samples = make_samples(runs, ood=False)
    out = fits.compute_fits(runs, make_metrics(runs, samples), samples, make_baseline(), n_boot=10)
    row = one(out, kind="paired_delta")
    assert np.isnan(row["estimate"]) and "no budget shared" in row["note"]
    assert "no budget shared" in findings.findings_html(out)


# ---------------------------------------------------------------- scaling laws

def test_creativity_power_law_on_the_frontier_is_exact(fit_table):
    for arch in ("tpp", "ebt"):
        law = pick(fit_table, kind="power_law", arch=arch, metric="creativity", x="flops_measured", subset="frontier")
        exp = one(law, parameter="exponent")
        assert exp["estimate"] == pytest.approx(math.log10(2), rel=1e-6)
        assert exp["ci_low"] < exp["estimate"] < exp["ci_high"] and exp["n_boot"] == N_BOOT
        assert one(law, parameter="prefactor")["estimate"] == pytest.approx(6 * VALIDITY[arch][1e15] / 1e15**math.log10(2),
                                                                            rel=1e-5)
        assert exp["method"] == "glm_log" and exp["n"] == len(BUDGETS)
    # Validity is fitted on its logit, on every axis and both subsets.
    kinds = pick(fit_table, kind="power_law", metric="validity", parameter="logit_slope")
    assert set(zip(kinds["x"], kinds["subset"])) == {(x, s) for x in scaling.X_AXES for s in ("frontier", "all_runs")}
    assert (pick(kinds, x="flops_measured")["estimate"] > 0).all()
    # The best shape is the same at every budget, so the frontier has one distinct parameter count.
    frontier_params = pick(kinds, x="params", subset="frontier")
    assert frontier_params["estimate"].isna().all() and frontier_params["note"].str.contains("not identified").all()


def test_zero_creativity_runs_stay_in_the_fit(study):
    runs, _, samples, baseline = study
    # The smallest shape at the smallest budget never answers validly: creativity 0.
    dead = runs["run_id"][(runs["budget"] == 1e15) & (runs["depth"] == 2)]
    s = samples.copy()
    s.loc[s["run_id"].isin(dead), ["valid", "creativity", "utility"]] = [False, 0.0, 0.0]
    out = fits.compute_fits(runs, make_metrics(runs, s), s, baseline, n_boot=10)
    law = one(out, kind="power_law", arch="tpp", metric="creativity", x="flops_measured", subset="all_runs",
              parameter="exponent")
    assert law["n"] == len(BUDGETS) * len(SHAPES) + len(ISO_SHAPES) and "1 point(s) at 0 kept" in law["note"]
    assert np.isfinite(law["estimate"])


def test_power_law_curves_match_their_parameters(fit_table):
    law = pick(fit_table, kind="power_law", arch="tpp", metric="creativity", x="params", subset="all_runs")
    a, b = one(law, parameter="prefactor")["estimate"], one(law, parameter="exponent")["estimate"]
    curve = pick(fit_table, kind="power_law_curve", arch="tpp", metric="creativity", x="params", subset="all_runs")
    np.testing.assert_allclose(curve["estimate"], a * curve["x_value"] ** b, rtol=1e-9)
    assert (curve["ci_low"] <= curve["estimate"] + 1e-12).all() and (curve["estimate"] <= curve["ci_high"] + 1e-12).all()


def test_loss_floor_rows_copy_the_table(fit_table):
    rows = pick(fit_table, kind="loss_floor").set_index("scope")
    assert rows.loc["validation", "estimate"] == FLOOR and rows.loc["corpus", "estimate"] == 0.9
    assert rows.loc["validation", "ci_low"] == 0.99 and rows.loc["corpus", "n"] == 90000
    assert rows.loc["validation", "method"] == "monte_carlo"


def test_excess_loss_law_is_exact_above_the_floor(fit_table):
    for arch in ("tpp", "ebt"):
        for budget in BUDGETS:
            row = one(fit_table, kind="excess_loss", arch=arch, budget=budget)
            assert row["estimate"] == pytest.approx(excess_loss(arch, budget))
        law = one(fit_table, kind="power_law", arch=arch, metric="excess_loss", parameter="exponent")
        assert law["estimate"] == pytest.approx(-B_LOSS[arch]) and law["n"] == len(BUDGETS)
        assert law["n_seeds"] == len(SEEDS) and law["note"] == ""
    # Runs without a floor get no loss law (a raw-loss law would measure the floor).
    runs, metrics, samples, baseline = _study_args()[:4]
    bare = fits.compute_fits(runs, metrics, None, None, n_boot=5)
    assert pick(bare, metric="excess_loss").empty and pick(bare, metric="val_loss", kind="power_law").empty


def test_scaling_rate_is_the_ratio_of_excess_loss_exponents(fit_table):
    ratio = one(fit_table, kind="scaling_rate", parameter="ratio")
    assert ratio["estimate"] == pytest.approx(B_LOSS["ebt"] / B_LOSS["tpp"])
    assert ratio["variant"] == "system2/tpp" and ratio["method"] == "excess_exponent_ratio"


def test_crossover_of_the_excess_loss_laws(fit_table):
    # Both arms' excess loss is A_LOSS at 1e15 and the EBT's falls faster (B_LOSS): the lines
    # meet at the smallest budget, so ahead of it the EBT is lower and they never meet again.
    row = one(fit_table, kind="crossover", metric="excess_loss")
    assert row["variant"] == "system2" and np.isnan(row["estimate"])
    assert "no crossover within 3 decades of the largest budget at the fitted slopes" in row["note"]
    assert "the EBT is ahead at 1e+18 FLOPs" in row["note"]
    creativity = one(fit_table, kind="crossover", metric="creativity")
    assert "the EBT is behind at 1e+18 FLOPs" in creativity["note"]


def test_epochs_and_train_val_gap_are_reported(fit_table):
    row = one(fit_table, kind="training", arch="tpp", budget=1e16, metric="epochs")
    assert row["estimate"] == pytest.approx(10 + np.mean(SEEDS))
    assert one(fit_table, kind="training", arch="ebt", budget=1e16, metric="train_val_gap")["estimate"] == \
        pytest.approx(0.1 * np.mean(SEEDS))


def test_an_exponent_needs_four_budgets_over_a_decade():
    assert scaling.exponent_gate([1e15, 1e16, 1e17, 1e18]) == ""
    assert scaling.exponent_gate([1e15, 2e15, 5e15, 1e16]) == ""
    few = scaling.exponent_gate([1.4e11, 2.5e11, 4.5e11])
    assert few.startswith("not estimable: 3 budget(s) spanning 0.51 decade(s)")
    assert scaling.exponent_gate([1e15, 2e15, 3e15, 5e15]).startswith("not estimable: 4 budget(s) spanning 0.70")
    # The default run's shape: three budgets over half a decade. Every exponent is NaN and says why.
    budgets = {"tpp": [1.4e11, 2.5e11, 4.5e11], "ebt": [1.4e11, 2.5e11, 4.5e11]}
    runs = make_runs(budgets=budgets, iso=False)
    samples = make_samples(runs, ood=False)
    out = fits.compute_fits(runs, make_metrics(runs, samples), samples, make_baseline(), loss_floor=make_loss_floor(),
                            n_boot=5)
    laws = pick(out, kind="power_law")
    assert len(laws) and laws["estimate"].isna().all() and laws["note"].str.startswith("not estimable").all()
    assert np.isnan(one(out, kind="scaling_rate", parameter="ratio")["estimate"])
    assert pick(out, kind="tradeoff_scaling")["note"].str.startswith("not estimable").all()
    assert "not estimable" in findings.findings_html(out)


# ---------------------------------------------------------------- trade-off

def test_tradeoff_slopes_net_of_the_baseline(fit_table):
    base = one(fit_table, kind="tradeoff_slope", arch="baseline", parameter="slope")
    assert base["estimate"] == pytest.approx(-0.1)
    for budget in BUDGETS:
        rows = pick(fit_table, kind="tradeoff_slope", arch="tpp", budget=budget, decoding="greedy")
        raw, net = pick(rows, parameter="slope"), pick(rows, parameter="net_slope")
        np.testing.assert_allclose(raw["estimate"], -novelty_slope(budget), rtol=1e-9)
        compared = net["n"] >= MIN_CORRECT
        np.testing.assert_allclose(net.loc[compared, "estimate"], -novelty_slope(budget) + 0.1, rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(net.loc[compared, "ci_low"], net.loc[compared, "estimate"], atol=1e-9)
        # Runs with too few correct walks get no net slope, and say so.
        assert net.loc[~compared, "estimate"].isna().all()
        assert net.loc[~compared, "note"].str.startswith("not comparable").all()
        assert net["note"].str.contains("uniform feasible-set null").all()
    net = one(fit_table, kind="tradeoff_net", arch="tpp", budget=1e16)
    assert net["estimate"] == pytest.approx(-novelty_slope(1e16) + 0.1) and net["n"] == 48
    assert np.isnan(one(fit_table, kind="tradeoff_net", arch="ebt", budget=1e15)["estimate"])


def test_tradeoff_is_net_of_the_length_matched_null_when_given(study):
    """A null whose walks for each model answer have novelty 0.05 per level lower than the
    model's: the net slope is the model's slope minus the null's, not the uniform null's."""
    runs, metrics, samples, baseline = study
    null = samples[samples["split"] == "test"].copy()
    null["novelty"] = null["novelty"] - 0.05 * null["level"]
    out = fits.compute_fits(runs, metrics, samples, baseline, matched_null=null, n_boot=5)
    net = one(out, kind="tradeoff_slope", run_id="tpp-1e+16-4x64-s0", decoding="greedy", parameter="net_slope")
    assert net["estimate"] == pytest.approx(0.05) and "length-matched" in net["note"]
    cn = one(out, kind="summary", arch="tpp", budget=1e16, metric="novelty_valid", x="test", parameter="minus_null")
    assert cn["estimate"] > 0
    # The scorer's *_null_lm columns are the same null, read without being passed.
    lm = samples.assign(novelty_null_lm=(samples["novelty"] - 0.05 * samples["level"]).where(samples["valid"]),
                        copied_null_lm=np.where(samples["valid"], 1.0, np.nan))
    out = fits.compute_fits(runs, metrics, lm, baseline, n_boot=5)
    assert one(out, kind="tradeoff_slope", run_id="tpp-1e+16-4x64-s0", decoding="greedy",
               parameter="net_slope")["estimate"] == pytest.approx(0.05)
    copy = pick(out, kind="summary", arch="tpp", budget=1e16, metric="copy_rate", x="test").set_index("parameter")
    assert copy.loc["null", "estimate"] == 1.0 and "not a headline" in copy.loc["null", "note"]
    assert copy.loc["minus_null", "estimate"] == pytest.approx(copy.loc["mean", "estimate"] - 1.0)


def test_tradeoff_closes_with_scale_by_the_hand_coefficient(fit_table):
    for arch in ("tpp", "ebt"):
        coef = one(fit_table, kind="tradeoff_scaling", arch=arch, parameter="slope_per_ln_flops")
        assert coef["estimate"] == pytest.approx(0.01, rel=1e-6)
        assert coef["decoding"] == fits.DEFAULT_DECODING[arch]


# ---------------------------------------------------------------- Pareto

def test_front_mask_and_hypervolume_hand_examples():
    x = np.array([3, 2, 1, 2, 3, 1, 0.5, np.nan, 3])
    y = np.array([1, 2, 3, 1, 1, 1, 0.5, 9.0, 0.5])
    expected = [True, True, True, False, True, False, False, False, False]
    np.testing.assert_array_equal(pareto.front_mask(x, y), expected)
    assert pareto.hypervolume([3, 2, 1, 1, 3], [1, 2, 3, 1, 1]) == pytest.approx(6.0)
    assert pareto.hypervolume([3, 2, 1], [1, 2, 3], reference=(1, 1)) == pytest.approx(1.0)
    assert pareto.hypervolume([], []) == 0.0


def test_pareto_reference_point_and_per_seed_averaging():
    """Hand case: two seeds of one arm, one level. Seed 0 has points (3, 1) and (2, 2), seed 1
    the point (4, 0.5). Reference (novelty 1.5, utility 0): the least novelty of a correct walk.
    Per seed: HV0 = 1.5·1 + 0.5·1 = 2.0 ... computed by the union of boxes; HV1 = 2.5·0.5."""
    hv0 = pareto.hypervolume([3, 2], [1, 2], reference=(1.5, 0.0))
    assert hv0 == pytest.approx((3 - 1.5) * 1 + (2 - 1.5) * (2 - 1))
    hv1 = pareto.hypervolume([4], [0.5], reference=(1.5, 0.0))
    assert hv1 == pytest.approx(2.5 * 0.5)
    # Pooling both seeds into one envelope would credit more than the mean of the seeds.
    pooled = pareto.hypervolume([3, 2, 4], [1, 2, 0.5], reference=(1.5, 0.0))
    assert pooled > (hv0 + hv1) / 2
    samples = pd.DataFrame({"level": [1, 1, 1, 2], "novelty": [1.5, 2.0, 0.5, 3.0], "utility": [1.0, 2.0, 0.0, 4.0],
                            "valid": [True, True, True, True]})
    # The invalid-constraint walk (utility 0, so not correct) does not set the reference.
    assert pareto.reference_points(samples) == {1: (1.5, 0.0), 2: (3.0, 0.0)}


def test_pareto_per_level_without_oracles(fit_table):
    front = pick(fit_table, kind="pareto_front")
    assert not front["decoding"].str.startswith("tilt_").any()  # the oracle dominates but is excluded
    assert set(front["level"]) == set(map(float, LEVELS))
    hv = pick(fit_table, kind="pareto_hypervolume", parameter="hypervolume")
    assert len(hv) == 2 * len(BUDGETS) * len(LEVELS)
    assert pick(hv, arch="tpp")["note"].str.contains("menu of 2 non-oracle").all()
    # Hand value, tpp at 1e16, level 2: every correct walk has novelty 2.4 + s and utility 2; the best point
    # is bestofk_ll_k4 (validity 0.28) -> (2.4 + s, 2·0.28). The reference novelty is the least any correct
    # walk of level 2 has: the largest budget's, 2.4 + s(1e18). Every seed is alike, so the mean is that.
    s, s_min = novelty_slope(1e16), novelty_slope(1e18)
    row = one(hv, arch="tpp", budget=1e16, level=2.0)
    assert row["estimate"] == pytest.approx((s - s_min) * 2 * 0.28)
    assert f"reference (novelty {2.4 + s_min:.3g}, utility 0)" in row["note"]
    assert row["ci_low"] < row["estimate"] < row["ci_high"]  # prompts resampled: not capped at the estimate
    delta = one(fit_table, kind="pareto_hv_delta", budget=1e16, level=2.0)
    # EBT best point: verify_m4, validity 0.24.
    assert delta["estimate"] == pytest.approx((s - s_min) * 2 * (0.24 - 0.28))


# ---------------------------------------------------------------- fits table

def test_fits_columns_kinds_and_round_trip(fit_table, tmp_path):
    assert list(fit_table.columns) == fits.COLUMNS
    assert {"loss_floor", "excess_loss", "training", "paired_delta", "paired_delta_change", "power_law", "power_law_curve", "scaling_rate",
            "isoflop_optimum", "isoflop_power_law", "tradeoff_slope", "tradeoff_net", "tradeoff_scaling",
            "pareto_hypervolume", "pareto_front", "pareto_hv_delta", "thinking_effect", "error_share", "error_shift",
            "summary", "crossover"} == set(fit_table["kind"])
    fit_table.to_parquet(tmp_path / "fits.parquet", index=False)
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "fits.parquet"), fit_table)
    again = fits.compute_fits(*_study_args(), n_boot=N_BOOT, seed=0, min_correct=MIN_CORRECT)
    pd.testing.assert_frame_equal(again, fit_table)  # fixed seed: the same table


def _study_args():
    runs = make_runs()
    samples = make_samples(runs)
    return runs, make_metrics(runs, samples), samples, make_baseline(), make_loss_floor()


def test_summary_rows_per_split(fit_table):
    ood = one(fit_table, kind="summary", arch="tpp", budget=1e16, metric="validity", x="ood", parameter="mean")
    assert ood["estimate"] == pytest.approx(0.5)
    # The compute-optimal shape (4x64), not a mean over shapes.
    test = one(fit_table, kind="summary", arch="tpp", budget=1e16, metric="correct_rate", x="test", parameter="mean")
    assert test["estimate"] == pytest.approx(0.24) and test["n_seeds"] == len(SEEDS)
    count = one(fit_table, kind="summary", arch="tpp", budget=1e16, metric="n_correct", x="test")
    assert count["estimate"] == 48 and count["n"] == 200
    for metric in ("copy_rate", "revisit_rate"):
        row = one(fit_table, kind="summary", arch="tpp", budget=1e16, metric=metric, x="test", parameter="mean")
        assert 0 < row["estimate"] < 1


def test_level1_correct_rate_counts_only_unconstrained_prompts(study):
    """The regime row: the compute-optimal runs' greedy correct share on level-1 prompts, mean
    over seeds. With every answer above level 1 made incorrect, it keeps its value while the
    all-level correct rate falls to a quarter of it."""
    runs, metrics, samples, baseline = study
    samples = samples.copy()
    above = (samples["level"] > 1) & (samples["split"] == "test")
    samples.loc[above, ["utility", "creativity"]] = 0.0
    if "correct" in samples.columns:
        samples.loc[above, "correct"] = False
    out = fits.compute_fits(runs, metrics, samples, baseline, loss_floor=make_loss_floor(), n_boot=5, seed=0,
                            min_correct=MIN_CORRECT)
    row = one(out, kind="summary", arch="tpp", budget=1e16, metric="level1_correct_rate", x="test")
    assert row["level"] == 1 and row["estimate"] == pytest.approx(0.24)
    overall = one(out, kind="summary", arch="tpp", budget=1e16, metric="correct_rate", x="test", parameter="mean")
    assert overall["estimate"] == pytest.approx(0.24 / len(LEVELS))


def test_correct_is_derived_from_utility_when_the_column_is_missing(study):
    runs, metrics, samples, baseline = study
    # A valid walk that breaks a constraint has utility 0: valid but not correct.
    broken = samples[samples["split"] == "test"].copy()
    hit = (broken["run_id"] == "tpp-1e+16-4x64-s0") & (broken["decoding"] == "greedy") & broken["valid"]
    broken.loc[hit.idxmax(), ["utility", "creativity"]] = 0.0
    stats = resample.prompt_stats(broken)
    assert resample.n_correct(stats, ["tpp-1e+16-4x64-s0"], "greedy") == 23
    assert stats.sums["validity"][stats.unit_index("tpp-1e+16-4x64-s0", "greedy")].sum() == 24


def test_fits_without_samples_or_metrics_do_not_crash(study):
    runs, metrics, _, _ = study
    out = fits.compute_fits(runs, metrics.iloc[:0], None, None, n_boot=5)
    assert list(out.columns) == fits.COLUMNS and "paired_delta" not in set(out["kind"])
    one_run = runs.iloc[:1]
    s = make_samples(one_run, ood=False)
    out = fits.compute_fits(one_run, make_metrics(one_run, s), s, None, n_boot=5)
    assert pick(out, kind="power_law")["estimate"].isna().all()
    assert pick(out, kind="tradeoff_slope", parameter="net_slope")["note"].str.contains("no null given").all()


def test_isoflop_rows_carry_the_parabola(fit_table):
    rows = pick(fit_table, kind="isoflop_optimum", metric="val_loss", x="params", budget=1e16, arch="tpp")
    est = rows.set_index("parameter")["estimate"]
    assert est["optimum"] == pytest.approx(P_STAR, rel=1e-6)
    u = math.log(P_STAR)
    assert np.polyval([est["c2"], est["c1"], est["c0"]], u) == pytest.approx(est["metric_at_optimum"])
    assert est["c2"] == pytest.approx(K_LOSS)


def test_isoflop_over_params_needs_five_sizes_and_d_over_l_a_fixed_size(fit_table):
    # 3 sizes at 1e15: not estimable, and the row says why.
    row = one(fit_table, kind="isoflop_optimum", metric="val_loss", x="params", budget=1e15, arch="tpp",
              parameter="optimum")
    assert np.isnan(row["estimate"]) and row["method"] == "not_estimable" and "3 model size(s)" in row["note"]
    # d/L over shapes of different sizes mixes size with aspect: never fitted.
    row = one(fit_table, kind="isoflop_optimum", metric="val_loss", x="width_depth_ratio", budget=1e16, arch="tpp",
              parameter="optimum")
    assert np.isnan(row["estimate"]) and "fixed parameter count" in row["note"]
    assert pick(fit_table, kind="isoflop_optimum", x="depth").empty
    # Shapes of one size (12·L·d² = 393216 for 2x128, 8x64; 32x32 has the same): a d/L optimum.
    same = pd.DataFrame({"arch": "tpp", "variant": "tpp", "budget": 1e16, "depth": [2, 8, 32, 2, 8, 32],
                         "width": [128, 64, 32, 128, 64, 32], "params": 393216.0,
                         "val_loss": [1.3, 1.1, 1.4, 1.3, 1.1, 1.4]})
    opt = isoflop.isoflop_optima(same, "val_loss", "width_depth_ratio", maximize=False).iloc[0]
    assert opt["method"] == "parabola" and 1 < opt["optimum"] < 64


def test_thinking_longer_and_the_shift_in_error_types(fit_table):
    # think_x2 adds 0.04 to the EBT's correct rate at every shape: exact in every seed and resample.
    row = one(fit_table, kind="thinking_effect", budget=1e16, metric="correct_rate", decoding="think_x2 vs think_x1")
    assert row["estimate"] == pytest.approx(0.04) and row["n_seeds"] == len(SEEDS)
    assert row["ci_low"] <= 0.04 <= row["ci_high"]
    # At 1e15 think_x1 has 16 correct walks: refused.
    low = one(fit_table, kind="thinking_effect", budget=1e15, metric="correct_rate")
    assert np.isnan(low["estimate"]) and "not comparable" in low["note"]
    # Invalid answers alternate parse and revisit errors, so thinking shifts each by half the gain (−0.02).
    shift = pick(fit_table, kind="error_shift", budget=1e16).set_index("metric")["estimate"]
    assert shift.sum() == pytest.approx(-0.04) and set(shift.index) == {"parse", "revisit"}
    share = one(fit_table, kind="error_share", budget=1e16, metric="parse", decoding="think_x1")
    assert 0 < share["estimate"] < 1 and np.isfinite(share["ci_low"])


# ---------------------------------------------------------------- figures read fits.parquet

FITTING_MODULES = {"fits", "powerlaw", "isoflop", "pareto", "tradeoff", "scaling", "paired", "resample",
                   "fit_surface"}


@pytest.mark.parametrize("module", ["plots", "plots_raw", "plotting"])
def test_plotting_modules_import_no_fitting_module(module):
    path = fits.__file__.replace("fits.py", f"{module}.py")
    imported = set()
    for node in ast.walk(ast.parse(open(path).read())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("analysis"):
            imported |= {node.module.split(".")[-1]} | {a.name for a in node.names}
        elif isinstance(node, ast.Import):
            imported |= {a.name.split(".")[-1] for a in node.names}
    assert not imported & FITTING_MODULES, imported & FITTING_MODULES
    code = f"import sys, analysis.{module}; print(sorted(m for m in sys.modules if m.startswith('analysis')))"
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert not any(f"analysis.{m}'" in loaded for m in FITTING_MODULES), loaded


def test_figures_draw_the_numbers_in_fits(study, fit_table, tmp_path):
    runs, metrics, _, _ = study
    tampered = fit_table.copy()
    curve = (tampered["kind"] == "power_law_curve") & (tampered["arch"] == "tpp") & (tampered["metric"] == "creativity")
    tampered.loc[curve, "estimate"] = 123.0
    drawn = plots.plot_compute_scaling(fits=tampered, runs=runs, metrics=metrics, out_path=tmp_path / "a.png")
    tpp = drawn[(drawn["arch"] == "tpp") & (drawn["metric"] == "creativity")]
    assert len(tpp) and (tpp["estimate"] == 123.0).all()
    # The IsoFLOP figure draws the stored vertex, not a refit one.
    iso = (tampered["kind"] == "isoflop_optimum") & (tampered["parameter"] == "optimum")
    tampered.loc[iso, "estimate"] = 7.0
    drawn = plots.plot_isoflop(fits=tampered, runs=runs, metrics=metrics, out_path=tmp_path / "b.png")
    assert (drawn.loc[drawn["parameter"] == "optimum", "estimate"] == 7.0).all()
    drawn = plots.plot_paired_deltas(fits=fit_table, out_path=tmp_path / "c.png")
    # Every comparable difference is drawn; refused ones (NaN) are not.
    expected = pick(fit_table, kind="paired_delta", parameter="delta").dropna(subset=["estimate"])
    pd.testing.assert_frame_equal(drawn.drop(columns=fits.LABEL).reset_index(drop=True),
                                  expected.sort_values(["variant", "budget", "x"]).reset_index(drop=True))


PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("case", ["full", "empty", "one_run"])
def test_every_figure_renders(study, fit_table, tmp_path, case):
    runs, metrics, samples, _ = study
    table = fit_table
    curves = pd.DataFrame({"run_id": runs["run_id"].repeat(3), "step": [1, 2, 3] * len(runs),
                           "tokens": [1e3, 2e3, 3e3] * len(runs), "train_loss": [3.0, 2.0, 1.5] * len(runs),
                           "val_loss": [np.nan, 2.1, 1.6] * len(runs)})
    samples = samples.assign(energy_by_step=[[3.0, 2.0, 1.0]] * len(samples))
    if case == "empty":
        runs, metrics, samples, curves, table = (t.iloc[:0] for t in (runs, metrics, samples, curves, fit_table))
    if case == "one_run":
        runs = runs.iloc[:1]
        samples = make_samples(runs, ood=False)
        metrics = make_metrics(runs, samples)
        table = fits.compute_fits(runs, metrics, samples, None, n_boot=5)
    tables = dict(fits=table, runs=runs, metrics=metrics, samples=samples, curves=curves)
    names = []
    for module in (plots, plots_raw):
        for name in [n for n in dir(module) if n.startswith("plot_")]:
            getattr(module, name)(**tables, out_path=tmp_path / f"{name}.png")
            names.append(f"{name}.png")
    assert all((tmp_path / n).read_bytes()[:8] == PNG_MAGIC for n in names)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(names)  # atomic: no temp files left


# ---------------------------------------------------------------- report pages

def test_findings_first_screen_answers(fit_table):
    page = findings.findings_html(fit_table)
    first = page[page.index("class=answer"):page.index("</div>")]
    assert first.count("<p>") <= 5
    regime = first[first.index("<table class=regime>"):first.index("</table>")]
    assert "<th>1e15</th>" in regime and "<td>Transformer++</td><td>0.12 (24 of 200)" in regime  # rate with counts
    assert "ΔC -0.48 [" in first and "From 1e16 to 1e18 FLOPs ΔC changes by -1.44 [" in first
    change = one(fit_table, kind="paired_delta_change", x="default_decoding", metric="creativity")
    assert change["estimate"] == pytest.approx(6 * (0.64 - 0.96) - 6 * (0.16 - 0.24))
    assert "whether ΔC survives length control is unknown" in first  # the study has no novelty_lc
    assert "loss floor is 1 [0.99, 1.01]" in first and "exponent ratio 1.3" in first
    assert "What cannot be concluded" in first
    # Every decoding named anywhere on the page is defined.
    for name in ("greedy", "bestofk_ll_k4", "think_x2", "verify_m4", "tilt_beta1_k4"):
        assert f"<dt>{name}</dt>" in page
    assert "level 0" not in page
    assert "Does the EBT move the novelty" in page and "feasible set" in page  # tests/test_workflow.py reads these


def test_findings_never_print_a_degenerate_interval(fit_table):
    flat = fit_table.copy()
    rows = (flat["kind"] == "paired_delta") & (flat["parameter"] == "delta") & flat["estimate"].notna()
    flat.loc[rows, ["estimate", "ci_low", "ci_high"]] = [-0.0785, -0.0785, -0.0785]
    page = findings.findings_html(flat)
    assert "[-0.0785, -0.0785]" not in page and "-0.0785 (no interval)" in page
    flat.loc[rows, ["estimate", "ci_low", "ci_high"]] = [0.01, -0.02, 0.04]
    assert "ΔC 0.01 [-0.02, 0.04]" in findings.findings_html(flat)


def test_findings_with_length_control_say_whether_the_sign_survives(study):
    runs, metrics, samples, baseline = study
    # novelty_lc constant: C_lc = U·1, so ΔC_lc has the sign of Δ correct rate (negative).
    lc = samples.assign(novelty_lc=np.where(samples["valid"], 1.0, np.nan))
    out = fits.compute_fits(runs, metrics, lc, baseline, n_boot=20)
    first = findings.findings_html(out).split("</div>")[0]
    assert "the sign of ΔC survives length control" in first and "ΔC_lc" in first
    tuning = pd.DataFrame({"arch": ["tpp", "tpp", "ebt", "ebt"], "variant": ["tpp", "tpp", "system2", "system2"],
                           "lr": [1e-3, 3e-3, 1e-3, 3e-3], "val_loss": [2.0, 1.9, 2.1, 2.2],
                           "chosen": [False, True, True, False]})
    page = findings.findings_html(out, tuning)
    assert "tpp tpp: 2 runs" in page and "ebt system2: 2 runs" in page


def test_findings_embed_the_figures(fit_table, tmp_path):
    png = tmp_path / "paired_deltas.png"
    png.write_bytes(PNG_MAGIC + b"0" * 10)
    page = findings.findings_html(fit_table, figures={"paired_deltas": str(png), "missing": str(tmp_path / "x.png")})
    assert page.count("data:image/png;base64,") == 1


def test_shape_finding_reads_the_budget_with_the_most_runs():
    """The IsoFLOP shapes train at one mid budget; the finding must report that budget's
    optimum, not the largest budget's single-shape row."""
    base = {"kind": "isoflop_optimum", "arch": "tpp", "variant": "tpp", "parameter": "optimum", "ci_method": "",
            "note": ""}
    rows = [
        {**base, "metric": "val_loss", "x": "params", "budget": 2.5e11, "n": 15, "estimate": 3e4, "ci_low": 2e4,
         "ci_high": 4e4, "method": "parabola"},
        {**base, "metric": "val_loss", "x": "width_depth_ratio", "budget": 2.5e11, "n": 15, "estimate": np.nan,
         "ci_low": np.nan, "ci_high": np.nan, "method": "not_estimable",
         "note": "not estimable: the d/L shapes at this budget differ in parameter count (1.3e4-5e4)"},
        {**base, "metric": "val_loss", "x": "params", "budget": 4.5e11, "n": 3, "estimate": np.nan, "ci_low": np.nan,
         "ci_high": np.nan, "method": "not_estimable", "note": "not estimable: 1 model size(s)"},
    ]
    (line,) = findings.isoflop_sentences(pd.DataFrame(rows))
    assert "At 2.5e11 FLOPs (15 runs)" in line and "val_loss over parameters: optimum 3e4 [2e4, 4e4]" in line
    assert "d/L: not estimable: the d/L shapes" in line


def test_samples_table_is_bounded_and_shows_walks(study):
    runs, metrics, samples, _ = study
    rows = samples_table.sample_rows(samples, runs, metrics)
    n_settings = sum(len(v) for v in DECODINGS.values())
    assert len(rows) == samples_table.PROMPTS_PER_LEVEL * len(LEVELS) * n_settings * len(BUDGETS)
    assert rows["prompt_id"].nunique() == samples_table.PROMPTS_PER_LEVEL * len(LEVELS)
    page = samples_table.samples_html(rows)
    assert "a r b" in page and "<input" in page


def test_log_axes_have_few_distinct_labels():
    from matplotlib import pyplot as plt

    from analysis import plotting

    assert plotting.tick_labels([12640.0, 12650.0]) == {12640.0: "1.264e4", 12650.0: "1.265e4"}
    fig, ax = plt.subplots()
    narrow = np.linspace(2e9, 6e9, 12)  # many values inside one decade: decade ticks would label nothing
    plotting.log_axis(ax, narrow)
    ticks = ax.xaxis.get_major_locator()()
    assert ax.get_xscale() == "log" and 2 <= len(ticks) <= 6
    labels = [ax.xaxis.get_major_formatter()(t) for t in ticks]
    assert len(set(labels)) == len(labels) and labels[0] == "2e9"
    plt.close(fig)


def test_numbers_on_the_page_drop_float_residue_but_keep_small_values():
    assert findings.num(1.85e-17) == "0" and findings.num(-9.25e-18) == "0"
    assert findings.num(-1.38e-4) == "-1.38e-4" and findings.num(0.0123) == "0.0123" and findings.num(np.nan) == "n/a"


def test_detail_tables_bold_exactly_the_differences_whose_interval_excludes_zero(fit_table):
    hv = pick(fit_table, kind="pareto_hv_delta")
    fits_with_effects = fit_table.copy()
    rows = np.flatnonzero((fits_with_effects["kind"] == "pareto_hv_delta").to_numpy())
    assert len(rows) >= 3
    # three hand-set intervals: above 0, below 0, across 0
    for i, (est, lo, hi) in zip(rows[:3], [(0.5, 0.1, 0.9), (-0.4, -0.7, -0.2), (0.05, -0.3, 0.4)]):
        fits_with_effects.iloc[i, fits_with_effects.columns.get_indexer(["estimate", "ci_low", "ci_high", "note"])] = \
            [est, lo, hi, ""]
    for i in rows[3:]:
        fits_with_effects.iloc[i, fits_with_effects.columns.get_indexer(["estimate", "ci_low", "ci_high", "note"])] = \
            [0.0, -1.0, 1.0, ""]
    text, table = findings.frontier(fits_with_effects)[:2]
    assert text.startswith(f"Of {len(hv)} differences in hypervolume (EBT minus Transformer++), 2 have a 95% interval "
                           "that excludes 0 (1 up, 1 down)")
    assert "<b>0.5 [0.1, 0.9]</b>" in table and "<b>-0.4 [-0.7, -0.2]</b>" in table
    assert "0.05 [-0.3, 0.4]" in table and "<b>0.05" not in table
    page = findings.findings_html(fits_with_effects)
    assert "<p><table" not in page and table in page  # a table never sits inside a paragraph
