"""The novelty–utility trade-off, net of a null that walks as far as the model does.

Per run and decoding: the least-squares slope of novelty of valid walks against the utility
level (1..levels). The prompt generator alone makes novelty change with the level, and
novelty grows with walk length, so the slope is reported net of a null:

* the length-matched null (preferred): for every model answer, a walk drawn uniformly from
  the feasible walks of the same prompt with the same hop count (its scored samples come in
  with the model's run_id and decoding; here they are the unit "<run_id>@null"). Net slope
  = the unit's slope − its own null's slope, on the same resampled prompts;
* without it, the uniform feasible-set null (labels.BASELINE_RUN, walks up to the hop cap),
  and the note says so: that null walks longer than the models, so the net slope then
  compares two hop-count regimes.

A net slope of 0 means the model trades novelty for utility no more than the null forces.
A unit with fewer than min_correct correct walks gets no net slope ("not comparable").

Per (arch, variant, budget): the mean net slope at the default decoding of the budget's
compute-optimal shape, over seeds, with the seed-level interval (analysis/intervals.py).
"Does the trade-off close with scale?": the net slope regressed on ln(training FLOPs) over
every cell, one fit per seed with the seed-level interval, only where scaling.exponent_gate
allows a trend (>= 4 budgets over >= 1 decade).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis import intervals, resample
from analysis.labels import BASELINE_RUN, DEFAULT_DECODING, LABEL
from analysis.paired import compute_optimal_runs, refusal
from analysis.powerlaw import batch_ols
from analysis.scaling import exponent_gate

NULL_SUFFIX = "@null"
UNIFORM_NOTE = "net of the uniform feasible-set null (walks up to the hop cap), not of a length-matched one"


def level_slopes(stats: resample.PromptStats, prompt_w: np.ndarray) -> np.ndarray:
    """(resamples, units) slope of novelty_valid on level, NaN with < 2 levels holding a valid walk."""
    levels = np.unique(stats.levels[stats.levels >= 1])
    per_level = np.stack([stats.values("novelty_valid", prompt_w, level=lv) for lv in levels], axis=-1)
    b, u = per_level.shape[:2]
    flat = per_level.reshape(b * u, len(levels))
    slope = batch_ols(np.broadcast_to(levels.astype(float), flat.shape), flat)[1]
    return slope.reshape(b, u)


def _null_slopes(stats: resample.PromptStats, slopes: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """(resamples, units) slope of each unit's null and a note per unit."""
    units = stats.units.reset_index(drop=True)
    uniform = np.flatnonzero((units["run_id"] == BASELINE_RUN).to_numpy())
    uniform_slope = slopes[:, uniform[0]] if len(uniform) else np.full(len(slopes), np.nan)
    out, notes = np.empty_like(slopes), []
    for j, unit in enumerate(units.itertuples(index=False)):
        matched = stats.unit_index(f"{unit.run_id}{NULL_SUFFIX}", unit.decoding)
        if matched >= 0:
            out[:, j], note = slopes[:, matched], "net of the length-matched null"
        else:
            out[:, j] = uniform_slope
            note = UNIFORM_NOTE if len(uniform) else "no null given: net slope not available"
        notes.append(note)
    return out, notes


