"""All fits of the study in one tidy long table (fits.parquet); every figure and the
findings page read it, nothing refits.

`compute_fits(runs, metrics, samples, baseline, n_boot, seed)` returns one row per
estimated quantity. Columns:

    kind        what was fitted (see below)
    arch        "tpp" | "ebt" | "baseline"; "ebt/tpp" for the scaling-rate ratio
    variant     "tpp" | "system1" | "system2" (runs.variant); "<variant>/tpp" for the ratio.
                Fits group by (arch, variant): two EBT variants are never pooled.
    decoding    decoding setting; "-" where none applies; "<ebt> vs <tpp>" for paired rows
    metric      the fitted quantity: creativity, validity, val_loss, novelty_valid, ...
    x           the independent variable, shape axis, or comparison
    subset      "frontier" (best cell per budget) | "all_runs" for power laws, else ""
    x_value     the x of a power_law_curve point, else NaN
    budget      FLOP budget for per-budget rows, else NaN
    run_id      for per-run rows and Pareto-front points, else ""
    level       utility level (Pareto rows), else NaN
    parameter   which number of the fit this row holds (exponent, delta, hypervolume, ...)
    estimate    the number on the observed data (NaN when it could not be estimated; see note)
    ci_low, ci_high   95% interval; ci_method says which kind
    ci_method   "bootstrap_percentile" | "nls_t" | "" (none)
    n           points (cells, units, prompts) used
    n_excluded_diverged  runs of that (arch, variant) left out because status != "ok"
    n_boot      bootstrap resamples that gave a value; seed: the bootstrap's RNG seed
    method      the model: glm_log | glm_logit | ols_loglog | ols_semilog | parabola | ...
    note        why an estimate is NaN, or a caveat

Bootstraps resample test prompts and seeds jointly (resample.py), never runs or shapes.
Kinds (module that computes them):

    paired_delta          (paired) EBT minus Transformer++ per shared budget; x = default_decoding
                          | matched_inference_flops; parameters delta, treatment (EBT),
                          baseline (tpp), *_inference_flops.
    power_law, power_law_curve  (scaling) creativity, validity, val_loss against
                          flops_measured, params, tokens, on the frontier and all runs.
    scaling_rate          (scaling) slope_ebt / slope_tpp - 1 on the frontier over a shared range.
    saturating_power_law  val_loss = E + A·flops^(-b) on the lowest-loss run per budget (nls_t CI).
    isoflop_optimum       (isoflop) per (arch, variant, budget, metric, axis): optimum (bootstrap
                          vertex CI over the budget's runs), edge_distance, metric_at_optimum,
                          and the parabola's c2, c1, c0 in ln(shape).
    isoflop_power_law     optimum params = prefactor·budget^exponent through interior vertices.
    tradeoff_slope        (tradeoff) per (run, decoding) and the baseline: slope and net_slope.
    tradeoff_scaling      (tradeoff) per (arch, variant): slope_per_ln_flops, mean_net_slope.
    pareto_hypervolume, pareto_front, pareto_hv_delta   (pareto) per level.
    summary               per (arch, variant, budget, split) at the default decoding: mean over
                          runs of validity, creativity, copy_rate, copy_share, combinatorial_novelty,
                          uses_heldout_rate, revisit_rate, with a prompt bootstrap CI.

IsoFLOP creativity uses each architecture's default decoding (greedy, think_x1), not its
best: the max over ~10 noisy settings is biased upward.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis import isoflop, paired, pareto, powerlaw, resample, scaling, tradeoff
from analysis.labels import (DEFAULT_DECODING, FITS_COLUMNS, LABEL, SHAPE_AXES, default_decoding, in_distribution,
                             with_labels)

NO_DECODING = "-"
COLUMNS = FITS_COLUMNS
_DEFAULTS = {
    "arch": "", "variant": "", "decoding": NO_DECODING, "metric": "", "x": "", "subset": "", "x_value": np.nan,
    "budget": np.nan, "run_id": "", "level": np.nan, "estimate": np.nan, "ci_low": np.nan, "ci_high": np.nan,
    "ci_method": "", "n": 0, "n_excluded_diverged": 0, "n_boot": 0, "seed": -1, "method": "", "note": "",
}
RUN_COLUMNS = ["run_id", "arch", "variant", "budget", "depth", "width", "seed", "params", "tokens", "flops_measured",
               "val_loss", "status"]
METRIC_COLUMNS = ["run_id", "arch", "variant", "budget", "depth", "width", "params", "flops_measured", "decoding",
                  "level", "creativity", "validity", "novelty_valid", "utility"]
SUMMARY_METRICS = ("validity", "creativity", "copy_rate", "copy_share", "combinatorial_novelty", "uses_heldout_rate",
                   "revisit_rate")
_TEXT = ("run_id", "arch", "variant", "decoding", "status", "split")


def ensure_columns(table: pd.DataFrame | None, columns: list[str]) -> pd.DataFrame:
    """A table with no rows may come without columns (an empty Parquet file): add them."""
    table = pd.DataFrame() if table is None else table
    missing = [c for c in columns if c not in table.columns]
    if missing and len(table) == 0:
        table = table.assign(**{c: pd.Series(dtype=object if c in _TEXT else float) for c in missing})
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


def _power_law_rows(budgets: pd.Series, ys, n_boot, seed, note: str = "", **labels) -> list[dict]:
    """isoflop_power_law rows: an OLS power law of ys against budget with a bootstrap over its
    points. With < 2 budgets the fit is not identified and only the caller's note (saying
    why) is kept; otherwise the fit's own note is appended to it."""
    fit = powerlaw.fit_power_law(budgets, ys)  # not identified with < 2 distinct budgets
    if np.isfinite(fit.exponent):
        boot_b, boot_a = powerlaw.bootstrap_power_law(budgets, ys, n_boot, seed)
    else:
        boot_b = boot_a = powerlaw.BootstrapCI(np.nan, np.nan, 0, seed)
    if budgets.nunique() >= 2:
        note = "; ".join(p for p in (note, fit.note) if p)
    common = labels | {"kind": "isoflop_power_law", "ci_method": "bootstrap_percentile", "n": fit.n_points,
                       "seed": seed, "note": note}
    return [_row(**common, parameter="exponent", estimate=fit.exponent, ci_low=boot_b.low, ci_high=boot_b.high,
                 n_boot=boot_b.n_boot),
            _row(**common, parameter="prefactor", estimate=fit.prefactor, ci_low=boot_a.low, ci_high=boot_a.high,
                 n_boot=boot_a.n_boot)]


