"""Scaling laws of creativity, validity and loss, bootstrapped over seeds and prompts.

Input: per-run values of each metric in every resample, shape (resamples, runs), row 0
the observed data (resample.PromptStats gives them for prompt-level metrics; val_loss
is the same in every row). Runs are grouped into cells (label, budget, depth, width);
a cell's value is the seed-weighted mean of its runs (resample.cell_values), so the
bootstrap resamples seeds and prompts, never shapes or runs.

* subset "all_runs": every cell is a point.
* subset "frontier": per budget, the cell with the best value of the metric itself
  (highest creativity or validity, lowest loss), chosen again in every resample, so the
  interval includes the uncertainty of which shape is best.

Models (never dropping zeros): creativity E[C] = prefactor·X^exponent by a log-link GLM;
validity logit E[v] = logit_intercept + logit_slope·ln X by a logit-link GLM; val_loss
ln L = ln prefactor + exponent·ln X by least squares (loss is always > 0).
X is each of flops_measured, params and tokens (the cell's seed-mean).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis import resample
from analysis.labels import flops_text
from analysis.powerlaw import batch_glm, batch_ols

X_AXES = ("flops_measured", "params", "tokens")
MODELS = {  # metric -> (model, maximise, parameter names for (intercept, slope))
    "creativity": ("glm_log", True, ("prefactor", "exponent")),
    "validity": ("glm_logit", True, ("logit_intercept", "logit_slope")),
    "val_loss": ("ols_loglog", False, ("prefactor", "exponent")),
}
CURVE_POINTS = 12


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


def power_law_rows(label_runs: pd.DataFrame, run_values: dict[str, np.ndarray], draws: resample.Draws,
                   ids: dict) -> list[dict]:
    """Rows of kind power_law and power_law_curve for one (arch, variant); run_values are
    (resamples, runs) in label_runs' order."""
    cells = resample.make_cells(label_runs, ["budget", "depth", "width"], draws.seeds)
    n_budgets = cells.table["budget"].nunique()
    rows = []
    for metric, (model, maximise, names) in MODELS.items():
        if metric not in run_values:
            continue
        values = resample.cell_values(run_values[metric], cells, draws.seed)
        frontier = frontier_choice(values, cells.table["budget"].to_numpy(float), maximise)
        for x_axis in X_AXES:
            if x_axis not in cells.table.columns:
                continue
            for subset in ("frontier", "all_runs"):
                u, y = law_points(cells, values, x_axis, subset, maximise, frontier)
                a, b = _fit(model, u, y) if n_budgets >= 2 else (np.full(len(y), np.nan),) * 2
                note = _note(n_budgets, y[0], model)
                if not np.isfinite(b[0]) and "not identified" not in note and n_budgets >= 2:
                    note = "; ".join(p for p in (note, "not identified: < 2 distinct x among the points, y all 0 "
                                                       "(or all 1), or separation") if p)
                common = ids | dict(metric=metric, x=x_axis, subset=subset, method=model, n=int(np.isfinite(y[0]).sum()),
                                    n_boot=int(np.isfinite(b[1:]).sum()), note=note)
                intercept = np.exp(a) if model != "glm_logit" else a
                for name, est in zip(names, (intercept, b)):
                    # Resamples say nothing about an estimate the data do not identify.
                    lo, hi = resample.percentile_ci(est[1:]) if np.isfinite(est[0]) else (np.nan, np.nan)
                    rows.append(dict(common, kind="power_law", parameter=name, estimate=float(est[0]),
                                     ci_low=float(lo), ci_high=float(hi), ci_method="bootstrap_percentile"))
                rows += _curve_rows(common, model, a, b, np.exp(u[0][np.isfinite(u[0])]))
    return rows


def _note(n_budgets: int, y: np.ndarray, model: str) -> str:
    if n_budgets < 2:
        return f"{n_budgets} budget(s): a compute law needs >= 2"
    zeros = int((y == 0).sum())
    if zeros and zeros == np.isfinite(y).sum():
        return "every point is 0: not identified"
    return f"{zeros} point(s) at 0 kept in the fit" if zeros and model != "ols_loglog" else ""


