"""Figures of the study, one function per figure: plot_xxx(tables..., out_path) -> Path.

Every function
  * uses only non-diverged runs (except plot_loss_curves, which shows diverged
    runs dashed, since seeing where they blew up is the point);
  * draws a "no data" note in an empty panel instead of failing on degenerate
    input, so a partial pipeline still yields a full set of figures;
  * writes the PNG atomically (temp file in the same directory, then os.replace),
    so a reader never sees a half-written file.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless: the pipeline runs without a display
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from analysis import isoflop, pareto, powerlaw  # noqa: E402
from analysis.fits import DEFAULT_DECODING  # noqa: E402

ARCH_NAMES = {"tpp": "Transformer++", "ebt": "EBT"}
ARCH_COLORS = {"tpp": "tab:blue", "ebt": "tab:orange"}
ARCHS = ("tpp", "ebt")
ERROR_COLUMNS = ["err_parse", "err_hallucinated_node", "err_hallucinated_edge", "err_wrong_endpoints",
                 "err_include_violation", "err_exclude_violation", "err_none"]


# ---------------------------------------------------------------- helpers

def _save(fig, out_path) -> Path:
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{out_path.stem}.", suffix=".png", dir=out_path.parent)
    os.close(fd)
    try:
        fig.savefig(tmp, dpi=120, bbox_inches="tight")
        os.replace(tmp, out_path)
    finally:
        plt.close(fig)
        if os.path.exists(tmp):
            os.unlink(tmp)
    return out_path


def _no_data(ax, what: str = "") -> None:
    ax.text(0.5, 0.5, f"no data{': ' + what if what else ''}", ha="center", va="center", transform=ax.transAxes,
            color="grey")
    ax.set_xticks([])
    ax.set_yticks([])


def _ok_metrics(runs: pd.DataFrame, metrics: pd.DataFrame) -> pd.DataFrame:
    return metrics[metrics["run_id"].isin(runs.loc[runs["status"] == "ok", "run_id"])]


def _default_decoding(metrics: pd.DataFrame) -> pd.DataFrame:
    return metrics[metrics["decoding"] == metrics["arch"].map(DEFAULT_DECODING)]


def _budget_palette(budgets) -> dict:
    budgets = sorted(pd.unique(pd.Series(budgets).dropna()))
    return dict(zip(budgets, sns.color_palette("viridis", max(len(budgets), 1))))


BUDGET_LABEL = "budget (FLOPs)"


def _label_budgets(df: pd.DataFrame) -> tuple[pd.DataFrame, dict]:
    """Add a readable budget label column for seaborn's hue, with its palette."""
    palette = _budget_palette(df["budget"])
    labels = {b: f"{b:.1e}" for b in palette}
    return df.assign(**{BUDGET_LABEL: df["budget"].map(labels)}), {labels[b]: c for b, c in palette.items()}


def _axes(n: int, width: float = 5.0, height: float = 4.0):
    fig, axes = plt.subplots(1, n, figsize=(width * n, height), squeeze=False)
    return fig, axes[0]


# ---------------------------------------------------------------- figures

def plot_compute_scaling(runs, metrics, out_path, n_boot: int = 200, seed: int = 0) -> Path:
    """Creativity and validity (level 0, default decoding) against measured FLOPs,
    with the OLS power-law line and its bootstrap band, both architectures."""
    data = _default_decoding(_ok_metrics(runs, metrics))
    data = data[data["level"] == 0]
    fig, axes = _axes(2)
    for ax, metric in zip(axes, ("creativity", "validity")):
        drawn = False
        for arch in ARCHS:
            sub = data[data["arch"] == arch]
            if sub.empty:
                continue
            drawn = True
            color = ARCH_COLORS[arch]
            label = f"{ARCH_NAMES[arch]} ({DEFAULT_DECODING[arch]})"
            ax.scatter(sub["flops_measured"], sub[metric], color=color, alpha=0.6, s=18)
            fit = powerlaw.fit_power_law(sub["flops_measured"], sub[metric])
            # As in fits.py: within one budget, measured-FLOP spread is shape noise.
            if np.isfinite(fit.exponent) and sub["budget"].nunique() >= 2:
                ok = powerlaw.loggable(sub["flops_measured"], sub[metric])
                grid = np.geomspace(sub["flops_measured"][ok].min(), sub["flops_measured"][ok].max(), 50)
                lo, hi = powerlaw.power_law_band(sub["flops_measured"], sub[metric], grid, n_boot, seed)
                ax.plot(grid, fit.prefactor * grid**fit.exponent, color=color, label=f"{label}: b={fit.exponent:.3f}")
                ax.fill_between(grid, lo, hi, color=color, alpha=0.2, linewidth=0)
            else:
                ax.scatter([], [], color=color, label=f"{label}: no fit")
        if not drawn:
            _no_data(ax, metric)
            continue
        ax.set_xscale("log")
        if (data[metric] > 0).all():
            ax.set_yscale("log")
        ax.set(xlabel="training FLOPs (measured)", ylabel=metric, title=f"{metric} vs compute")
        ax.legend(fontsize=8)
    return _save(fig, out_path)


