"""All fits of the study in one tidy long table (fits.parquet).

`compute_fits(runs, metrics, n_boot, seed)` returns one row per estimated
quantity. Columns:

    kind        what was fitted (see below)
    arch        "tpp" | "ebt"; "ebt/tpp" for the scaling-rate ratio
    variant     "tpp" | "system1" | "system2" (runs.variant); "<variant>/tpp" for the
                scaling-rate ratio. Every fit groups by (arch, variant): two EBT
                variants are never pooled. arch_label(arch, variant) gives the
                display label ("tpp", "ebt-system1", ...) used by the figures.
    decoding    decoding setting; "-" where none applies (val_loss fits)
    metric      the fitted quantity: creativity, validity, val_loss, novelty_valid, ...
    x           the independent variable / shape axis: flops_measured, params, budget,
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
    method      for isoflop_optimum rows: parabola | best_grid_point | no_interior_optimum | no_data;
                for isoflop_power_law rows: "parabola_vertices"
    note        why an estimate is NaN, or a caveat

Kinds and their parameters:

    power_law            y = prefactor · flops_measured^exponent per (arch, variant, decoding)
                         for creativity and validity (level-0 rows), and per (arch, variant)
                         for val_loss.
                         Needs >= 2 budgets: within one budget the spread of measured FLOPs is
                         shape noise, not a compute axis.
    saturating_power_law val_loss = E + A · flops^(-b) per (arch, variant) (parameters E, A, b), fitted
                         to the lowest-loss run of each budget; needs >= 4 budgets.
    isoflop_optimum      per (arch, variant, budget, metric, axis): optimum, edge_distance,
                         metric_at_optimum. Metrics: val_loss (minimised) and creativity
                         (maximised) at the architecture's default decoding. The optimum
                         row carries a bootstrap CI of the vertex (runs of the budget
                         resampled, parabola refitted; needs >= isoflop.MIN_BOOT_POINTS
                         runs, else NaN with a note) with n_boot and seed.
    isoflop_power_law    Approach 2: optimum params = prefactor · budget^exponent per
                         (arch, variant, metric), through the parabola vertices over params
                         that lie inside the grid (edge_distance >= 0; extrapolated vertices
                         are biased and left out, counted in the note). Needs >= 2 such
                         budgets, else NaN with a note. x = "budget"; CI: bootstrap over
                         the budgets' optima.
    scaling_rate         ebt.md's slope_ebt / slope_tpp - 1 of val_loss (= log perplexity)
                         against ln X, X = flops_measured or params (parameter "ratio"),
                         one ratio per EBT variant against tpp (arch "ebt/tpp", variant
                         "<variant>/tpp"), plus each (arch, variant)'s slope ("slope").
    tradeoff_slope       per (run, decoding): slope of novelty_valid against utility level.
    pareto_hypervolume   per (arch, variant, budget): hypervolume of the (novelty_valid, utility)
                         front over all decodings, runs and levels >= 1, reference (0, 0),
                         with a bootstrap CI over the points (needs >= pareto.MIN_BOOT_POINTS;
                         never above the estimate, see pareto.py); also n_front.
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
LABEL = "arch_label"  # derived (arch, variant) column added to working copies of the tables
COLUMNS = [
    "kind", "arch", "variant", "decoding", "metric", "x", "budget", "run_id", "level", "parameter",
    "estimate", "ci_low", "ci_high", "ci_method", "ols_ci_low", "ols_ci_high",
    "n", "n_dropped", "n_excluded_diverged", "n_boot", "seed", "method", "note",
]
_DEFAULTS = {
    "arch": "", "variant": "", "decoding": NO_DECODING, "metric": "", "x": "", "budget": np.nan, "run_id": "",
    "level": np.nan, "estimate": np.nan, "ci_low": np.nan, "ci_high": np.nan, "ci_method": "",
    "ols_ci_low": np.nan, "ols_ci_high": np.nan, "n": 0, "n_dropped": 0,
    "n_excluded_diverged": 0, "n_boot": 0, "seed": -1, "method": "", "note": "",
}


def arch_label(arch: str, variant) -> str:
    """Display label of an (arch, variant) pair: "tpp", "ebt-system1", "ebt-system2".

    A missing variant, or one equal to the arch, gives the arch alone.
    """
    if variant is None or (isinstance(variant, float) and np.isnan(variant)) or variant in ("", arch):
        return str(arch)
    return f"{arch}-{variant}"


def with_labels(table: pd.DataFrame) -> pd.DataFrame:
    """Copy of table with `variant` filled (the arch where missing) and the LABEL column."""
    if "arch" not in table.columns:
        table = table.assign(arch=pd.Series(dtype=object))
    variant = table["variant"] if "variant" in table.columns else pd.Series(np.nan, index=table.index, dtype=object)
    variant = variant.astype(object).where(variant.notna() & (variant.astype(str) != ""), table["arch"])
    labels = [arch_label(a, v) for a, v in zip(table["arch"], variant)]
    return table.assign(variant=variant, **{LABEL: pd.Series(labels, index=table.index, dtype=object)})


RUN_COLUMNS = ["run_id", "arch", "variant", "budget", "depth", "width", "params", "flops_measured", "val_loss",
               "status"]
METRIC_COLUMNS = ["run_id", "arch", "variant", "budget", "depth", "width", "params", "flops_measured", "decoding",
                  "level", "creativity", "validity", "novelty_valid", "utility"]


def _ensure_columns(table: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """A table with no rows may come without columns (an empty Parquet file): add them."""
    missing = [c for c in columns if c not in table.columns]
    if missing and len(table) == 0:
        table = table.assign(**{c: pd.Series(dtype=float if c not in ("run_id", "arch", "variant", "decoding",
                                                                        "status") else object) for c in missing})
    return table


def _row(**fields) -> dict:
    return _DEFAULTS | fields


def ok_runs(runs: pd.DataFrame) -> pd.DataFrame:
    return runs[runs["status"] == "ok"]


def _n_excluded(runs: pd.DataFrame, **match) -> int:
    bad = runs["status"] != "ok"
    for col, value in match.items():
        bad &= runs[col] == value
    return int(bad.sum())


def _power_law_rows(xs, ys, n_boot, seed, n_budgets, kind="power_law", **labels) -> list[dict]:
    fit = powerlaw.fit_power_law(xs, ys)
    if n_budgets < 2:
        fit = powerlaw.PowerLawFit.unidentified(fit.n_points, fit.n_dropped, f"{n_budgets} budget(s): compute exponent needs >= 2")
    if np.isfinite(fit.exponent):
        boot_b, boot_a = powerlaw.bootstrap_power_law(xs, ys, n_boot, seed)
    else:
        boot_b = boot_a = powerlaw.BootstrapCI(np.nan, np.nan, 0, seed)
    note = labels.pop("note", "")
    common = labels | {"kind": kind, "ci_method": "bootstrap_percentile", "n": fit.n_points,
                       "n_dropped": fit.n_dropped, "seed": seed, "note": "; ".join(p for p in (note, fit.note) if p)}
    return [
        _row(**common, parameter="exponent", estimate=fit.exponent, ci_low=boot_b.low, ci_high=boot_b.high,
             ols_ci_low=fit.exponent_ci[0], ols_ci_high=fit.exponent_ci[1], n_boot=boot_b.n_boot),
        _row(**common, parameter="prefactor", estimate=fit.prefactor, ci_low=boot_a.low, ci_high=boot_a.high,
             ols_ci_low=fit.prefactor_ci[0], ols_ci_high=fit.prefactor_ci[1], n_boot=boot_a.n_boot),
    ]


def _compute_scaling(runs, ok, level0, n_boot, seed) -> list[dict]:
    rows = []
    for (arch, variant), arch_runs in ok.groupby(["arch", "variant"], sort=True):
        ids = dict(arch=arch, variant=variant)
        excluded = _n_excluded(runs, **ids)
        n_budgets = arch_runs["budget"].nunique()
        rows += _power_law_rows(arch_runs["flops_measured"], arch_runs["val_loss"], n_boot, seed, n_budgets,
                                **ids, metric="val_loss", x="flops_measured", n_excluded_diverged=excluded)
        # The loss floor is a property of the best model at each compute, so the
        # saturating form is fitted to the compute frontier: one run per budget.
        fitted = arch_runs.dropna(subset=["val_loss"])
        frontier = fitted.loc[fitted.groupby("budget")["val_loss"].idxmin()]
        sat = powerlaw.fit_saturating_power_law(frontier["flops_measured"], frontier["val_loss"])
        for name in ("E", "A", "b"):
            rows.append(_row(kind="saturating_power_law", **ids, metric="val_loss", x="flops_measured",
                             parameter=name, estimate=getattr(sat, name), ci_low=sat.ci[name][0],
                             ci_high=sat.ci[name][1], ci_method="nls_t", n=sat.n_points,
                             n_excluded_diverged=excluded, note=sat.note))
        arch_metrics = level0[(level0["arch"] == arch) & (level0["variant"] == variant)]
        for decoding, grp in arch_metrics.groupby("decoding", sort=True):
            for metric in ("creativity", "validity"):
                rows += _power_law_rows(grp["flops_measured"], grp[metric], n_boot, seed, grp["budget"].nunique(),
                                        **ids, decoding=decoding, metric=metric, x="flops_measured",
                                        n_excluded_diverged=excluded)
    return rows


def isoflop_tables(ok: pd.DataFrame, level0: pd.DataFrame) -> list[tuple[str, bool, pd.DataFrame]]:
    """(metric, maximize, table) of the IsoFLOP analyses: val_loss over runs, creativity at
    each architecture's default decoding."""
    default = level0[level0["decoding"] == level0["arch"].map(DEFAULT_DECODING)]
    return [("val_loss", False, ok), ("creativity", True, default)]


