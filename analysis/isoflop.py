"""IsoFLOP profiles (Chinchilla Approach 2) over model shape.

Within one compute budget, a metric is fitted as a parabola in log(shape):
    metric ≈ c2·u² + c1·u + c0,   u = ln(shape)
and the vertex u* = -c1 / (2·c2) is the optimal shape. The shape axis is one of
depth, width, the width/depth ratio, or params.

* Loss is minimised, so the parabola must open upward (c2 > 0); creativity is
  maximised, so it must open downward (c2 < 0). A parabola opening the wrong way
  has no interior optimum: the estimate is NaN and `method` says so.
* The vertex is biased when the grid is off-centre, so `edge_distance` gives its
  distance in log units to the nearer grid edge: positive inside the grid,
  negative outside (extrapolated).
* With fewer than 3 distinct shapes a parabola is not identified; the best grid
  point is reported instead (method "best_grid_point").
* `bootstrap_vertex` gives a percentile CI of the vertex: the runs of the budget
  are resampled with replacement (fixed seed) and the parabola refitted; resamples
  with < 3 distinct shapes, or whose parabola is flat or opens the wrong way, have
  no vertex and are skipped (n_boot counts the refits used). It needs at least
  MIN_BOOT_POINTS runs: with exactly 3 a parabola interpolates, so every usable
  resample returns the same vertex and the interval would be spuriously narrow.

Groups are (arch, variant, budget): the two EBT variants are never pooled.

What a shape axis can show (`axis_gate`): over params (Chinchilla's Approach 2) an optimum
needs >= MIN_SIZES distinct parameter counts at the budget; over d/L only shapes of one
parameter count (within PARAMS_TOLERANCE) say anything about d/L, since otherwise the
axis mixes size with aspect. Below that the row's method is "not_estimable" and its note
says why. Depth and width alone always mix size and aspect and are not fitted.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from analysis.labels import shape_values
from analysis.resample import percentile_ci

MIN_BOOT_POINTS = 4
GROUP_BY = ("arch", "variant", "budget")
FIT_AXES = ("params", "width_depth_ratio")
MIN_SIZES = 5
PARAMS_TOLERANCE = 0.10  # shapes within 10% of one parameter count count as one size


def axis_gate(group: pd.DataFrame, axis: str) -> str:
    """'' when an optimum over `axis` is estimable from this budget's runs, else "not estimable: <why>"."""
    params = group["params"].astype(float)
    if axis == "params" and params.nunique() < MIN_SIZES:
        return (f"not estimable: {params.nunique()} model size(s) at this budget; an optimum over parameters "
                f"needs >= {MIN_SIZES}")
    if axis == "width_depth_ratio" and params.max() > params.min() * (1 + PARAMS_TOLERANCE):
        return (f"not estimable: the d/L shapes at this budget differ in parameter count ({params.min():.3g}-"
                f"{params.max():.3g}); a d/L optimum needs a fixed parameter count")
    return ""


@dataclass(frozen=True)
class IsoFlopOptimum:
    optimum: float  # in the axis's own units (e.g. layers); NaN if none
    log_optimum: float  # ln(optimum)
    edge_distance: float  # log units to the nearer grid edge; < 0 outside the grid
    metric_at_optimum: float  # fitted (parabola) or observed (grid point) value
    best_grid_point: float  # the shape with the best observed metric
    method: str  # "parabola" | "best_grid_point" | "no_interior_optimum" | "no_data"
    n_shapes: int
    n_points: int
    note: str = ""
    coefficients: tuple[float, float, float] = (np.nan, np.nan, np.nan)  # (c2, c1, c0) of the parabola


def _edge_distance(u: float, grid: np.ndarray) -> float:
    return float(min(u - grid.min(), grid.max() - u))


def fit_isoflop(shape, metric, maximize: bool) -> IsoFlopOptimum:
    """Optimum of metric over shape within one budget (several seeds per shape are fine)."""
    shape, metric = np.asarray(shape, float), np.asarray(metric, float)
    ok = np.isfinite(shape) & np.isfinite(metric) & (shape > 0)
    u, y = np.log(shape[ok]), metric[ok]
    grid = np.unique(u)
    if len(y) == 0:
        return IsoFlopOptimum(np.nan, np.nan, np.nan, np.nan, np.nan, "no_data", 0, 0, "no finite points")

    # Best observed shape: average seeds per shape first, so one lucky seed does not win.
    per_shape = pd.Series(y).groupby(u).mean()
    best_u = per_shape.idxmax() if maximize else per_shape.idxmin()
    best_grid = float(np.exp(best_u))

    if len(grid) < 3:
        return IsoFlopOptimum(best_grid, float(best_u), _edge_distance(best_u, grid), float(per_shape[best_u]),
                              best_grid, "best_grid_point", len(grid), len(y),
                              f"{len(grid)} distinct shape(s): parabola needs 3")
    c2, c1, c0 = np.polyfit(u, y, 2)
    # Curvature below rounding noise (e.g. a constant metric, such as all-zero
    # creativity) is flat, whatever the sign polyfit happens to return.
    flat = np.ptp(y) == 0 or abs(c2) * np.ptp(u) ** 2 <= 1e-9 * np.ptp(y)
    opens_right_way = not flat and (c2 < 0 if maximize else c2 > 0)
    if not opens_right_way:
        return IsoFlopOptimum(np.nan, np.nan, np.nan, np.nan, best_grid, "no_interior_optimum", len(grid), len(y),
                              f"parabola {'is flat' if flat else 'opens ' + ('upward' if c2 > 0 else 'downward')} (c2={c2:.3g}); "
                              f"best grid point {best_grid:.4g}")
    u_star = -c1 / (2 * c2)
    return IsoFlopOptimum(float(np.exp(u_star)), float(u_star), _edge_distance(u_star, grid),
                          float(np.polyval([c2, c1, c0], u_star)), best_grid, "parabola", len(grid), len(y),
                          coefficients=(float(c2), float(c1), float(c0)))


