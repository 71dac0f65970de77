"""Novelty–utility Pareto fronts per utility level and seed, and their hypervolume.

A point is one (run, decoding setting) at one utility level: (mean novelty of correct
walks, mean utility over all answers) on that level's test prompts. Both are maximised.

* Fronts are per (arch, variant, budget, level, seed): a seed's shapes and non-oracle
  decodings. Pooling seeds into one envelope would reward the luckiest seed of each
  setting. The hypervolume is the mean over seeds of the per-seed hypervolumes, with the
  seed-level interval of analysis/intervals.py; EBT − Transformer++ pairs seeds by value.
* Reference point, per level: (N_min, 0). N_min is the least novelty a correct walk of
  that level can have, taken as the least novelty of any correct walk of that level among
  every scored answer and the feasible-set null's uniform walks (which cover each prompt's
  feasible set); novelty below it comes with any correct walk and is not credited. The
  utility coordinate is a mean over all answers, 0 when none is correct, so 0 is the least
  a point can have; a correct walk's own utility is >= 1.
* Equal menus: each arm's fronts use its non-oracle decodings only. The reward tilt
  re-ranks with the scorer itself (an oracle), so it is labelled and kept out.
* A paired hypervolume difference is refused ("not comparable") where either arm has
  fewer than min_correct correct walks at that budget and level.
* Non-dominated sorting and hypervolume come from moocore; duplicates of a front point are
  all kept on the front (keep_weakly).
"""

from __future__ import annotations

import moocore
import numpy as np
import pandas as pd

from analysis import intervals, resample
from analysis.labels import LABEL, arch_name, is_oracle
from models.architectures import EBT_FAMILY, TPP, TPP_FAMILY
from analysis.paired import refusal

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


def hypervolume(x, y, reference=(0.0, 0.0)) -> float:
    """Area dominated by the points and dominating the reference (both maximised)."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    keep = np.isfinite(x) & np.isfinite(y) & (x > reference[0]) & (y > reference[1])
    if not keep.any():
        return 0.0
    # Rounded: areas that should cancel (equal fronts) differ by ~1e-16 in floating point.
    return round(float(moocore.hypervolume(np.c_[x[keep], y[keep]], ref=list(reference), maximise=True)), 12)


def reference_points(samples: pd.DataFrame) -> dict[int, tuple[float, float]]:
    """Per level: (least novelty of a correct walk of that level, 0); see the module docstring."""
    data = resample.with_derived_columns(samples)
    if "correct" not in data.columns or data.empty:
        return {}
    correct = data[data["correct"].fillna(False).astype(bool) & data["novelty"].notna()]
    return {int(lv): (float(n), 0.0) for lv, n in correct.groupby("level")["novelty"].min().items()}


def novelty_statistic(stats: resample.PromptStats) -> str:
    return "novelty_correct" if "novelty_correct" in stats.sums else "novelty_valid"


def _seed_points(stats, draws, runs, level):
    """Units of these runs' non-oracle decodings, and their (resamples, units) novelty and utility."""
    units = stats.units.reset_index(drop=True)
    rows = np.flatnonzero(units["run_id"].isin(runs["run_id"]).to_numpy() & ~is_oracle(units["decoding"]))
    nov = stats.values(novelty_statistic(stats), draws.prompt, rows=rows, level=level)
    util = stats.values("utility", draws.prompt, rows=rows, level=level)
    return units.iloc[rows], nov, util


def _level_correct(stats, runs, level) -> int:
    units = stats.units.reset_index(drop=True)
    rows = np.flatnonzero(units["run_id"].isin(runs["run_id"]).to_numpy() & ~is_oracle(units["decoding"]))
    if "correct_rate" not in stats.sums or not len(rows):
        return 0
    return int(stats.sums["correct_rate"][rows][:, stats.levels == level].sum())