def _isoflop_rows(runs, ok, level0, n_boot, seed) -> list[dict]:
    rows = []
    for metric, maximize, table in isoflop_tables(ok, level0):
        for axis in isoflop.SHAPE_AXES:
            optima = isoflop.isoflop_optima(table, metric, axis, maximize, n_boot=n_boot, seed=seed)
            for opt in optima.itertuples(index=False):
                decoding = NO_DECODING if metric == "val_loss" else DEFAULT_DECODING.get(opt.arch, "")
                common = dict(kind="isoflop_optimum", arch=opt.arch, variant=opt.variant, budget=opt.budget,
                              decoding=decoding, metric=metric, x=axis, n=opt.n_points, method=opt.method,
                              n_excluded_diverged=_n_excluded(runs, arch=opt.arch, variant=opt.variant,
                                                              budget=opt.budget))
                ci_note = opt.ci_note if opt.method == "parabola" else ""
                rows.append(_row(**common, parameter="optimum", estimate=opt.optimum, ci_low=opt.ci_low,
                                 ci_high=opt.ci_high, ci_method="bootstrap_percentile" if opt.n_boot else "",
                                 n_boot=opt.n_boot, seed=seed, note="; ".join(p for p in (opt.note, ci_note) if p)))
                rows += [_row(**common, parameter=p, estimate=getattr(opt, p), note=opt.note)
                         for p in ("edge_distance", "metric_at_optimum")]
            if axis == "params":
                rows += _isoflop_power_law_rows(runs, optima, metric, n_boot, seed)
    return rows