def _curve_rows(common: dict, model: str, a: np.ndarray, b: np.ndarray, x_used: np.ndarray) -> list[dict]:
    """The fitted curve and its pointwise 95% band on a grid over the fitted x range, for the figures."""
    if len(x_used) == 0 or not np.isfinite(b[0]):
        return []
    grid = np.geomspace(x_used.min(), x_used.max(), CURVE_POINTS) if x_used.max() > x_used.min() else x_used[:1]
    curves = predict(model, a, b, grid)  # (resamples, grid)
    lo, hi = resample.percentile_ci(curves[1:])
    return [dict(common, kind="power_law_curve", parameter="curve", x_value=float(g), estimate=float(c),
                 ci_low=float(low), ci_high=float(high), ci_method="bootstrap_percentile")
            for g, c, low, high in zip(grid, curves[0], lo, hi)]


def scaling_rate_rows(runs: pd.DataFrame, loss: np.ndarray, draws: resample.Draws, label_col: str) -> list[dict]:
    """ebt.md's scaling-rate ratio slope_ebt / slope_tpp - 1 of val_loss against ln FLOPs, per EBT
    label against "tpp", on the lowest-loss cell per budget within the budget range both share."""
    rows = []
    labels = sorted(set(runs[label_col]))
    for label in [lab for lab in labels if lab != "tpp" and "tpp" in labels]:
        pair = runs[runs[label_col].isin([label, "tpp"])]
        lo = max(pair.groupby(label_col)["budget"].min())
        hi = min(pair.groupby(label_col)["budget"].max())
        slopes, counts = {}, {}
        for name in (label, "tpp"):
            mask = ((runs[label_col] == name) & runs["budget"].between(lo, hi)).to_numpy()
            sub = runs[mask]
            counts[name] = sub["budget"].nunique()
            if counts[name] < 2:
                slopes[name] = np.full(len(loss), np.nan)
                continue
            cells = resample.make_cells(sub, ["budget", "depth", "width"], draws.seeds)
            values = resample.cell_values(loss[:, mask], cells, draws.seed)
            u, y = law_points(cells, values, "flops_measured", "frontier", maximise=False)
            slopes[name] = batch_ols(u, y)[1]
        with np.errstate(invalid="ignore", divide="ignore"):
            ratio = slopes[label] / slopes["tpp"] - 1
        ci = resample.percentile_ci(ratio[1:])
        arch, variant = runs.loc[runs[label_col] == label, ["arch", "variant"]].iloc[0]
        note = (f"shared budget range {flops_text(lo)}-{flops_text(hi)} FLOPs holds {counts[label]} {label} and {counts['tpp']} tpp "
                f"budget(s); a slope needs >= 2") if min(counts.values()) < 2 else f"shared range {flops_text(lo)}-{flops_text(hi)} FLOPs"
        common = dict(kind="scaling_rate", metric="val_loss", x="flops_measured", subset="frontier",
                      method="ols_semilog", note=note)
        rows.append(dict(common, arch="ebt/tpp", variant=f"{variant}/tpp", parameter="ratio", estimate=float(ratio[0]),
                         ci_low=float(ci[0]), ci_high=float(ci[1]), ci_method="bootstrap_percentile",
                         n=counts[label] + counts["tpp"], n_boot=int(np.isfinite(ratio[1:]).sum())))
        for name, (a_, v_) in ((label, (arch, variant)), ("tpp", ("tpp", "tpp"))):
            s_lo, s_hi = resample.percentile_ci(slopes[name][1:])
            rows.append(dict(common, arch=a_, variant=v_, parameter="slope", estimate=float(slopes[name][0]),
                             ci_low=float(s_lo), ci_high=float(s_hi), ci_method="bootstrap_percentile",
                             n=counts[name], n_boot=int(np.isfinite(slopes[name][1:]).sum())))
    return rows
