"""Scaling laws of correct rate, walk validity and creativity, one fit per seed.

Input: per-run values of each metric in every prompt resample, shape (resamples, runs),
row 0 the observed data (resample.PromptStats). Runs are grouped into cells (label,
budget, depth, width). The law is fitted to each seed's cells separately, on the observed
prompts and on every prompt resample; the estimate is the mean over seeds of the per-seed
parameters, with the seed-level interval of analysis/intervals.py (t over seeds plus the
prompt bootstrap), so the interval keeps its coverage with 3 seeds. Curves likewise, pointwise.

* subset "all_runs": every cell is a point.
* subset "frontier": per budget, the cell with the best value of the metric itself
  (highest creativity or validity, lowest loss), chosen again in every resample, so the
  interval includes the uncertainty of which shape is best.

Models (never dropping zeros): creativity E[C] = prefactor·X^exponent by a log-link GLM;
correct rate and walk validity logit E[v] = logit_intercept + logit_slope·ln X by a
logit-link GLM. X is each of flops_measured, params and tokens (the cell's seed-mean).
Loss laws are fitted above the task's loss floor (analysis/loss.py), not here.

An exponent needs >= MIN_BUDGETS budgets spanning >= MIN_DECADES decade(s) of compute
(`exponent_gate`): with three budgets over half a decade the middle point has no leverage
and the slope is a two-point slope. Below that every law's estimate is NaN and its note
starts "not estimable:".
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis import intervals, resample
from analysis.powerlaw import batch_glm, batch_ols

X_AXES = ("flops_measured", "params", "tokens")
MODELS = {  # metric -> (model, maximise, parameter names for (intercept, slope))
    "creativity": ("glm_log", True, ("prefactor", "exponent")),
    "correct_rate": ("glm_logit", True, ("logit_intercept", "logit_slope")),
    "validity": ("glm_logit", True, ("logit_intercept", "logit_slope")),
}
CURVE_POINTS = 12
MIN_BUDGETS = 4
MIN_DECADES = 1.0


def exponent_gate(budgets) -> str:
    """'' when the budgets can carry an exponent, else "not estimable: <why>"."""
    b = np.unique(np.asarray(budgets, float)[np.isfinite(np.asarray(budgets, float))])
    decades = float(np.log10(b.max() / b.min())) if len(b) else 0.0
    if len(b) >= MIN_BUDGETS and decades >= MIN_DECADES - 1e-9:
        return ""
    return (f"not estimable: {len(b)} budget(s) spanning {decades:.2f} decade(s); an exponent needs "
            f">= {MIN_BUDGETS} budgets over >= {MIN_DECADES:g} decade")


def _fit(model: str, u: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    if model == "glm_log":
        return batch_glm(u, y, "log")
    if model == "glm_logit":
        return batch_glm(u, y, "logit")
    with np.errstate(divide="ignore", invalid="ignore"):
        return batch_ols(u, np.log(y))


def predict(model: str, intercept, slope, x) -> np.ndarray:
    """The fitted curve at x (broadcasting intercept/slope over resamples)."""
    eta = np.asarray(intercept)[..., None] + np.asarray(slope)[..., None] * np.log(np.asarray(x, float))
    return 1 / (1 + np.exp(-eta)) if model == "glm_logit" else np.exp(eta)


def frontier_choice(values: np.ndarray, budgets: np.ndarray, maximise: bool) -> tuple[np.ndarray, np.ndarray]:
    """For each budget, the best cell per resample: (chosen cell index (B, budgets), its value)."""
    budget_list = np.unique(budgets)
    signed = values if maximise else -values
    chosen = np.zeros((len(values), len(budget_list)), dtype=int)
    for j, budget in enumerate(budget_list):
        cols = np.flatnonzero(budgets == budget)
        block = np.where(np.isfinite(signed[:, cols]), signed[:, cols], -np.inf)
        chosen[:, j] = cols[np.argmax(block, axis=1)]
    picked = np.take_along_axis(values, chosen, axis=1)
    return chosen, picked


def law_points(cells: resample.Cells, values: np.ndarray, x_axis: str, subset: str, maximise: bool, frontier=None):
    """(u, y) arrays (resamples, points) for one fit. frontier: frontier_choice's result for
    these values, when the caller already has it (it does not depend on the x axis)."""
    x = cells.table[x_axis].to_numpy(float)
    if subset == "all_runs":
        return np.broadcast_to(np.log(x), values.shape), values
    chosen, picked = frontier if frontier is not None else \
        frontier_choice(values, cells.table["budget"].to_numpy(float), maximise)
    return np.log(x)[chosen], picked


def _seed_weights(draws: resample.Draws, i: int) -> np.ndarray:
    """Seed weights that keep only seed i, in every resample."""
    w = np.zeros((len(draws.prompt), len(draws.seeds)))
    w[:, i] = 1.0
    return w


def power_law_rows(label_runs: pd.DataFrame, run_values: dict[str, np.ndarray], draws: resample.Draws,
                   ids: dict) -> list[dict]:
    """Rows of kind power_law and power_law_curve for one (arch, variant); run_values are
    (resamples, runs) in label_runs' order."""
    cells = resample.make_cells(label_runs, ["budget", "depth", "width"], draws.seeds)
    budgets = cells.table["budget"].to_numpy(float)
    gate = exponent_gate(budgets)
    rows = []
    for metric, (model, maximise, names) in MODELS.items():
        if metric not in run_values:
            continue
        mean_values = resample.cell_values(run_values[metric], cells, np.ones_like(draws.seed))  # for notes, n
        per_seed = _per_seed_values(run_values[metric], cells, draws)
        frontiers = [frontier_choice(v, budgets, maximise) for v in per_seed]
        for x_axis in [x for x in X_AXES if x in cells.table.columns]:
            for subset in ("frontier", "all_runs"):
                u0, y0 = law_points(cells, mean_values, x_axis, subset, maximise)
                a, b = _seed_fits(cells, per_seed, frontiers, metric, x_axis, subset, gate)
                note = gate or _note(y0[0], model)
                if not np.isfinite(b[0]).any() and not gate and "not identified" not in note:
                    note = "; ".join(p for p in (note, "not identified: < 2 distinct x among the points, y all 0 "
                                                       "(or all 1), or separation") if p)
                common = ids | dict(metric=metric, x=x_axis, subset=subset, method=model,
                                    n=int(np.isfinite(y0[0]).sum()), n_boot=draws.n_boot)
                intercept = np.exp(a) if model != "glm_logit" else a
                for name, est in zip(names, (intercept, b)):
                    iv = intervals.seed_interval(est)
                    rows.append(dict(common, kind="power_law", parameter=name, n_seeds=iv.n_seeds, **iv.fields())
                                | {"note": "; ".join(p for p in (note, iv.note if not gate else "") if p)})
                rows += _curve_rows(common, model, a, b, np.exp(u0[0][np.isfinite(u0[0])]))
    return rows


