"""All fits of the study in one tidy long table (fits.parquet).

`compute_fits(runs, metrics, n_boot, seed)` returns one row per estimated
quantity. Columns:

    kind        what was fitted (see below)
    arch        "tpp" | "ebt"; "ebt/tpp" for the scaling-rate ratio
    decoding    decoding setting; "-" where none applies (val_loss fits)
    metric      the fitted quantity: creativity, validity, val_loss, novelty_valid, ...
    x           the independent variable / shape axis: flops_measured, params,
                depth, width, width_depth_ratio, level, "novelty_valid,utility"
    budget      FLOP budget for per-budget fits, else NaN
    run_id      for per-run fits and Pareto-front points, else ""
    level       utility level of a Pareto-front point, else NaN
    parameter   which number of the fit this row holds (exponent, prefactor, optimum, ...)
    estimate    the number (NaN when it could not be estimated; see note)
    ci_low, ci_high          95% interval; ci_method says which kind
    ci_method   "bootstrap_percentile" | "ols_t" | "nls_t" | "" (none)
    ols_ci_low, ols_ci_high  OLS t-interval, on power-law rows beside the bootstrap one
    n           points used in the fit
    n_dropped   points dropped because they could not be logged (y <= 0)
    n_excluded_diverged      runs of that arch (and budget) left out because status != "ok"
    n_boot      bootstrap resamples used (0 if no bootstrap); seed: their RNG seed
    method      for IsoFLOP rows: parabola | best_grid_point | no_interior_optimum | no_data
    note        why an estimate is NaN, or a caveat

Kinds and their parameters:

    power_law            y = prefactor · flops_measured^exponent per (arch, decoding) for
                         creativity and validity (level-0 rows), and per arch for val_loss.
                         Needs >= 2 budgets: within one budget the spread of measured FLOPs is
                         shape noise, not a compute axis.
    saturating_power_law val_loss = E + A · flops^(-b) per arch (parameters E, A, b), fitted
                         to the lowest-loss run of each budget; needs >= 4 budgets.
    isoflop_optimum      per (arch, budget, metric, axis): optimum, edge_distance,
                         metric_at_optimum. Metrics: val_loss (minimised) and creativity
                         (maximised) at the architecture's default decoding.
    scaling_rate         ebt.md's slope_ebt / slope_tpp - 1 of val_loss (= log perplexity)
                         against ln X, X = flops_measured or params (parameter "ratio"), plus
                         each architecture's slope ("slope").
    tradeoff_slope       per (run, decoding): slope of novelty_valid against utility level.
    pareto_hypervolume   per (arch, budget): hypervolume of the (novelty_valid, utility) front
                         over all decodings, runs and levels >= 1, reference (0, 0);
                         also n_front (points on the front).
    pareto_front         per front point: two rows, parameter novelty_valid and utility.

Choice for IsoFLOP creativity: each run is scored at its architecture's default
decoding (DEFAULT_DECODING: greedy for Transformer++, think_x1 for EBT, i.e. the
training number of optimisation steps), not at its best decoding. The max over
~10 noisy settings is biased upward, more so for runs with fewer valid samples,
and would compare shapes at different inference compute.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis import isoflop, pareto, powerlaw, tradeoff

DEFAULT_DECODING = {"tpp": "greedy", "ebt": "think_x1"}
NO_DECODING = "-"
COLUMNS = [
    "kind", "arch", "decoding", "metric", "x", "budget", "run_id", "level", "parameter",
    "estimate", "ci_low", "ci_high", "ci_method", "ols_ci_low", "ols_ci_high",
    "n", "n_dropped", "n_excluded_diverged", "n_boot", "seed", "method", "note",
]
_DEFAULTS = {
    "arch": "", "decoding": NO_DECODING, "metric": "", "x": "", "budget": np.nan, "run_id": "",
    "level": np.nan, "estimate": np.nan, "ci_low": np.nan, "ci_high": np.nan, "ci_method": "",
    "ols_ci_low": np.nan, "ols_ci_high": np.nan, "n": 0, "n_dropped": 0,
    "n_excluded_diverged": 0, "n_boot": 0, "seed": -1, "method": "", "note": "",
}


def _row(**fields) -> dict:
    return _DEFAULTS | fields


def ok_runs(runs: pd.DataFrame) -> pd.DataFrame:
    return runs[runs["status"] == "ok"]


def _n_excluded(runs: pd.DataFrame, **match) -> int:
    bad = runs["status"] != "ok"
    for col, value in match.items():
        bad &= runs[col] == value
    return int(bad.sum())


def _power_law_rows(xs, ys, n_boot, seed, n_budgets, **labels) -> list[dict]:
    fit = powerlaw.fit_power_law(xs, ys)
    if n_budgets < 2:
        fit = powerlaw.PowerLawFit.unidentified(fit.n_points, fit.n_dropped, f"{n_budgets} budget(s): compute exponent needs >= 2")
    if np.isfinite(fit.exponent):
        boot_b, boot_a = powerlaw.bootstrap_power_law(xs, ys, n_boot, seed)
    else:
        boot_b = boot_a = powerlaw.BootstrapCI(np.nan, np.nan, 0, seed)
    common = labels | {"kind": "power_law", "ci_method": "bootstrap_percentile", "n": fit.n_points,
                       "n_dropped": fit.n_dropped, "seed": seed, "note": fit.note}
    return [
        _row(**common, parameter="exponent", estimate=fit.exponent, ci_low=boot_b.low, ci_high=boot_b.high,
             ols_ci_low=fit.exponent_ci[0], ols_ci_high=fit.exponent_ci[1], n_boot=boot_b.n_boot),
        _row(**common, parameter="prefactor", estimate=fit.prefactor, ci_low=boot_a.low, ci_high=boot_a.high,
             ols_ci_low=fit.prefactor_ci[0], ols_ci_high=fit.prefactor_ci[1], n_boot=boot_a.n_boot),
    ]


def _compute_scaling(runs, ok, level0, n_boot, seed) -> list[dict]:
    rows = []
    for arch, arch_runs in ok.groupby("arch", sort=True):
        excluded = _n_excluded(runs, arch=arch)
        n_budgets = arch_runs["budget"].nunique()
        rows += _power_law_rows(arch_runs["flops_measured"], arch_runs["val_loss"], n_boot, seed, n_budgets,
                                arch=arch, metric="val_loss", x="flops_measured", n_excluded_diverged=excluded)
        # The loss floor is a property of the best model at each compute, so the
        # saturating form is fitted to the compute frontier: one run per budget.
        fitted = arch_runs.dropna(subset=["val_loss"])
        frontier = fitted.loc[fitted.groupby("budget")["val_loss"].idxmin()]
        sat = powerlaw.fit_saturating_power_law(frontier["flops_measured"], frontier["val_loss"])
        for name in ("E", "A", "b"):
            rows.append(_row(kind="saturating_power_law", arch=arch, metric="val_loss", x="flops_measured",
                             parameter=name, estimate=getattr(sat, name), ci_low=sat.ci[name][0],
                             ci_high=sat.ci[name][1], ci_method="nls_t", n=sat.n_points,
                             n_excluded_diverged=excluded, note=sat.note))
        arch_metrics = level0[level0["arch"] == arch]
        for decoding, grp in arch_metrics.groupby("decoding", sort=True):
            for metric in ("creativity", "validity"):
                rows += _power_law_rows(grp["flops_measured"], grp[metric], n_boot, seed, grp["budget"].nunique(),
                                        arch=arch, decoding=decoding, metric=metric, x="flops_measured",
                                        n_excluded_diverged=excluded)
    return rows


def _isoflop_rows(runs, ok, level0) -> list[dict]:
    default = level0[level0["decoding"] == level0["arch"].map(DEFAULT_DECODING)]
    tables = [
        ("val_loss", False, ok, NO_DECODING),
        ("creativity", True, default, "default"),
    ]
    rows = []
    for metric, maximize, table, decoding_label in tables:
        for axis in isoflop.SHAPE_AXES:
            optima = isoflop.isoflop_optima(table, metric, axis, maximize)
            for opt in optima.itertuples(index=False):
                decoding = DEFAULT_DECODING.get(opt.arch, "") if decoding_label == "default" else decoding_label
                common = dict(kind="isoflop_optimum", arch=opt.arch, budget=opt.budget, decoding=decoding,
                              metric=metric, x=axis, n=opt.n_points, method=opt.method, note=opt.note,
                              n_excluded_diverged=_n_excluded(runs, arch=opt.arch, budget=opt.budget))
                rows += [_row(**common, parameter=p, estimate=getattr(opt, p))
                         for p in ("optimum", "edge_distance", "metric_at_optimum")]
    return rows


def _scaling_rate_rows(runs, ok, n_boot, seed) -> list[dict]:
    rows = []
    for x in ("flops_measured", "params"):
        rate = powerlaw.scaling_rate_ratio(ok, x, n_boot, seed)
        common = dict(kind="scaling_rate", metric="val_loss", x=x, seed=seed)
        rows.append(_row(**common, arch="ebt/tpp", parameter="ratio", estimate=rate.ratio, ci_low=rate.ci.low,
                         ci_high=rate.ci.high, ci_method="bootstrap_percentile", n=rate.n_ebt + rate.n_tpp,
                         n_boot=rate.ci.n_boot, n_excluded_diverged=_n_excluded(runs), note=rate.note))
        for arch, slope, n in (("ebt", rate.slope_ebt, rate.n_ebt), ("tpp", rate.slope_tpp, rate.n_tpp)):
            rows.append(_row(**common, arch=arch, parameter="slope", estimate=slope, n=n,
                             n_excluded_diverged=_n_excluded(runs, arch=arch)))
    return rows


def _tradeoff_rows(ok_metrics) -> list[dict]:
    slopes = tradeoff.tradeoff_slopes(ok_metrics)
    info = ok_metrics.drop_duplicates("run_id").set_index("run_id")[["arch", "budget"]]
    slopes = slopes.join(info, on="run_id")
    return [_row(kind="tradeoff_slope", arch=s.arch, budget=s.budget, run_id=s.run_id, decoding=s.decoding,
                 metric="novelty_valid", x="level", parameter="slope", estimate=s.slope, ci_low=s.ci_low,
                 ci_high=s.ci_high, ci_method="ols_t", n=s.n_levels, note=s.note)
            for s in slopes.itertuples(index=False)]


def _pareto_rows(runs, ok_metrics) -> list[dict]:
    points = ok_metrics[ok_metrics["level"] >= 1]
    marked, summary = pareto.pareto_fronts(points, by=["arch", "budget"])
    rows = []
    for s in summary.itertuples(index=False):
        common = dict(kind="pareto_hypervolume", arch=s.arch, budget=s.budget, metric="novelty_valid,utility",
                      x="novelty_valid,utility", decoding="all", n=s.n_points,
                      n_excluded_diverged=_n_excluded(runs, arch=s.arch, budget=s.budget),
                      note=f"reference point {s.reference}")
        rows += [_row(**common, parameter="hypervolume", estimate=s.hypervolume),
                 _row(**common, parameter="n_front", estimate=float(s.n_front))]
    for p in marked[marked["on_front"]].itertuples(index=False):
        common = dict(kind="pareto_front", arch=p.arch, budget=p.budget, run_id=p.run_id, decoding=p.decoding,
                      level=p.level, metric="novelty_valid,utility", x="novelty_valid,utility")
        rows += [_row(**common, parameter="novelty_valid", estimate=p.novelty_valid),
                 _row(**common, parameter="utility", estimate=p.utility)]
    return rows


def compute_fits(runs: pd.DataFrame, metrics: pd.DataFrame, n_boot: int = 1000, seed: int = 0) -> pd.DataFrame:
    """Every fit of the study as one long table; see the module docstring for columns."""
    ok = ok_runs(runs)
    ok_metrics = metrics[metrics["run_id"].isin(ok["run_id"])]
    level0 = ok_metrics[ok_metrics["level"] == 0]
    rows = (
        _compute_scaling(runs, ok, level0, n_boot, seed)
        + _isoflop_rows(runs, ok, level0)
        + _scaling_rate_rows(runs, ok, n_boot, seed)
        + _tradeoff_rows(ok_metrics)
        + _pareto_rows(runs, ok_metrics)
    )
    fits = pd.DataFrame(rows, columns=COLUMNS)
    return fits.astype({"n": int, "n_dropped": int, "n_excluded_diverged": int, "n_boot": int, "seed": int,
                        "budget": float, "level": float, "estimate": float})