def tradeoff_rows(runs: pd.DataFrame, stats: resample.PromptStats, draws: resample.Draws,
                  min_correct: int) -> list[dict]:
    """tradeoff_slope rows per (run, decoding) and the nulls, tradeoff_net and tradeoff_scaling rows."""
    slopes = level_slopes(stats, draws.prompt)
    null, notes = _null_slopes(stats, slopes)
    net = slopes - null
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
        n = resample.n_correct(stats, [unit.run_id], unit.decoding)
        refused = refusal({"run": n}, {"run": "this run"}, min_correct) if unit.run_id != BASELINE_RUN else ""
        for parameter, v in (("slope", slopes[:, j]), ("net_slope", net[:, j])):
            lo, hi = resample.percentile_ci(v[1:])
            row = dict(ids, kind="tradeoff_slope", decoding=unit.decoding, metric="novelty_valid", x="level",
                       parameter=parameter, estimate=float(v[0]), ci_low=float(lo), ci_high=float(hi),
                       ci_method="prompt_bootstrap_percentile", n=n, n_boot=int(np.isfinite(v[1:]).sum()),
                       note=notes[j] if parameter == "net_slope" else "")
            if parameter == "net_slope" and refused:
                row |= dict(estimate=np.nan, ci_low=np.nan, ci_high=np.nan, ci_method="", note=f"{refused}; {notes[j]}")
            rows.append(row)
    refused_units = {(r["run_id"], r["decoding"]) for r in rows
                     if r["parameter"] == "net_slope" and not np.isfinite(r["estimate"])}
    return rows + _arm_rows(runs, stats, net, draws, refused_units, min_correct)


def _arm_rows(runs, stats, net, draws, refused_units, min_correct) -> list[dict]:
    rows = []
    for label, label_runs in runs.groupby(LABEL, sort=True):
        label_runs = label_runs.reset_index(drop=True)
        arch, variant = label_runs["arch"].iloc[0], label_runs["variant"].iloc[0]
        decoding = DEFAULT_DECODING.get(arch, "")
        idx = np.array([stats.unit_index(r, decoding) if (r, decoding) not in refused_units else -1
                        for r in label_runs["run_id"]])
        values = np.where(idx >= 0, net[:, np.maximum(idx, 0)], np.nan)  # (resamples, runs)
        ids = dict(arch=arch, variant=variant, decoding=decoding, metric="net_slope")
        for budget, grp in label_runs.groupby("budget"):
            best = compute_optimal_runs(grp)
            per_seed = np.full((len(values), len(draws.seeds)), np.nan)
            for i, seed in enumerate(draws.seeds):
                hit = best.index[best["seed"] == seed]
                if len(hit):
                    per_seed[:, i] = values[:, hit[0]]
            count = resample.n_correct(stats, best["run_id"], decoding)
            refused = refusal({"arm": count}, {"arm": "this arm"}, min_correct)
            iv = intervals.seed_interval(per_seed) if not refused else \
                intervals.Interval(np.nan, np.nan, np.nan, 0, np.nan, refused)
            rows.append(dict(ids, kind="tradeoff_net", x="level", budget=float(budget), parameter="mean_net_slope",
                             n=count, n_boot=draws.n_boot, n_seeds=iv.n_seeds, **iv.fields()))
        rows += _scaling_rows(label_runs, values, draws, ids)
    return rows


def _scaling_rows(label_runs: pd.DataFrame, values: np.ndarray, draws: resample.Draws, ids: dict) -> list[dict]:
    """Net slope per cell regressed on ln FLOPs, one fit per seed (seed-level interval), where a trend is estimable."""
    cells = resample.make_cells(label_runs, ["budget", "depth", "width"], draws.seeds)
    u = np.log(cells.table["flops_measured"].to_numpy(float))
    gate = exponent_gate(cells.table["budget"])
    fits = np.full((2, len(values), len(draws.seeds)), np.nan)  # (intercept | slope, resamples, seeds)
    for i in range(len(draws.seeds)) if not gate else []:
        weights = np.zeros((len(values), len(draws.seeds)))
        weights[:, i] = 1.0
        per_cell = resample.cell_values(values, cells, weights)
        fits[:, :, i] = batch_ols(np.broadcast_to(u, per_cell.shape), per_cell)
    rows = []
    for parameter, v in (("slope_per_ln_flops", fits[1]), ("intercept", fits[0])):
        iv = intervals.seed_interval(v) if not gate else intervals.Interval(np.nan, np.nan, np.nan, 0, np.nan, gate)
        rows.append(dict(ids, kind="tradeoff_scaling", x="flops_measured", parameter=parameter, n=len(cells.table),
                         n_boot=draws.n_boot, n_seeds=iv.n_seeds, **iv.fields()))
    return rows