@dataclass(frozen=True)
class VertexCI:
    """Percentile bootstrap interval of the IsoFLOP vertex, in the axis's units."""

    low: float
    high: float
    n_boot: int  # resamples whose refit had a vertex (the percentiles use these)
    seed: int
    note: str = ""


def bootstrap_vertex(shape, metric, maximize: bool, n_boot: int, seed: int,
                     min_points: int = MIN_BOOT_POINTS) -> VertexCI:
    """Resample the runs (points) of one budget with replacement and refit the parabola.

    All resamples are solved at once by least squares on centred ln(shape).
    """
    shape, metric = np.asarray(shape, float), np.asarray(metric, float)
    ok = np.isfinite(shape) & np.isfinite(metric) & (shape > 0)
    u, y = np.log(shape[ok]), metric[ok]
    n = len(y)
    if n_boot <= 0:
        return VertexCI(np.nan, np.nan, 0, seed, "no bootstrap requested")
    if n < min_points or len(np.unique(u)) < 3:
        return VertexCI(np.nan, np.nan, 0, seed,
                        f"{n} point(s), {len(np.unique(u))} shape(s): vertex CI needs >= {min_points} points and 3 shapes")
    centre = u.mean()
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, n, (n_boot, n))
    U, Y = u[idx] - centre, y[idx]
    sorted_u = np.sort(U, axis=1)
    n_distinct = 1 + (np.diff(sorted_u, axis=1) > 1e-12).sum(axis=1)
    design = np.stack([U**2, U, np.ones_like(U)], axis=-1)
    good = n_distinct >= 3
    vertices = np.full(n_boot, np.nan)
    if good.any():
        X, Yg = design[good], Y[good]
        coef = np.linalg.solve(np.einsum("bni,bnj->bij", X, X), np.einsum("bni,bn->bi", X, Yg)[..., None])[..., 0]
        c2, c1 = coef[:, 0], coef[:, 1]
        spread = np.ptp(Yg, axis=1)
        flat = (spread == 0) | (np.abs(c2) * np.ptp(U[good], axis=1) ** 2 <= 1e-9 * spread)
        right_way = ~flat & ((c2 < 0) if maximize else (c2 > 0))
        with np.errstate(divide="ignore", invalid="ignore"):
            v = np.where(right_way, centre - c1 / (2 * c2), np.nan)
        vertices[good] = v
    used = vertices[np.isfinite(vertices)]
    if len(used) == 0:
        return VertexCI(np.nan, np.nan, 0, seed, f"no resample of {n_boot} had an interior vertex")
    lo, hi = percentile_ci(used)
    note = "" if len(used) == n_boot else f"{n_boot - len(used)} of {n_boot} resamples had no vertex and were skipped"
    return VertexCI(float(np.exp(lo)), float(np.exp(hi)), len(used), seed, note)


def isoflop_optima(table: pd.DataFrame, metric: str, axis: str, maximize: bool,
                   by: tuple[str, ...] = GROUP_BY, n_boot: int = 0, seed: int = 0) -> pd.DataFrame:
    """One row per group in `by` with the fields of IsoFlopOptimum plus metric and axis,
    and the vertex's bootstrap interval (ci_low, ci_high, n_boot, seed, ci_note)."""
    rows = []
    for key, grp in table.groupby(list(by), sort=True):
        key = key if isinstance(key, tuple) else (key,)
        shape = shape_values(grp, axis)
        gate = axis_gate(grp, axis) if "params" in grp.columns else ""
        opt = fit_isoflop(shape, grp[metric], maximize)
        if gate:
            opt = IsoFlopOptimum(np.nan, np.nan, np.nan, np.nan, opt.best_grid_point, "not_estimable", opt.n_shapes,
                                 opt.n_points, gate)
        if opt.method == "parabola":
            ci = bootstrap_vertex(shape, grp[metric], maximize, n_boot, seed)
        else:
            ci = VertexCI(np.nan, np.nan, 0, seed, "no parabola vertex" if n_boot > 0 else "no bootstrap requested")
        rows.append(dict(zip(by, key)) | {"metric": metric, "axis": axis} | asdict(opt)
                    | {"ci_low": ci.low, "ci_high": ci.high, "n_boot": ci.n_boot, "seed": seed, "ci_note": ci.note})
    columns = [*by, "metric", "axis", *IsoFlopOptimum.__dataclass_fields__, "ci_low", "ci_high", "n_boot", "seed",
               "ci_note"]
    return pd.DataFrame(rows, columns=columns)
