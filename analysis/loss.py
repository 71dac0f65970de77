"""Validation loss above its floor: the task's Bayes-optimal loss, excess-loss laws, their ratio.

The task is synthetic, so the lowest loss any model can reach on the validation tokens
is computable from the generator (results/task/loss_floor.parquet: one row per scope,
"validation" for the validation sample every run is scored on and "corpus" for every
loss-bearing token; floor in nats per loss token with its interval). Raw loss mixes that
floor with what a model can still learn, so a power law of raw loss, and a ratio of two
arms' raw-loss slopes, mostly measures how far each sits above a constant. Here:

* loss_floor rows copy the table (scope in the `scope` column);
* excess_loss rows: per (arm, budget) the compute-optimal shape's val_loss − floor
  (validation scope), mean over seeds with a t-interval over seeds;
* power_law rows of metric excess_loss: ln(val_loss − floor) = ln A − b·ln C on those
  points, i.e. L = floor + A·C^(-b) with the floor fixed. One fit per seed; the exponent is
  the mean over seeds with a t-interval over them (intervals.seed_interval);
* scaling_rate rows: the ratio of EBT to Transformer++ excess-loss exponents, per seed
  (seeds paired by value), mean and t-interval over seeds;
* training rows: epochs and the train–val gap of the compute-optimal runs, when runs has them.

An exponent needs >= 4 budgets spanning >= 1 decade (scaling.exponent_gate); below that
its estimate is NaN and the note says "not estimable" and why.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis import crossover, intervals
from analysis.labels import LABEL
from analysis.paired import compute_optimal_runs
from analysis.scaling import exponent_gate
from models.architectures import EBT_FAMILY, TPP

FLOOR_COLUMNS = ["scope", "floor", "ci_low", "ci_high", "method", "n_tokens", "n_sequences"]
TRAINING_COLUMNS = ("epochs", "train_val_gap")


def validation_floor(loss_floor: pd.DataFrame | None) -> float:
    """The validation-scope floor, NaN without one."""
    if loss_floor is None or loss_floor.empty or "scope" not in loss_floor.columns:
        return np.nan
    hit = loss_floor[loss_floor["scope"] == "validation"]
    return float(hit["floor"].iloc[0]) if len(hit) else np.nan


def floor_rows(loss_floor: pd.DataFrame | None) -> list[dict]:
    if loss_floor is None or loss_floor.empty:
        return []
    rows = []
    for r in loss_floor.itertuples(index=False):
        lo, hi = float(getattr(r, "ci_low", np.nan)), float(getattr(r, "ci_high", np.nan))
        rows.append(dict(kind="loss_floor", arch="task", metric="loss_floor", scope=r.scope, parameter="floor",
                         estimate=float(r.floor), ci_low=lo, ci_high=hi, method=str(getattr(r, "method", "")),
                         ci_method="monte_carlo" if hi > lo else "", n=int(getattr(r, "n_tokens", 0)),
                         note=f"nats per loss token; {int(getattr(r, 'n_sequences', 0))} sequences"))
    return rows


def _frontier(arm: pd.DataFrame, floor: float) -> pd.DataFrame:
    """(budget, seed) -> excess loss and FLOPs of each budget's compute-optimal shape."""
    best = pd.concat([compute_optimal_runs(grp) for _, grp in arm.groupby("budget")])
    return best.assign(excess=best["val_loss"] - floor)


