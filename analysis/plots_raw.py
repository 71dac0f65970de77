"""Descriptive figures drawn from the raw tables: nothing here is a fit, so they do not
read fits.parquet (error shares, EBT thinking curves, energy descent, training curves).
Lines are means over runs, without intervals; intervals belong in fits.parquet.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib import pyplot as plt
from matplotlib.lines import Line2D
from matplotlib.ticker import FixedLocator

from analysis.labels import DEFAULT_DECODING, LABEL, arch_name, default_decoding, with_labels
from analysis.plotting import (BUDGET_TITLE, METRIC_LABELS, arch_labels, budget_handles, budget_palette, fmt_flops,
                               grid, grid_ticks, headline_rate, label_budgets, legend_right, no_data, no_data_figure,
                               ok_metrics, ok_runs, save, title)
from models.architectures import EBT_FAMILY, TPP, TPP_FAMILY
from creativity.scoring import ERROR_TYPES

# The error-share columns in the scorer's check order (a walk's error is its first failed check).
ERROR_ORDER = [f"err_{e}" for e in ERROR_TYPES if e != "none"]


def error_columns(metrics: pd.DataFrame) -> list[str]:
    """The error-type share columns present, in check order, "none" last."""
    present = [c for c in metrics.columns if c.startswith("err_") and c != "err_none"]
    return sorted(present, key=lambda c: ERROR_ORDER.index(c) if c in ERROR_ORDER else len(ERROR_ORDER)) + ["err_none"]


def plot_error_shares(runs, metrics, out_path, **_) -> Path:
    """Stacked error-type shares against budget (all levels pooled, default decoding, mean over runs)."""
    data = default_decoding(ok_metrics(runs, metrics))
    data = data[data["level"] == 0] if len(data) else data
    labels = arch_labels(data)
    if not labels:
        return no_data_figure(out_path, "Error types of generated walks", "no outputs")
    columns = error_columns(data)
    # Not tab10: its first colours are the architectures'. "none" (no error) is light grey.
    colors = sns.color_palette("Set2", len(columns) - 1) + ["#d9d9d9"]
    fig, axes_grid = grid(1, len(labels), sharey=True)
    for ax, label in zip(axes_grid[0], labels):
        sub = data[data[LABEL] == label]
        shares = sub.groupby("budget")[columns].mean()
        positions = np.arange(len(shares))
        bottom = np.zeros(len(shares))
        for col, color in zip(columns, colors):
            ax.bar(positions, shares[col], bottom=bottom, color=color, width=0.7)
            bottom += shares[col].fillna(0).to_numpy()
        ax.set_xticks(positions, [fmt_flops(b) for b in shares.index])
        ax.set(xlabel=BUDGET_TITLE, ylabel="share of outputs (all levels)", ylim=(0, 1.02))
        title(ax, label, f"error types ({DEFAULT_DECODING.get(sub['arch'].iloc[0], '?')})")
    handles = [plt.Rectangle((0, 0), 1, 1, color=c, label=col.removeprefix("err_").replace("_", " "))
               for col, c in zip(columns, colors)][::-1]
    legend_right(fig, handles, "error type")
    return save(fig, out_path)


def plot_thinking_curves(runs, metrics, out_path, metric: str | None = None, **_) -> Path:
    """EBT metric (all levels; default the correct rate) against thinking-steps multiplier and
    against self-verification candidates M, one line per budget, one row per EBT variant;
    Transformer++ greedy at the same budget dashed."""
    data = ok_metrics(runs, metrics)
    metric = metric or headline_rate(data)
    data = data[data["level"] == 0] if len(data) else data
    ebt = data[data["arch"] == EBT_FAMILY] if len(data) else data
    labels = arch_labels(ebt)
    if not labels:
        return no_data_figure(out_path, f"EBT inference-time scaling: {metric}", "no EBT runs")
    tpp_greedy = default_decoding(data[data["arch"] == TPP_FAMILY]).groupby("budget")[metric].mean()
    budget_colors = budget_palette(ebt["budget"])
    ebt, palette = label_budgets(ebt)
    panels = (("think", "steps_multiplier", "thinking steps (× training steps, log₂)"),
              ("verify", "num_candidates", "self-verification candidates M (log₂)"))
    fig, axes_grid = grid(len(labels), 2, sharey=True)
    for row, label in enumerate(labels):
        for ax, (family, x, xlabel) in zip(axes_grid[row], panels):
            sub = ebt[(ebt[LABEL] == label) & (ebt["decoding_family"] == family) & ebt[x].notna()]
            if sub.empty:
                no_data(ax, f"{arch_name(label)} {family}")
                continue
            sns.lineplot(data=sub, x=x, y=metric, hue=BUDGET_TITLE, palette=palette, marker="o",
                         errorbar=None, ax=ax, legend=False)
            for budget, color in budget_colors.items():
                if budget in tpp_greedy.index:
                    ax.axhline(tpp_greedy[budget], color=color, ls="--", lw=1)
            ax.set_xscale("log", base=2)
            grid_ticks(ax, sub[x])
            ax.grid(alpha=0.3)
            ax.set(xlabel=xlabel, ylabel=f"{METRIC_LABELS.get(metric, metric)}, all levels")
            title(ax, label, "thinking longer" if family == "think" else "self-verification")
    baseline = f"{TPP.display} {DEFAULT_DECODING[TPP_FAMILY]}\n(same budget)"
    handles = budget_handles(budget_colors) + [Line2D([], [], color="grey", ls="--", label=baseline)]
    legend_right(fig, handles, BUDGET_TITLE)
    return save(fig, out_path)


def plot_energy_descent(runs, samples, out_path, **_) -> Path:
    """Mean EBT energy at each optimisation step (samples.energy_by_step), one line per budget,
    one panel per EBT variant."""
    ok = ok_runs(runs)
    ok = ok[ok["arch"] == EBT_FAMILY] if len(ok) else ok
    has = len(samples) and {"run_id", "energy_by_step"} <= set(samples.columns)
    sub = samples[samples["run_id"].isin(ok["run_id"])][["run_id", "energy_by_step"]].reset_index(drop=True) \
        if has else pd.DataFrame(columns=["run_id", "energy_by_step"])
    steps = sub.explode("energy_by_step") if len(sub) else sub
    if len(steps):
        steps = steps.assign(step=steps.groupby(level=0).cumcount())
        steps = steps.dropna(subset=["energy_by_step"]).astype({"energy_by_step": float})
    if steps.empty:
        return no_data_figure(out_path, "EBT energy descent", "no EBT energies")
    # Average within a run first, so runs with more samples do not dominate.
    per_run = steps.groupby(["run_id", "step"], as_index=False)["energy_by_step"].mean()
    per_run = per_run.merge(ok[["run_id", "budget", LABEL]], on="run_id")
    labels = arch_labels(per_run)
    palette_by_budget = budget_palette(per_run["budget"])
    per_run, palette = label_budgets(per_run)
    fig, axes_grid = grid(1, len(labels), sharey=True)
    for ax, label in zip(axes_grid[0], labels):
        sns.lineplot(data=per_run[per_run[LABEL] == label], x="step", y="energy_by_step", hue=BUDGET_TITLE,
                     palette=palette, marker="o", errorbar=None, ax=ax, legend=False)
        ax.xaxis.set_major_locator(FixedLocator(sorted(per_run["step"].unique())) if per_run["step"].nunique() <= 12
                                   else ax.xaxis.get_major_locator())
        ax.set(xlabel="optimisation step (0 = initial guess)", ylabel="mean energy (per token)")
        ax.grid(alpha=0.3)
        title(ax, label, "energy descent")
    legend_right(fig, budget_handles(palette_by_budget), f"{BUDGET_TITLE}\nline: mean over runs")
    return save(fig, out_path)


def plot_loss_curves(runs, curves, out_path, **_) -> Path:
    """Training loss (lines) and validation loss (dots) against tokens, coloured by budget,
    one panel per architecture; diverged runs dashed."""
    keys = ["run_id", "arch", "variant", "budget", "status"]
    if len(curves) == 0 or "run_id" not in curves.columns or "run_id" not in runs.columns:
        return no_data_figure(out_path, "Training curves", "no curves")
    info = with_labels(runs)[[k for k in keys if k in runs.columns] + [LABEL]]
    data = curves.drop(columns=[c for c in ("arch", "variant", "budget", "status") if c in curves.columns])
    data = data.merge(info, on="run_id", how="inner")
    labels = arch_labels(data)
    if not labels:
        return no_data_figure(out_path, "Training curves", "no curves")
    palette = budget_palette(data["budget"])
    fig, axes_grid = grid(1, len(labels), sharey=True)
    for ax, label in zip(axes_grid[0], labels):
        sub = data[data[LABEL] == label]
        for _, grp in sub.groupby("run_id"):
            grp = grp.sort_values("tokens")
            color = palette.get(grp["budget"].iloc[0], "grey")
            ls = "-" if (grp["status"] == "ok").all() else "--"
            ax.plot(grp["tokens"], grp["train_loss"], color=color, ls=ls, lw=0.8, alpha=0.7)
            val = grp.dropna(subset=["val_loss"])
            ax.scatter(val["tokens"], val["val_loss"], color=color, s=8)
        ax.set_xscale("log")
        ax.set(xlabel="training tokens (log)", ylabel="loss (nats/token)")
        ax.grid(alpha=0.3)
        title(ax, label, "loss curves")
    handles = budget_handles(palette, marker="") + [
        Line2D([], [], color="grey", label="train loss"),
        Line2D([], [], color="grey", ls="none", marker="o", ms=4, label="validation loss"),
        Line2D([], [], color="grey", ls="--", label="diverged run")]
    legend_right(fig, handles, BUDGET_TITLE)
    return save(fig, out_path)