def _isoflop_power_law_rows(runs, optima: pd.DataFrame, metric: str, n_boot: int, seed: int) -> list[dict]:
    """Approach 2: a power law of the interior parabola optima over params against budget."""
    rows = []
    for (arch, variant), grp in optima.groupby(["arch", "variant"], sort=True):
        parabola = grp[grp["method"] == "parabola"]
        inside = parabola[parabola["edge_distance"] >= 0]
        notes = []
        if len(parabola) > len(inside):
            notes.append(f"{len(parabola) - len(inside)} vertex(es) outside the grid left out")
        if len(grp) > len(parabola):
            notes.append(f"{len(grp) - len(parabola)} budget(s) without a parabola vertex")
        n_budgets = inside["budget"].nunique()
        if n_budgets < 2:
            notes.append(f"{n_budgets} budget(s) with an interior optimum; need >= 2")
        rows += _power_law_rows(inside["budget"], inside["optimum"], n_boot, seed, n_budgets,
                                kind="isoflop_power_law", arch=arch, variant=variant,
                                decoding=NO_DECODING if metric == "val_loss" else DEFAULT_DECODING.get(arch, ""),
                                metric=metric, x="budget", method="parabola_vertices",
                                n_excluded_diverged=_n_excluded(runs, arch=arch, variant=variant),
                                note="; ".join(notes))
        for r in rows[-2:]:
            if n_budgets < 2:  # replace the generic power-law note by the IsoFLOP-specific one
                r["note"] = "; ".join(notes)
    return rows


def _scaling_rate_rows(runs, ok, n_boot, seed) -> list[dict]:
    rows = []
    pairs = ok[[LABEL, "arch", "variant"]].drop_duplicates().sort_values(LABEL)
    ebt_pairs = pairs[pairs["arch"] == "ebt"]
    for x in ("flops_measured", "params"):
        common = dict(kind="scaling_rate", metric="val_loss", x=x, seed=seed)
        if ebt_pairs.empty:
            rows.append(_row(**common, arch="ebt/tpp", variant="", parameter="ratio", n_boot=0,
                             n=int((ok["arch"] == "tpp").sum()), n_excluded_diverged=_n_excluded(runs),
                             note="no EBT runs"))
        for pair in ebt_pairs.itertuples(index=False):
            rate = powerlaw.scaling_rate_ratio(ok, x, n_boot, seed, group_col=LABEL, treatment=getattr(pair, LABEL),
                                               baseline="tpp")
            rows.append(_row(**common, arch="ebt/tpp", variant=f"{pair.variant}/tpp", parameter="ratio",
                             estimate=rate.ratio, ci_low=rate.ci.low, ci_high=rate.ci.high,
                             ci_method="bootstrap_percentile", n=rate.n_ebt + rate.n_tpp, n_boot=rate.ci.n_boot,
                             n_excluded_diverged=_n_excluded(runs, arch="ebt", variant=pair.variant)
                             + _n_excluded(runs, arch="tpp"), note=rate.note))
        for pair in pairs.itertuples(index=False):
            sub = ok[ok[LABEL] == getattr(pair, LABEL)]
            good = np.isfinite(sub["val_loss"].to_numpy(float)) & (sub[x].to_numpy(float) > 0)
            slope, _ = powerlaw._log_slope_intercept(np.log(sub[x].to_numpy(float)[good]),
                                                     sub["val_loss"].to_numpy(float)[good])
            rows.append(_row(**common, arch=pair.arch, variant=pair.variant, parameter="slope", estimate=slope,
                             n=int(good.sum()), n_excluded_diverged=_n_excluded(runs, arch=pair.arch,
                                                                                variant=pair.variant),
                             note="" if np.isfinite(slope) else "slope not identified"))
    return rows