def _per_seed_lines(points: pd.DataFrame, seeds: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(intercept, slope) of ln excess on ln FLOPs per seed, each (1, seeds); NaN where a seed
    has < 2 usable points."""
    out = np.full((2, 1, len(seeds)), np.nan)
    for i, seed in enumerate(seeds):
        p = points[(points["seed"] == seed) & (points["excess"] > 0)]
        if p["budget"].nunique() >= 2:
            u, y = np.log(p["flops_measured"].to_numpy(float)), np.log(p["excess"].to_numpy(float))
            out[1, 0, i], out[0, 0, i] = np.polyfit(u, y, 1)
    return out[0], out[1]


def excess_loss_rows(ok: pd.DataFrame, floor: float) -> list[dict]:
    """excess_loss, power_law (metric excess_loss), scaling_rate and training rows; ok: labelled ok runs."""
    if not np.isfinite(floor) or ok.empty:
        return []
    seeds = np.sort(ok["seed"].unique())
    rows, exponents, lines = [], {}, {}
    for label, arm in ok.dropna(subset=["val_loss"]).groupby(LABEL, sort=True):
        ids = dict(arch=arm["arch"].iloc[0], variant=arm["variant"].iloc[0])
        points = _frontier(arm, floor)
        for budget, grp in points.groupby("budget"):
            iv = intervals.seed_interval(grp.set_index("seed")["excess"].reindex(seeds).to_numpy()[None, :])
            rows.append(dict(ids, kind="excess_loss", metric="excess_loss", x="budget", budget=float(budget),
                             parameter="mean", n=len(grp), n_seeds=iv.n_seeds, **iv.fields()) |
                        {"note": "; ".join(p for p in (iv.note, f"floor {floor:.4g}") if p)})
            rows += _training_rows(ids, budget, grp, seeds)
        gate = exponent_gate(points["budget"])
        lines[label] = _per_seed_lines(points, seeds), points["budget"].unique(), gate
        per_seed = lines[label][0][1]
        exponents[label] = per_seed if not gate else np.full_like(per_seed, np.nan)
        iv = intervals.seed_interval(exponents[label]) if not gate else intervals.Interval(np.nan, np.nan, np.nan, 0,
                                                                                            np.nan, gate)
        rows.append(dict(ids, kind="power_law", metric="excess_loss", x="flops_measured", subset="frontier",
                         parameter="exponent", method="ols_loglog_excess", n=points["budget"].nunique(),
                         n_seeds=iv.n_seeds, **iv.fields()))
    return rows + _ratio_rows(ok, exponents) + _crossover_rows(ok, lines)


def _crossover_rows(ok: pd.DataFrame, lines: dict) -> list[dict]:
    """Where each EBT's excess-loss law would meet the Transformer++'s (analysis/crossover.py)."""
    if TPP.label not in lines:
        return []
    tpp_line, tpp_budgets, tpp_gate = lines[TPP.label]
    rows = []
    for label in [lab for lab in lines if lab != TPP.label]:
        line, budgets, gate = lines[label]
        variant = ok.loc[ok[LABEL] == label, "variant"].iloc[0]
        rows.append(crossover.crossover_row("excess_loss", variant, line, tpp_line,
                                            np.intersect1d(budgets, tpp_budgets), gate or tpp_gate))
    return rows


def _training_rows(ids: dict, budget: float, grp: pd.DataFrame, seeds: np.ndarray) -> list[dict]:
    rows = []
    for column in [c for c in TRAINING_COLUMNS if c in grp.columns]:
        iv = intervals.seed_interval(grp.set_index("seed")[column].reindex(seeds).to_numpy(float)[None, :])
        rows.append(dict(ids, kind="training", metric=column, x="budget", budget=float(budget), parameter="mean",
                         n=len(grp), n_seeds=iv.n_seeds, **iv.fields()))
    return rows


def _ratio_rows(ok: pd.DataFrame, exponents: dict[str, np.ndarray]) -> list[dict]:
    """EBT exponent over the Transformer++'s, per seed pair."""
    rows = []
    if TPP.label not in exponents:
        return rows
    for label in [lab for lab in exponents if lab != TPP.label]:
        variant = ok.loc[ok[LABEL] == label, "variant"].iloc[0]
        with np.errstate(invalid="ignore", divide="ignore"):
            ratio = exponents[label] / exponents[TPP.label]
        if np.isfinite(ratio).any():
            iv = intervals.seed_interval(ratio)
        else:
            iv = intervals.Interval(np.nan, np.nan, np.nan, 0, np.nan,
                                    "not estimable: an exponent of one of the arms is not estimable")
        rows.append(dict(kind="scaling_rate", arch=f"{EBT_FAMILY}/{TPP.family}", variant=f"{variant}/{TPP.variant}",
                         metric="excess_loss", x="flops_measured", subset="frontier", parameter="ratio",
                         method="excess_exponent_ratio",
                         n_seeds=iv.n_seeds, **iv.fields()))
    return rows

