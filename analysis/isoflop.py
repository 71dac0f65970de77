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
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

SHAPE_AXES = ("depth", "width", "width_depth_ratio", "params")


def shape_values(table: pd.DataFrame, axis: str) -> pd.Series:
    """The shape axis as a column; width_depth_ratio is width / depth (d / L)."""
    if axis == "width_depth_ratio":
        return table["width"].astype(float) / table["depth"].astype(float)
    if axis in SHAPE_AXES:
        return table[axis].astype(float)
    raise ValueError(f"unknown shape axis {axis!r}; choose from {SHAPE_AXES}")


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
    flat = abs(c2) * np.ptp(u) ** 2 <= 1e-9 * np.ptp(y)
    opens_right_way = not flat and (c2 < 0 if maximize else c2 > 0)
    if not opens_right_way:
        return IsoFlopOptimum(np.nan, np.nan, np.nan, np.nan, best_grid, "no_interior_optimum", len(grid), len(y),
                              f"parabola {'is flat' if flat else 'opens ' + ('upward' if c2 > 0 else 'downward')} (c2={c2:.3g}); "
                              f"best grid point {best_grid:.4g}")
    u_star = -c1 / (2 * c2)
    return IsoFlopOptimum(float(np.exp(u_star)), float(u_star), _edge_distance(u_star, grid),
                          float(np.polyval([c2, c1, c0], u_star)), best_grid, "parabola", len(grid), len(y))


def isoflop_optima(table: pd.DataFrame, metric: str, axis: str, maximize: bool,
                   by: tuple[str, ...] = ("arch", "budget")) -> pd.DataFrame:
    """One row per group in `by` with the fields of IsoFlopOptimum plus metric and axis."""
    rows = []
    for key, grp in table.groupby(list(by), sort=True):
        opt = fit_isoflop(shape_values(grp, axis), grp[metric], maximize)
        rows.append(dict(zip(by, key)) | {"metric": metric, "axis": axis} | asdict(opt))
    columns = [*by, "metric", "axis", *IsoFlopOptimum.__dataclass_fields__]
    return pd.DataFrame(rows, columns=columns)
