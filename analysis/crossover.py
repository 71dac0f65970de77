"""Where would the EBT's trend meet the Transformer++'s? The crossover compute, with an interval.

Both arms' laws are log-linear in training compute u = ln C: excess loss
ln(L − floor) = a + b·u (analysis/loss.py) and creativity ln E[C] = a + b·u
(analysis/scaling.py). Per seed (seeds paired by value), and per prompt resample where the
metric has them, the gap between the arms is a line,

    gap(u) = (a_ebt − a_tpp) + (b_ebt − b_tpp)·u,

and the crossover is where the mean gap over seeds is 0. Its interval inverts the gap's
interval (Fieller's construction): every compute at which the seed-level interval of the
gap (intervals.seed_interval) contains 0 is a crossover the data cannot rule out. That set
is searched on a grid from the smallest budget to HORIZON_DECADES beyond the largest, so
an open end is reported as "beyond", never as a number the data do not support.

Rows of kind "crossover" (parameter log10_flops): estimate, ci_low, ci_high in log10 FLOPs
(±inf where the interval runs off the searched range), and a note that is the sentence the
findings page shows, including "no crossover within N decades at the fitted slopes" when the
mean lines do not meet inside the searched range.
"""

from __future__ import annotations

import numpy as np

from analysis import intervals

HORIZON_DECADES = 3.0  # how far beyond the largest budget a crossover is looked for
GRID_POINTS = 400
LOWER_IS_BETTER = {"excess_loss": True, "creativity": False}


def _flops(u: float) -> str:
    return f"{np.exp(u):.2g}"


def crossover_row(metric: str, variant: str, ebt: tuple[np.ndarray, np.ndarray], tpp: tuple[np.ndarray, np.ndarray],
                  budgets, gate: str = "") -> dict:
    """One crossover row. ebt, tpp: (intercepts, slopes), each (1 + resamples, seeds) with the
    same seed columns, in ln-ln units of the metric against training FLOPs; budgets: the
    shared budgets the laws were fitted on; gate: why the laws are not estimable, if they are not."""
    row = dict(kind="crossover", arch="ebt", variant=variant, metric=metric, x="flops_measured",
               parameter="log10_flops", method="fieller_seed_interval", estimate=np.nan, ci_low=np.nan,
               ci_high=np.nan, n=len(np.unique(budgets)))
    name = {"excess_loss": "excess loss", "creativity": "creativity"}[metric]
    (a_e, b_e), (a_t, b_t) = [tuple(np.atleast_2d(np.asarray(x, float)) for x in arm) for arm in (ebt, tpp)]
    d_a, d_b = a_e - a_t, b_e - b_t  # (1 + resamples, seeds)
    if gate or not (np.isfinite(d_a[0]) & np.isfinite(d_b[0])).sum() >= 2:
        why = gate or "not estimable: fewer than 2 seeds have both arms' laws"
        return row | {"note": f"{name}: {why}"}
    seeds = np.isfinite(d_a[0]) & np.isfinite(d_b[0])
    d_a, d_b = d_a[:, seeds], d_b[:, seeds]
    lo_u, hi_u = np.log(np.min(budgets)), np.log(np.max(budgets))
    end_u = hi_u + HORIZON_DECADES * np.log(10)
    grid = np.linspace(lo_u, end_u, GRID_POINTS)
    gap = d_a[..., None] + d_b[..., None] * grid  # (1 + resamples, seeds, grid)
    mean_a, mean_b = float(d_a[0].mean()), float(d_b[0].mean())
    ebt_behind = (mean_a + mean_b * hi_u > 0) == LOWER_IS_BETTER[metric]
    covered = np.array([_contains_zero(gap[:, :, k]) for k in range(len(grid))])
    root = -mean_a / mean_b if mean_b != 0 else np.nan
    where = "behind" if ebt_behind else "ahead"
    if not (np.isfinite(root) and lo_u <= root <= end_u):
        return row | {"n_seeds": int(seeds.sum()), "note": (
            f"{name}: no crossover within {HORIZON_DECADES:g} decades of the largest budget at the fitted slopes "
            f"(the EBT is {where} at {_flops(hi_u)} FLOPs; " + _set_text(grid, covered) + ")")}
    low, high = _interval_around(grid, covered, root)
    lo_text = "below the smallest budget" if low <= lo_u else f"{_flops(low)}"
    hi_text = f"beyond {HORIZON_DECADES:g} decades past the largest budget" if high >= end_u else f"{_flops(high)}"
    log10 = lambda u, edge, inf: inf if u == edge else u / np.log(10)  # noqa: E731
    return row | {"estimate": root / np.log(10), "ci_low": log10(low, lo_u, -np.inf), "ci_high": log10(high, end_u, np.inf),
                  "ci_method": intervals.METHOD, "n_seeds": int(seeds.sum()),
                  "note": f"{name}: the trends meet at {_flops(root)} FLOPs (95% interval {lo_text} to {hi_text}); "
                          f"the EBT is {where} at the largest budget, {_flops(hi_u)} FLOPs"}


def _contains_zero(per_seed: np.ndarray) -> bool:
    iv = intervals.seed_interval(per_seed)
    return bool(np.isfinite(iv.low) and iv.low <= 0 <= iv.high)


def _interval_around(grid: np.ndarray, covered: np.ndarray, root: float) -> tuple[float, float]:
    """The contiguous run of covered grid points next to the root, widened to hold the root."""
    k = int(np.clip(np.searchsorted(grid, root), 0, len(grid) - 1))
    k = k if covered[k] or k == 0 or not covered[k - 1] else k - 1
    if not covered[k]:
        return root, root
    lo = k
    while lo > 0 and covered[lo - 1]:
        lo -= 1
    hi = k
    while hi < len(grid) - 1 and covered[hi + 1]:
        hi += 1
    return min(grid[lo], root), max(grid[hi], root)


def _set_text(grid: np.ndarray, covered: np.ndarray) -> str:
    if not covered.any():
        return "the gap's interval excludes 0 everywhere in that range"
    return (f"the gap's interval includes 0 from {_flops(grid[covered].min())} to "
            f"{_flops(grid[covered].max())} FLOPs")