def pareto_rows(runs: pd.DataFrame, stats: resample.PromptStats, draws: resample.Draws,
                references: dict[int, tuple[float, float]], min_correct: int) -> list[dict]:
    """pareto_hypervolume, pareto_front and pareto_hv_delta rows (see module docstring)."""
    rows, hv_by, counts = [], {}, {}
    levels = np.unique(stats.levels[stats.levels >= 1])
    for (label, budget), grp in runs.groupby([LABEL, "budget"], sort=True):
        ids = dict(arch=grp["arch"].iloc[0], variant=grp["variant"].iloc[0], budget=float(budget),
                   metric="novelty_correct,utility", x="novelty_correct,utility")
        for level in levels:
            ref = references.get(int(level), (0.0, 0.0))
            hv = np.full((len(draws.prompt), len(draws.seeds)), np.nan)
            menu, n_front = set(), 0
            for i, seed in enumerate(draws.seeds):
                seed_runs = grp[grp["seed"] == seed]
                units, nov, util = _seed_points(stats, draws, seed_runs, level)
                if not len(units):
                    continue
                menu |= set(units["decoding"])
                hv[:, i] = [hypervolume(n, u, ref) for n, u in zip(nov, util)]
                mask = front_mask(nov[0], util[0])
                n_front += int(mask.sum())
                for unit, n, u in zip(units[mask].itertuples(index=False), nov[0][mask], util[0][mask]):
                    point = ids | dict(kind="pareto_front", level=float(level), run_id=unit.run_id,
                                       decoding=unit.decoding)
                    rows += [dict(point, parameter="novelty_correct", estimate=float(n)),
                             dict(point, parameter="utility", estimate=float(u))]
            hv_by[(label, budget, level)] = hv
            counts[(label, budget, level)] = _level_correct(stats, grp, level)
            iv = intervals.seed_interval(hv, intervals.bounds("hypervolume"))
            note = (f"reference (novelty {ref[0]:.3g}, utility {ref[1]:g}); mean over seeds of per-seed fronts; "
                    f"menu of {len(menu)} non-oracle settings: {', '.join(sorted(menu))}")
            common = ids | dict(level=float(level), decoding="all non-oracle", n=len(grp))
            rows += [dict(common, kind="pareto_hypervolume", parameter="hypervolume", n_boot=draws.n_boot,
                          n_seeds=iv.n_seeds, **iv.fields()) | {"note": "; ".join(p for p in (iv.note, note) if p)},
                     dict(common, kind="pareto_hypervolume", parameter="n_front", estimate=float(n_front)),
                     dict(common, kind="pareto_hypervolume", parameter="n_correct",
                          estimate=float(counts[(label, budget, level)]))]
    return rows + _delta_rows(runs, hv_by, counts, draws, min_correct)


def _delta_rows(runs: pd.DataFrame, hv_by: dict, counts: dict, draws: resample.Draws, min_correct: int) -> list[dict]:
    rows = []
    for (label, budget, level), hv in sorted(hv_by.items()):
        base = hv_by.get((TPP.label, budget, level))
        if label == TPP.label or base is None:
            continue
        iv = intervals.paired_interval(hv, base)
        refused = refusal({EBT_FAMILY: counts[(label, budget, level)], TPP_FAMILY: counts[(TPP.label, budget, level)]},
                          {EBT_FAMILY: arch_name(label), TPP_FAMILY: TPP.display}, min_correct)
        fields = iv.fields() | {"note": "; ".join(p for p in (refused, iv.note) if p)}
        if refused:
            fields |= dict(estimate=np.nan, ci_low=np.nan, ci_high=np.nan, ci_method="")
        variant = runs.loc[runs[LABEL] == label, "variant"].iloc[0]
        rows.append(dict(kind="pareto_hv_delta", arch=EBT_FAMILY, variant=variant, budget=float(budget),
                         level=float(level),
                         decoding="all non-oracle", metric="hypervolume", x="novelty_correct,utility",
                         parameter="delta", n_boot=draws.n_boot, n_seeds=iv.n_seeds, **fields))
    return rows
