"""The novelty–utility trade-off, net of the feasible-set null.

Per run and decoding: the least-squares slope of novelty of valid outputs against the
utility level (1..levels). The prompt generator alone makes novelty fall with the level
(walks sampled uniformly from each prompt's feasible set already do), so the reported
slope is the run's minus the feasible-set baseline's, both computed on the same
resampled prompts (resample.PromptStats; the baseline is the unit with run_id
labels.BASELINE_RUN). A net slope of 0 means the model trades novelty for utility no
more than the task forces; negative means it gives up more.

"Does the trade-off close with scale?": per (arch, variant), the net slope at the default
decoding of every cell (budget, shape; seeds averaged with bootstrap weights) regressed
on ln(training FLOPs). A positive coefficient means the slope moves toward 0 as compute grows.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis import resample
from analysis.labels import BASELINE_RUN, DEFAULT_DECODING, LABEL
from analysis.powerlaw import batch_ols


def level_slopes(stats: resample.PromptStats, prompt_w: np.ndarray) -> np.ndarray:
    """(resamples, units) slope of novelty_valid on level, NaN with < 2 levels holding a valid walk."""
    levels = np.unique(stats.levels[stats.levels >= 1])
    per_level = np.stack([stats.values("novelty_valid", prompt_w, level=lv) for lv in levels], axis=-1)
    b, u = per_level.shape[:2]
    flat = per_level.reshape(b * u, len(levels))
    slope = batch_ols(np.broadcast_to(levels.astype(float), flat.shape), flat)[1]
    return slope.reshape(b, u)


def tradeoff_rows(runs: pd.DataFrame, stats: resample.PromptStats, draws: resample.Draws) -> list[dict]:
    """tradeoff_slope rows per (run, decoding) and the baseline, and tradeoff_scaling rows per label."""
    slopes = level_slopes(stats, draws.prompt)
    base = stats.unit_index(BASELINE_RUN, stats.units.loc[stats.units["run_id"] == BASELINE_RUN, "decoding"].iloc[0]) \
        if (stats.units["run_id"] == BASELINE_RUN).any() else -1
    base_slope = slopes[:, base] if base >= 0 else np.full(len(slopes), np.nan)
    net = slopes - base_slope[:, None]
    note = "" if base >= 0 else "no feasible-set baseline: net slope not available"
    info = runs.set_index("run_id")
    rows = []
    for j, unit in enumerate(stats.units.itertuples(index=False)):
        if unit.run_id == BASELINE_RUN:
            ids = dict(arch="baseline", variant="feasible_set", run_id=unit.run_id)
        elif unit.run_id in info.index:
            r = info.loc[unit.run_id]
            ids = dict(arch=r["arch"], variant=r["variant"], budget=float(r["budget"]), run_id=unit.run_id)
        else:
            continue
        for parameter, v in (("slope", slopes[:, j]), ("net_slope", net[:, j])):
            lo, hi = resample.percentile_ci(v[1:])
            rows.append(dict(ids, kind="tradeoff_slope", decoding=unit.decoding, metric="novelty_valid", x="level",
                             parameter=parameter, estimate=float(v[0]), ci_low=float(lo), ci_high=float(hi),
                             ci_method="bootstrap_percentile", n_boot=int(np.isfinite(v[1:]).sum()),
                             note=note if parameter == "net_slope" else ""))
    return rows + _scaling_rows(runs, stats, net, draws)


def _scaling_rows(runs: pd.DataFrame, stats: resample.PromptStats, net: np.ndarray, draws: resample.Draws) -> list[dict]:
    rows = []
    for label, label_runs in runs.groupby(LABEL, sort=True):
        label_runs = label_runs.reset_index(drop=True)
        decoding = DEFAULT_DECODING.get(label_runs["arch"].iloc[0], "")
        idx = np.array([stats.unit_index(r, decoding) for r in label_runs["run_id"]])
        if (idx < 0).all():
            continue
        values = np.where(idx >= 0, net[:, np.maximum(idx, 0)], np.nan)
        cells = resample.make_cells(label_runs, ["budget", "depth", "width"], draws.seeds)
        per_cell = resample.cell_values(values, cells, draws.seed)
        ids = dict(kind="tradeoff_scaling", arch=label_runs["arch"].iloc[0], variant=label_runs["variant"].iloc[0],
                   decoding=decoding, metric="net_slope", ci_method="bootstrap_percentile", n=len(cells.table))
        u = np.broadcast_to(np.log(cells.table["flops_measured"].to_numpy(float)), per_cell.shape)
        n_budgets = cells.table["budget"].nunique()
        intercept, coef = batch_ols(u, per_cell) if n_budgets >= 2 else (np.full(len(per_cell), np.nan),) * 2
        mean = resample.nanmean_rows(per_cell)
        few = "" if n_budgets >= 2 else f"{n_budgets} budget(s): needs >= 2"
        for parameter, x, v, note in (
                ("slope_per_ln_flops", "flops_measured", coef, few), ("intercept", "flops_measured", intercept, few),
                ("mean_net_slope", "level", mean, "mean over budgets and shapes")):
            lo, hi = resample.percentile_ci(v[1:])
            rows.append(dict(ids, x=x, parameter=parameter, estimate=float(v[0]), ci_low=float(lo), ci_high=float(hi),
                             n_boot=int(np.isfinite(v[1:]).sum()), note=note))
    return rows