def plot_isoflop(runs, metrics, out_path, metric: str = "val_loss", axis: str = "params") -> Path:
    """IsoFLOP curves: metric against the shape axis, one curve per budget, parabola
    optimum marked. val_loss comes from runs; creativity from level-0 metrics at
    the default decoding (maximised)."""
    ok = runs[runs["status"] == "ok"]
    if metric == "val_loss":
        table, maximize = ok, False
    else:
        table = _default_decoding(_ok_metrics(runs, metrics))
        table, maximize = table[table["level"] == 0], True
    palette = _budget_palette(table["budget"]) if len(table) else {}
    fig, axes = _axes(2)
    for ax, arch in zip(axes, ARCHS):
        sub = table[(table["arch"] == arch) & table[metric].notna()] if len(table) else table
        if sub.empty:
            _no_data(ax, ARCH_NAMES[arch])
            continue
        for budget, grp in sub.groupby("budget"):
            shape = isoflop.shape_values(grp, axis)
            color = palette[budget]
            ax.scatter(shape, grp[metric], color=color, s=18, label=f"{budget:.1e} FLOPs")
            opt = isoflop.fit_isoflop(shape, grp[metric], maximize)
            if opt.method == "parabola":
                u = np.log(shape[shape > 0])
                span = np.linspace(min(u.min(), opt.log_optimum), max(u.max(), opt.log_optimum), 60)
                coef = np.polyfit(np.log(shape), grp[metric], 2)
                ax.plot(np.exp(span), np.polyval(coef, span), color=color, lw=1)
                ax.scatter([opt.optimum], [opt.metric_at_optimum], color=color, marker="*", s=150,
                           edgecolor="black", zorder=3)
            elif opt.method == "best_grid_point":
                ax.scatter([opt.optimum], [opt.metric_at_optimum], color=color, marker="s", s=60,
                           facecolor="none", zorder=3)
        ax.set_xscale("log")
        ax.set(xlabel=axis, ylabel=metric, title=f"{ARCH_NAMES[arch]}: IsoFLOP ({'max' if maximize else 'min'} ★)")
        ax.legend(fontsize=7)
    return _save(fig, out_path)


def plot_pareto_fronts(runs, metrics, out_path) -> Path:
    """(novelty_valid, utility) over all decodings and levels >= 1; one front per budget."""
    points = _ok_metrics(runs, metrics)
    points = points[(points["level"] >= 1) & points["novelty_valid"].notna() & points["utility"].notna()]
    palette = _budget_palette(points["budget"])
    fig, axes = _axes(2)
    for ax, arch in zip(axes, ARCHS):
        sub = points[points["arch"] == arch]
        if sub.empty:
            _no_data(ax, ARCH_NAMES[arch])
            continue
        for budget, grp in sub.groupby("budget"):
            color = palette[budget]
            front = grp[pareto.pareto_front_mask(grp["novelty_valid"], grp["utility"])].sort_values("novelty_valid")
            hv = pareto.hypervolume_2d(grp["novelty_valid"], grp["utility"])
            ax.scatter(grp["novelty_valid"], grp["utility"], color=color, alpha=0.25, s=10)
            ax.plot(front["novelty_valid"], front["utility"], color=color, marker="o", ms=4,
                    drawstyle="steps-post", label=f"{budget:.1e} FLOPs, HV={hv:.3g}")
        ax.set(xlabel="novelty of valid outputs", ylabel="utility", title=f"{ARCH_NAMES[arch]}: Pareto fronts")
        ax.legend(fontsize=7)
    return _save(fig, out_path)


def plot_novelty_by_level(runs, metrics, out_path) -> Path:
    """Mean novelty of valid outputs against utility level (default decoding), one line per budget."""
    data = _default_decoding(_ok_metrics(runs, metrics))
    data = data[(data["level"] >= 1) & data["novelty_valid"].notna()]
    data, palette = _label_budgets(data)
    fig, axes = _axes(2)
    for ax, arch in zip(axes, ARCHS):
        sub = data[data["arch"] == arch]
        if sub.empty:
            _no_data(ax, ARCH_NAMES[arch])
            continue
        sns.lineplot(data=sub, x="level", y="novelty_valid", hue=BUDGET_LABEL, palette=palette, marker="o",
                     errorbar=("ci", 95), ax=ax)
        ax.set(xlabel="utility level", ylabel="novelty of valid outputs",
               title=f"{ARCH_NAMES[arch]} ({DEFAULT_DECODING[arch]})")
    return _save(fig, out_path)


