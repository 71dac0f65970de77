"""Novelty–utility Pareto fronts per utility level, and their hypervolume.

A point is one (run, decoding setting) at one utility level: (mean novelty of valid
outputs, mean gated utility) over that level's test prompts. Both are maximised. Fronts
are drawn per (arch, variant, budget, level), never pooled over levels (utility's scale
grows with the level).

* Equal menus: each arm's fronts use its non-oracle decodings only. The reward tilt
  re-ranks with the scorer itself (an oracle), so it is labelled and kept out; the note
  records each menu's size so unequal menus are visible.
* Non-dominated sorting and hypervolume come from moocore (C implementations); duplicates
  of a front point are all kept on the front (keep_weakly).
* The hypervolume's CI resamples test prompts (the points are recomputed from the
  resampled prompts), so its upper end is not capped at the estimate. At budgets both
  arms share, the paired difference EBT - Transformer++ uses the same resamples.
"""

from __future__ import annotations

import moocore
import numpy as np
import pandas as pd

from analysis import resample
from analysis.labels import LABEL, is_oracle

# Shared by every compared front; novelty and utility are both >= 0.
REFERENCE = (0.0, 0.0)


def front_mask(x, y) -> np.ndarray:
    """Non-dominated points (both maximised); points with a NaN coordinate are never on it."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    mask = np.zeros(len(x), dtype=bool)
    finite = np.isfinite(x) & np.isfinite(y)
    if finite.any():
        # Means of the same values summed in another order differ in the last bits; rounding
        # keeps such ties tied instead of letting rounding noise pick a winner.
        pts = np.round(np.c_[x[finite], y[finite]], 12)
        mask[finite] = moocore.is_nondominated(pts, maximise=True, keep_weakly=True)
    return mask


def hypervolume(x, y, reference=REFERENCE) -> float:
    """Area dominated by the points and dominating the reference (both maximised)."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    keep = np.isfinite(x) & np.isfinite(y) & (x > reference[0]) & (y > reference[1])
    if not keep.any():
        return 0.0
    return float(moocore.hypervolume(np.c_[x[keep], y[keep]], ref=list(reference), maximise=True))


def _group_points(stats, draws, runs, level):
    """Units of these runs' non-oracle decodings, and their (resamples, units) novelty and utility."""
    units = stats.units.reset_index(drop=True)
    rows = np.flatnonzero(units["run_id"].isin(runs["run_id"]).to_numpy() & ~is_oracle(units["decoding"]))
    nov = stats.values("novelty_valid", draws.prompt, rows=rows, level=level)
    util = stats.values("utility", draws.prompt, rows=rows, level=level)
    return units.iloc[rows], nov, util


def pareto_rows(runs: pd.DataFrame, stats: resample.PromptStats, draws: resample.Draws) -> list[dict]:
    """pareto_hypervolume, pareto_front and pareto_hv_delta rows (see module docstring)."""
    rows, hv_by = [], {}
    levels = np.unique(stats.levels[stats.levels >= 1])
    for (label, budget), grp in runs.groupby([LABEL, "budget"], sort=True):
        ids = dict(arch=grp["arch"].iloc[0], variant=grp["variant"].iloc[0], budget=float(budget),
                   metric="novelty_valid,utility", x="novelty_valid,utility")
        for level in levels:
            units, nov, util = _group_points(stats, draws, grp, level)
            hv = np.array([hypervolume(n, u) for n, u in zip(nov, util)])
            hv_by[(label, budget, level)] = hv
            menu = sorted(units["decoding"].unique())
            note = f"reference {REFERENCE}; menu of {len(menu)} non-oracle settings: {', '.join(menu)}"
            lo, hi = resample.percentile_ci(hv[1:])
            mask = front_mask(nov[0], util[0])
            common = ids | dict(level=float(level), decoding="all non-oracle", n=len(units))
            rows += [dict(common, kind="pareto_hypervolume", parameter="hypervolume", estimate=hv[0], ci_low=lo,
                          ci_high=hi, ci_method="bootstrap_percentile", n_boot=draws.n_boot, note=note),
                     dict(common, kind="pareto_hypervolume", parameter="n_front", estimate=float(mask.sum()))]
            for unit, n, u in zip(units[mask].itertuples(index=False), nov[0][mask], util[0][mask]):
                point = ids | dict(kind="pareto_front", level=float(level), run_id=unit.run_id, decoding=unit.decoding)
                rows += [dict(point, parameter="novelty_valid", estimate=float(n)),
                         dict(point, parameter="utility", estimate=float(u))]
    return rows + _delta_rows(runs, hv_by, draws)


def _delta_rows(runs: pd.DataFrame, hv_by: dict, draws: resample.Draws) -> list[dict]:
    rows = []
    for (label, budget, level), hv in sorted(hv_by.items()):
        base = hv_by.get(("tpp", budget, level))
        if label == "tpp" or base is None:
            continue
        delta = hv - base
        lo, hi = resample.percentile_ci(delta[1:])
        variant = runs.loc[runs[LABEL] == label, "variant"].iloc[0]
        rows.append(dict(kind="pareto_hv_delta", arch="ebt", variant=variant, budget=float(budget), level=float(level),
                         decoding="all non-oracle", metric="hypervolume", x="novelty_valid,utility", parameter="delta",
                         estimate=float(delta[0]), ci_low=float(lo), ci_high=float(hi),
                         ci_method="bootstrap_percentile", n_boot=draws.n_boot))
    return rows