def _saturating_rows(runs, ok) -> list[dict]:
    rows = []
    for (arch, variant), arch_runs in ok.groupby(["arch", "variant"], sort=True):
        # The loss floor belongs to the best model at each compute: one run per budget.
        fitted = arch_runs.dropna(subset=["val_loss"])
        frontier = fitted.loc[fitted.groupby("budget")["val_loss"].idxmin()]
        sat = powerlaw.fit_saturating_power_law(frontier["flops_measured"], frontier["val_loss"])
        for name in ("E", "A", "b"):
            rows.append(_row(kind="saturating_power_law", arch=arch, variant=variant, metric="val_loss",
                             x="flops_measured", subset="frontier", parameter=name, estimate=getattr(sat, name),
                             ci_low=sat.ci[name][0], ci_high=sat.ci[name][1], ci_method="nls_t", n=sat.n_points,
                             n_excluded_diverged=_n_excluded(runs, arch=arch, variant=variant), note=sat.note))
    return rows


def isoflop_tables(ok: pd.DataFrame, level0: pd.DataFrame) -> list[tuple[str, bool, pd.DataFrame]]:
    """(metric, maximize, table): val_loss over runs, creativity at each architecture's default decoding."""
    return [("val_loss", False, ok), ("creativity", True, default_decoding(level0))]