def _per_seed_values(run_values: np.ndarray, cells: resample.Cells, draws: resample.Draws) -> list[np.ndarray]:
    return [resample.cell_values(run_values, cells, _seed_weights(draws, i)) for i in range(len(draws.seeds))]


def _seed_fits(cells, per_seed, frontiers, metric, x_axis, subset, gate) -> tuple[np.ndarray, np.ndarray]:
    """The law's (intercept, slope) on the link scale, each (resamples, seeds); NaN when gated."""
    model, maximise, _ = MODELS[metric]
    fits = [_fit(model, *law_points(cells, v, x_axis, subset, maximise, f)) if not gate else
            (np.full(len(v), np.nan),) * 2 for v, f in zip(per_seed, frontiers)]
    return np.stack([f[0] for f in fits], axis=1), np.stack([f[1] for f in fits], axis=1)


def law_coefficients(label_runs: pd.DataFrame, run_values: np.ndarray, draws: resample.Draws, metric: str,
                     x_axis: str = "flops_measured", subset: str = "frontier"):
    """One arm's per-seed law of one metric, for comparisons between arms (analysis/crossover.py):
    (intercepts, slopes) each (resamples, seeds) on the link scale, the budgets, and the gate."""
    cells = resample.make_cells(label_runs, ["budget", "depth", "width"], draws.seeds)
    budgets = cells.table["budget"].to_numpy(float)
    per_seed = _per_seed_values(run_values, cells, draws)
    frontiers = [frontier_choice(v, budgets, MODELS[metric][1]) for v in per_seed]
    gate = exponent_gate(budgets)
    return _seed_fits(cells, per_seed, frontiers, metric, x_axis, subset, gate), budgets, gate


def _note(y: np.ndarray, model: str) -> str:
    zeros = int((y == 0).sum())
    if zeros and zeros == np.isfinite(y).sum():
        return "every point is 0: not identified"
    return f"{zeros} point(s) at 0 kept in the fit" if zeros and model != "ols_loglog" else ""


def _curve_rows(common: dict, model: str, a: np.ndarray, b: np.ndarray, x_used: np.ndarray) -> list[dict]:
    """The fitted curve (mean over seeds) and its pointwise 95% band on a grid over the fitted
    x range, for the figures. a, b: (resamples, seeds)."""
    if len(x_used) == 0 or not np.isfinite(b[0]).any():
        return []
    grid = np.geomspace(x_used.min(), x_used.max(), CURVE_POINTS) if x_used.max() > x_used.min() else x_used[:1]
    curves = predict(model, a, b, grid)  # (resamples, seeds, grid)
    rows = []
    for g, k in zip(grid, range(len(grid))):
        iv = intervals.seed_interval(curves[:, :, k])
        rows.append(dict(common, kind="power_law_curve", parameter="curve", x_value=float(g), n_seeds=iv.n_seeds,
                         **iv.fields()) | {"note": common.get("note", "")})
    return rows