def _tradeoff_rows(ok_metrics) -> list[dict]:
    slopes = tradeoff.tradeoff_slopes(ok_metrics)
    info = ok_metrics.drop_duplicates("run_id").set_index("run_id")[["arch", "variant", "budget"]]
    slopes = slopes.join(info, on="run_id")
    return [_row(kind="tradeoff_slope", arch=s.arch, variant=s.variant, budget=s.budget, run_id=s.run_id,
                 decoding=s.decoding, metric="novelty_valid", x="level", parameter="slope", estimate=s.slope,
                 ci_low=s.ci_low, ci_high=s.ci_high, ci_method="ols_t", n=s.n_levels, note=s.note)
            for s in slopes.itertuples(index=False)]


def _pareto_rows(runs, ok_metrics, n_boot, seed) -> list[dict]:
    points = ok_metrics[ok_metrics["level"] >= 1]
    marked, summary = pareto.pareto_fronts(points, by=["arch", "variant", "budget"], n_boot=n_boot, seed=seed)
    rows = []
    for s in summary.itertuples(index=False):
        common = dict(kind="pareto_hypervolume", arch=s.arch, variant=s.variant, budget=s.budget,
                      metric="novelty_valid,utility", x="novelty_valid,utility", decoding="all", n=s.n_points,
                      n_excluded_diverged=_n_excluded(runs, arch=s.arch, variant=s.variant, budget=s.budget))
        ref = f"reference point {s.reference}"
        rows += [_row(**common, parameter="hypervolume", estimate=s.hypervolume, ci_low=s.hv_ci_low,
                      ci_high=s.hv_ci_high, ci_method="bootstrap_percentile" if s.n_boot else "", n_boot=s.n_boot,
                      seed=seed, note="; ".join(p for p in (ref, s.ci_note) if p)),
                 _row(**common, parameter="n_front", estimate=float(s.n_front), note=ref)]
    for p in marked[marked["on_front"]].itertuples(index=False):
        common = dict(kind="pareto_front", arch=p.arch, variant=p.variant, budget=p.budget, run_id=p.run_id,
                      decoding=p.decoding, level=p.level, metric="novelty_valid,utility", x="novelty_valid,utility")
        rows += [_row(**common, parameter="novelty_valid", estimate=p.novelty_valid),
                 _row(**common, parameter="utility", estimate=p.utility)]
    return rows


def compute_fits(runs: pd.DataFrame, metrics: pd.DataFrame, n_boot: int = 1000, seed: int = 0) -> pd.DataFrame:
    """Every fit of the study as one long table; see the module docstring for columns."""
    runs = with_labels(_ensure_columns(runs, RUN_COLUMNS))
    metrics = with_labels(_ensure_columns(metrics, METRIC_COLUMNS))
    ok = ok_runs(runs)
    ok_metrics = metrics[metrics["run_id"].isin(ok["run_id"])]
    level0 = ok_metrics[ok_metrics["level"] == 0]
    rows = (
        _compute_scaling(runs, ok, level0, n_boot, seed)
        + _isoflop_rows(runs, ok, level0, n_boot, seed)
        + _scaling_rate_rows(runs, ok, n_boot, seed)
        + _tradeoff_rows(ok_metrics)
        + _pareto_rows(runs, ok_metrics, n_boot, seed)
    )
    fits = pd.DataFrame(rows, columns=COLUMNS)
    return fits.astype({"n": int, "n_dropped": int, "n_excluded_diverged": int, "n_boot": int, "seed": int,
                        "budget": float, "level": float, "estimate": float})


def excluded_runs(runs: pd.DataFrame) -> pd.DataFrame:
    """The runs every fit leaves out (diverged or otherwise not ok), for the report."""
    cols = ["run_id", "arch", "variant", "budget", "depth", "width", "seed", "status", "diverged_step"]
    if runs.empty:
        return pd.DataFrame(columns=cols)
    return runs.loc[runs["status"] != "ok", [c for c in cols if c in runs.columns]]