def _isoflop_rows(runs, ok, level0, n_boot, seed) -> list[dict]:
    rows = []
    for metric, maximize, table in isoflop_tables(ok, level0):
        for axis in SHAPE_AXES:
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
                         for p in ("edge_distance", "metric_at_optimum", "best_grid_point")]
                rows += [_row(**common, parameter=p, estimate=c) for p, c in zip(("c2", "c1", "c0"), opt.coefficients)]
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
        rows += _power_law_rows(inside["budget"], inside["optimum"], n_boot, seed, arch=arch, variant=variant,
                                metric=metric, x="budget", method="parabola_vertices",
                                decoding=NO_DECODING if metric == "val_loss" else DEFAULT_DECODING.get(arch, ""),
                                n_excluded_diverged=_n_excluded(runs, arch=arch, variant=variant),
                                note="; ".join(notes))
    return rows


def _run_values(ok: pd.DataFrame, stats: resample.PromptStats, draws: resample.Draws) -> dict[str, np.ndarray]:
    """(resamples, runs) creativity and validity at each run's default decoding, and val_loss."""
    idx = np.array([stats.unit_index(r, DEFAULT_DECODING.get(a, "")) for r, a in zip(ok["run_id"], ok["arch"])])
    out = {"val_loss": np.broadcast_to(ok["val_loss"].to_numpy(float), (len(draws.prompt), len(ok)))}
    for metric in ("creativity", "validity"):
        v = stats.values(metric, draws.prompt, rows=np.maximum(idx, 0)) if len(stats.units) else \
            np.full((len(draws.prompt), len(ok)), np.nan)
        out[metric] = np.where(idx >= 0, v, np.nan)
    return out


def _scaling_rows(runs, ok, stats, draws) -> list[dict]:
    values = _run_values(ok, stats, draws)
    rows = []
    for label in sorted(set(ok[LABEL])):
        mask = (ok[LABEL] == label).to_numpy()
        sub = ok[mask]
        ids = dict(arch=sub["arch"].iloc[0], variant=sub["variant"].iloc[0],
                   n_excluded_diverged=_n_excluded(runs, arch=sub["arch"].iloc[0], variant=sub["variant"].iloc[0]))
        for r in scaling.power_law_rows(sub, {m: v[:, mask] for m, v in values.items()}, draws, ids):
            r.setdefault("decoding", NO_DECODING if r["metric"] == "val_loss" else DEFAULT_DECODING[ids["arch"]])
            rows.append(r)
    return rows + scaling.scaling_rate_rows(ok, values["val_loss"], draws, LABEL)


def _summary_rows(ok: pd.DataFrame, samples: pd.DataFrame, n_boot: int, seed: int) -> list[dict]:
    """Per (label, budget, split): means over the arm's runs at the default decoding."""
    rows = []
    splits = samples["split"].unique() if "split" in samples.columns else np.array(["test"])
    arms = list(_common_shapes(ok).groupby([LABEL, "budget"], sort=True))
    for k, split in enumerate(sorted(splits)):
        sub = samples[samples["split"] == split] if "split" in samples.columns else samples
        sub = sub[sub["run_id"].isin(ok["run_id"])]
        if sub.empty:
            continue
        stats = resample.prompt_stats(sub)
        w = resample.count_weights(len(stats.prompt_ids), n_boot, np.random.default_rng(seed + 1 + k))
        for (label, budget), grp in arms:
            decoding = DEFAULT_DECODING.get(grp["arch"].iloc[0], "")
            idx = np.array([stats.unit_index(r, decoding) for r in grp["run_id"]])
            idx = idx[idx >= 0]
            if len(idx) == 0:
                continue
            for metric in [m for m in SUMMARY_METRICS if m in stats.sums]:
                v = resample.nanmean_rows(stats.values(metric, w, rows=idx))
                lo, hi = resample.percentile_ci(v[1:])
                rows.append(_row(kind="summary", arch=grp["arch"].iloc[0], variant=grp["variant"].iloc[0],
                                 budget=float(budget), decoding=decoding, metric=metric, x=str(split), parameter="mean",
                                 estimate=float(v[0]), ci_low=float(lo), ci_high=float(hi),
                                 ci_method="bootstrap_percentile", n=len(idx), n_boot=n_boot, seed=seed,
                                 note="mean over seeds of the shapes trained at every budget; CI over prompts"))
    return rows


