"""Pareto fronts and hypervolume in the (novelty_valid, utility) plane.

Both objectives are maximised. A point is on the front if no other point is at
least as good in both and strictly better in one. So exact duplicates of a
front point are all on the front (neither beats the other), and a point tied
with another in one objective but worse in the other is not.

Two objectives need no library: after sorting by x descending, a point is on the
front iff it has the largest y among the points with its x, and that y beats
every y seen at strictly larger x. That is one sort plus a cumulative max.

`bootstrap_hypervolume` resamples a group's points (one per run, decoding and
level) with replacement, fixed seed, and recomputes the hypervolume. A resample
holds a subset of the points (duplicates add nothing), so its hypervolume is never
above the full-data one: the interval's upper end is at most the estimate, and
the interval says how much the front depends on which points happened to be
observed, not a symmetric standard error.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

# Shared by every compared front, so hypervolumes are comparable; novelty and
# utility are both >= 0, so (0, 0) is dominated by every meaningful output.
DEFAULT_REFERENCE = (0.0, 0.0)
MIN_BOOT_POINTS = 5
CI_LEVEL = 0.95


def pareto_front_mask(x, y) -> np.ndarray:
    """Boolean mask of the non-dominated points (both coordinates maximised).

    Points with a NaN coordinate are never on the front and do not dominate.
    """
    x, y = np.asarray(x, float), np.asarray(y, float)
    mask = np.zeros(len(x), dtype=bool)
    finite = np.flatnonzero(np.isfinite(x) & np.isfinite(y))
    if len(finite) == 0:
        return mask
    fx, fy = x[finite], y[finite]
    order = np.lexsort((-fy, -fx))  # x descending, then y descending
    sx, sy = fx[order], fy[order]
    # Start of each block of equal x; within a block the first y is the largest.
    starts = np.flatnonzero(np.r_[True, sx[1:] != sx[:-1]])
    block_max = sy[starts]
    block_of = np.cumsum(np.r_[True, sx[1:] != sx[:-1]]) - 1
    # Best y among blocks with strictly larger x (-inf for the first block).
    best_before = np.r_[-np.inf, np.maximum.accumulate(block_max)[:-1]]
    on_front = (sy == block_max[block_of]) & (sy > best_before[block_of])
    mask[finite[order]] = on_front
    return mask


def hypervolume_2d(x, y, reference: tuple[float, float] = DEFAULT_REFERENCE) -> float:
    """Area dominated by the points and dominating the reference (maximisation).

    Points not strictly better than the reference in both coordinates add nothing.
    """
    x, y = np.asarray(x, float), np.asarray(y, float)
    rx, ry = reference
    keep = np.isfinite(x) & np.isfinite(y) & (x > rx) & (y > ry)
    x, y = x[keep], y[keep]
    front = pareto_front_mask(x, y)
    fx, fy = x[front], y[front]
    order = np.lexsort((fy, -fx))  # x descending, so y ascending along the front
    fx, fy = fx[order], fy[order]
    # Duplicates of a front point contribute zero-height slabs.
    heights = np.diff(np.r_[ry, fy])
    return float(np.sum((fx - rx) * heights))


def bootstrap_hypervolume(x, y, n_boot: int, seed: int, reference: tuple[float, float] = DEFAULT_REFERENCE,
                          min_points: int = MIN_BOOT_POINTS) -> tuple[float, float, int, str]:
    """(ci_low, ci_high, n_boot used, note): percentile CI of the hypervolume over resampled points."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    finite = np.isfinite(x) & np.isfinite(y)
    x, y = x[finite], y[finite]
    n = len(x)
    if n_boot <= 0:
        return np.nan, np.nan, 0, "no bootstrap requested"
    if n < min_points:
        return np.nan, np.nan, 0, f"{n} point(s): hypervolume CI needs >= {min_points}"
    rng = np.random.default_rng(seed)
    values = np.empty(n_boot)
    for i in range(n_boot):
        idx = rng.integers(0, n, n)
        values[i] = hypervolume_2d(x[idx], y[idx], reference)
    tail = 100 * (1 - CI_LEVEL) / 2
    lo, hi = np.percentile(values, [tail, 100 - tail])
    return float(lo), float(hi), n_boot, ""


def pareto_fronts(points: pd.DataFrame, by: list[str], x: str = "novelty_valid", y: str = "utility",
                  reference: tuple[float, float] = DEFAULT_REFERENCE, n_boot: int = 0,
                  seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per group in `by`: the points with an `on_front` column, and a summary table.

    The summary has one row per group: n_points, n_front, hypervolume, the reference
    point used, and the hypervolume's bootstrap interval (hv_ci_low, hv_ci_high,
    n_boot, seed, ci_note).
    """
    marked, summary = [], []
    for key, grp in points.groupby(by, sort=True):
        key = key if isinstance(key, tuple) else (key,)
        grp = grp.assign(on_front=pareto_front_mask(grp[x], grp[y]))
        marked.append(grp)
        summary.append(dict(zip(by, key)) | {
            "n_points": int((grp[x].notna() & grp[y].notna()).sum()),
            "n_front": int(grp["on_front"].sum()),
            "hypervolume": hypervolume_2d(grp[x], grp[y], reference),
            "reference": reference,
        } | dict(zip(("hv_ci_low", "hv_ci_high", "n_boot", "ci_note"),
                     bootstrap_hypervolume(grp[x], grp[y], n_boot, seed, reference))) | {"seed": seed})
    marked_df = pd.concat(marked, ignore_index=True) if marked else points.assign(on_front=pd.Series(dtype=bool))
    return marked_df, pd.DataFrame(summary, columns=[*by, "n_points", "n_front", "hypervolume", "reference",
                                                     "hv_ci_low", "hv_ci_high", "n_boot", "ci_note", "seed"])