def plot_error_shares(runs, metrics, out_path) -> Path:
    """Stacked error-type shares against budget (level 0, default decoding, mean over runs)."""
    data = _default_decoding(_ok_metrics(runs, metrics))
    data = data[data["level"] == 0]
    colors = sns.color_palette("tab10", len(ERROR_COLUMNS))
    fig, axes = _axes(2)
    for ax, arch in zip(axes, ARCHS):
        sub = data[data["arch"] == arch]
        if sub.empty:
            _no_data(ax, ARCH_NAMES[arch])
            continue
        shares = sub.groupby("budget")[ERROR_COLUMNS].mean()
        positions = np.arange(len(shares))
        bottom = np.zeros(len(shares))
        for col, color in zip(ERROR_COLUMNS, colors):
            ax.bar(positions, shares[col], bottom=bottom, color=color, label=col.removeprefix("err_"))
            bottom += shares[col].to_numpy()
        ax.set_xticks(positions, [f"{b:.1e}" for b in shares.index], rotation=30)
        ax.set(xlabel="budget (FLOPs)", ylabel="share of outputs", ylim=(0, 1.02),
               title=f"{ARCH_NAMES[arch]}: error types")
        ax.legend(fontsize=7, loc="upper right")
    return _save(fig, out_path)


def plot_thinking_curves(runs, metrics, out_path, metric: str = "creativity") -> Path:
    """EBT metric (level 0) against thinking-steps multiplier and against self-verification
    candidates M, one line per budget; Transformer++ greedy at the same budget dashed."""
    data = _ok_metrics(runs, metrics)
    data = data[data["level"] == 0]
    ebt = data[data["arch"] == "ebt"]
    tpp_greedy = data[(data["arch"] == "tpp") & (data["decoding"] == "greedy")].groupby("budget")[metric].mean()
    budget_colors = _budget_palette(ebt["budget"])
    ebt, palette = _label_budgets(ebt)
    fig, axes = _axes(2)
    panels = (("think", "steps_multiplier", "thinking steps (× training)"),
              ("verify", "num_candidates", "self-verification candidates M"))
    for ax, (family, x, xlabel) in zip(axes, panels):
        sub = ebt[(ebt["decoding_family"] == family) & ebt[x].notna()]
        if sub.empty:
            _no_data(ax, f"EBT {family}")
            continue
        sns.lineplot(data=sub, x=x, y=metric, hue=BUDGET_LABEL, palette=palette, marker="o", errorbar=("ci", 95),
                     ax=ax)
        for budget, color in budget_colors.items():
            if budget in tpp_greedy.index:
                ax.axhline(tpp_greedy[budget], color=color, ls="--", lw=1)
        ax.plot([], [], color="grey", ls="--", label="Transformer++ greedy")
        ax.set_xscale("log", base=2)
        ax.set(xlabel=xlabel, ylabel=metric, title=f"EBT {family}")
        ax.legend(fontsize=7)
    return _save(fig, out_path)


def plot_energy_descent(runs, samples, out_path) -> Path:
    """Mean EBT energy at each optimisation step (samples.energy_by_step), one line per budget."""
    ok = runs[(runs["status"] == "ok") & (runs["arch"] == "ebt")]
    sub = samples[samples["run_id"].isin(ok["run_id"])][["run_id", "energy_by_step"]].reset_index(drop=True)
    steps = sub.explode("energy_by_step") if len(sub) else sub
    fig, axes = _axes(1, width=6)
    ax = axes[0]
    if len(steps):
        steps = steps.assign(step=steps.groupby(level=0).cumcount())
        steps = steps.dropna(subset=["energy_by_step"]).astype({"energy_by_step": float})
    if steps.empty:
        _no_data(ax, "no EBT energies")
        return _save(fig, out_path)
    # Average within a run first, so runs with more samples do not dominate.
    per_run = steps.groupby(["run_id", "step"], as_index=False)["energy_by_step"].mean()
    per_run, palette = _label_budgets(per_run.merge(ok[["run_id", "budget"]], on="run_id"))
    sns.lineplot(data=per_run, x="step", y="energy_by_step", hue=BUDGET_LABEL, palette=palette, marker="o",
                 errorbar=("ci", 95), ax=ax)
    ax.set(xlabel="optimisation step", ylabel="mean energy", title="EBT energy descent")
    return _save(fig, out_path)


def plot_loss_curves(runs, curves, out_path) -> Path:
    """Training loss (lines) and validation loss (dots) against tokens, coloured by budget;
    diverged runs dashed."""
    data = curves.merge(runs[["run_id", "budget", "status"]], on="run_id", how="left")
    palette = _budget_palette(data["budget"])
    fig, axes = _axes(2)
    for ax, arch in zip(axes, ARCHS):
        sub = data[data["arch"] == arch]
        if sub.empty:
            _no_data(ax, ARCH_NAMES[arch])
            continue
        for run_id, grp in sub.groupby("run_id"):
            grp = grp.sort_values("tokens")
            color = palette.get(grp["budget"].iloc[0], "grey")
            ls = "-" if (grp["status"] == "ok").all() else "--"
            ax.plot(grp["tokens"], grp["train_loss"], color=color, ls=ls, lw=0.8, alpha=0.7)
            val = grp.dropna(subset=["val_loss"])
            ax.scatter(val["tokens"], val["val_loss"], color=color, s=8)
        for budget, color in palette.items():
            ax.plot([], [], color=color, label=f"{budget:.1e} FLOPs")
        ax.set_xscale("log")
        ax.set(xlabel="tokens", ylabel="loss", title=f"{ARCH_NAMES[arch]}: loss curves")
        ax.legend(fontsize=7)
    return _save(fig, out_path)