def _common_shapes(ok: pd.DataFrame) -> pd.DataFrame:
    """Each arm's runs of the shapes it trained at every one of its budgets, so a budget's
    mean is not moved by the extra IsoFLOP shapes that only one budget has (all its runs
    where no shape is common to every budget)."""
    keep = []
    for _, grp in ok.groupby(LABEL, sort=False):
        shape = grp[["depth", "width"]].apply(tuple, axis=1)
        per_budget = shape.groupby(grp["budget"]).agg(set)
        common = set.intersection(*per_budget)
        keep.append(grp[shape.isin(common)] if common else grp)
    return pd.concat(keep) if keep else ok


def _inference_flops(test_samples: pd.DataFrame, metrics: pd.DataFrame) -> pd.DataFrame:
    """Mean inference FLOPs per sample of each (run, decoding): from the samples, else from the
    pooled metrics rows; empty (no matched-FLOP comparison) when neither has them."""
    keys = ["run_id", "decoding"]
    if "inference_flops" in test_samples.columns:
        return test_samples.groupby(keys, as_index=False)["inference_flops"].mean()
    if "inference_flops" in metrics.columns:
        return metrics.loc[metrics["level"] == 0, [*keys, "inference_flops"]]
    return pd.DataFrame(columns=[*keys, "inference_flops"])


def compute_fits(runs: pd.DataFrame, metrics: pd.DataFrame, samples: pd.DataFrame | None = None,
                 baseline: pd.DataFrame | None = None, n_boot: int = 200, seed: int = 0) -> pd.DataFrame:
    """Every fit of the study as one long table; see the module docstring for columns.

    samples and baseline are the scored samples of the runs and of the feasible-set null;
    without samples only the loss and metrics-based fits (IsoFLOP, saturating law) are made.
    """
    runs = with_labels(ensure_columns(runs, RUN_COLUMNS))
    metrics = with_labels(in_distribution(ensure_columns(metrics, METRIC_COLUMNS)))
    ok = ok_runs(runs).reset_index(drop=True)
    level0 = metrics[metrics["run_id"].isin(ok["run_id"]) & (metrics["level"] == 0)]
    rows = _saturating_rows(runs, ok) + _isoflop_rows(runs, ok, level0, n_boot, seed)
    samples = ensure_columns(samples, ["run_id", "decoding", "prompt_id", "level", "valid"])
    test = in_distribution(samples[samples["run_id"].isin(ok["run_id"])])
    if len(test) and len(ok):
        base = in_distribution(baseline) if baseline is not None and len(baseline) else test.iloc[:0]
        stats = resample.prompt_stats(pd.concat([test, base], ignore_index=True))
        draws = resample.draw(len(stats.prompt_ids), ok["seed"], n_boot, seed)
        rows += [_row(**r, seed=seed) for r in (
            _scaling_rows(runs, ok, stats, draws)
            + paired.paired_rows(ok, _inference_flops(test, metrics), stats, draws)
            + tradeoff.tradeoff_rows(ok, stats, draws)
            + pareto.pareto_rows(ok, stats, draws))]
        rows += _summary_rows(ok, samples, n_boot, seed)
    fits = pd.DataFrame(rows, columns=COLUMNS)
    return fits.astype({"n": int, "n_excluded_diverged": int, "n_boot": int, "seed": int, "budget": float,
                        "level": float, "estimate": float, "x_value": float})


def excluded_runs(runs: pd.DataFrame) -> pd.DataFrame:
    """The runs every fit leaves out (diverged or otherwise not ok), for the report."""
    cols = ["run_id", "arch", "variant", "budget", "depth", "width", "seed", "status", "diverged_step"]
    if runs.empty:
        return pd.DataFrame(columns=cols)
    return runs.loc[runs["status"] != "ok", [c for c in cols if c in runs.columns]]
