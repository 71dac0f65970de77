"""Figures of the study, one function per figure: plot_xxx(tables..., out_path) -> Path.

Every function
  * groups by architecture = the (arch, variant) pair, labelled "tpp",
    "ebt-system1", "ebt-system2" (fits.arch_label), so EBT variants are never
    pooled; each architecture has one colour (ARCH_COLORS) in every figure: the
    lines where architectures share a panel, the panel titles where each has its
    own panel (budgets are then coloured on one viridis scale, shared by panels);
  * uses only non-diverged runs (except plot_loss_curves, which shows diverged
    runs dashed, since seeing where they blew up is the point);
  * draws a "no data" note in an empty panel instead of failing on degenerate
    input, so a partial pipeline still yields a full set of figures;
  * puts legends outside the data area;
  * writes the PNG atomically (creativity.io.atomic_path: temp file beside it, then renamed),
    so a reader never sees a half-written file.
"""

from __future__ import annotations

import warnings
import zlib
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless: the pipeline runs without a display
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator  # noqa: E402

from analysis import isoflop, pareto, powerlaw  # noqa: E402
from creativity.io import atomic_path  # noqa: E402
from analysis.fits import (DEFAULT_DECODING, LABEL, METRIC_COLUMNS, _ensure_columns, isoflop_tables,  # noqa: E402
                           with_labels)  # noqa: E402

ARCH_ORDER = ("tpp", "ebt-system1", "ebt-system2", "ebt")
ARCH_NAMES = {"tpp": "Transformer++", "ebt": "EBT", "ebt-system1": "EBT System 1", "ebt-system2": "EBT System 2"}
ARCH_COLORS = {"tpp": "#1f77b4", "ebt-system1": "#ff7f0e", "ebt-system2": "#2ca02c", "ebt": "#d62728"}
_EXTRA_COLORS = ["#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22"]
ERROR_COLUMNS = ["err_parse", "err_hallucinated_node", "err_hallucinated_edge", "err_wrong_endpoints",
                 "err_include_violation", "err_exclude_violation", "err_none"]
METRIC_LABELS = {"val_loss": "validation loss (nats/token)", "creativity": "creativity",
                 "validity": "validity (share of valid outputs)", "novelty_valid": "novelty of valid outputs",
                 "utility": "utility"}
ISOFLOP_PLOT_AXES = ("width_depth_ratio", "depth", "width")
FLOPS_LABEL = "training compute C (FLOPs, measured)"
BUDGET_TITLE = "budget (FLOPs)"


# ---------------------------------------------------------------- helpers

def arch_color(label: str) -> str:
    """The architecture's colour, the same in every figure (unknown labels: a stable hash)."""
    return ARCH_COLORS.get(label) or _EXTRA_COLORS[zlib.crc32(str(label).encode()) % len(_EXTRA_COLORS)]


def arch_name(label: str) -> str:
    return ARCH_NAMES.get(label, str(label))


def _arch_labels(table: pd.DataFrame, arch: str | None = None) -> list[str]:
    """Labels present in table (optionally of one arch), in ARCH_ORDER then alphabetical."""
    if table.empty or LABEL not in table.columns:
        return []
    sub = table if arch is None else table[table["arch"] == arch]
    present = set(sub[LABEL].dropna())
    return [lab for lab in ARCH_ORDER if lab in present] + sorted(present - set(ARCH_ORDER))


def _save(fig, out_path) -> Path:
    out_path = Path(out_path)
    try:
        with warnings.catch_warnings():  # tight_layout warns on odd layouts; the figure is still saved
            warnings.simplefilter("ignore")
            fig.tight_layout()
        with atomic_path(out_path) as tmp:
            fig.savefig(tmp, dpi=120, bbox_inches="tight")
    finally:
        plt.close(fig)
    return out_path


def _no_data(ax, what: str = "") -> None:
    ax.text(0.5, 0.5, f"no data{': ' + what if what else ''}", ha="center", va="center", transform=ax.transAxes,
            color="grey")
    ax.set_xticks([])
    ax.set_yticks([])


def _no_data_figure(out_path, title: str, what: str = "") -> Path:
    fig, ax = plt.subplots(figsize=(6, 3.5))
    _no_data(ax, what)
    ax.set_title(title)
    return _save(fig, out_path)


def _ok_runs(runs: pd.DataFrame) -> pd.DataFrame:
    return with_labels(runs[runs["status"] == "ok"]) if "status" in runs.columns else with_labels(runs.iloc[:0])


def _ok_metrics(runs: pd.DataFrame, metrics: pd.DataFrame) -> pd.DataFrame:
    if "run_id" not in metrics.columns or "status" not in runs.columns:
        return with_labels(_ensure_columns(metrics.iloc[:0], METRIC_COLUMNS + ["decoding_family"] + ERROR_COLUMNS))
    return with_labels(metrics[metrics["run_id"].isin(runs.loc[runs["status"] == "ok", "run_id"])])


def _default_decoding(metrics: pd.DataFrame) -> pd.DataFrame:
    return metrics[metrics["decoding"] == metrics["arch"].map(DEFAULT_DECODING)]


def fmt_flops(value: float) -> str:
    """1e15 -> '1e15', 3e16 -> '3e16', 2.5e17 -> '2.5e17'."""
    if not np.isfinite(value) or value <= 0:
        return str(value)
    exp = int(np.floor(np.log10(value) + 1e-9))
    mant = value / 10**exp
    return f"{mant:.3g}e{exp}"


def _budget_palette(budgets) -> dict:
    budgets = sorted(pd.unique(pd.Series(budgets, dtype=float).dropna()))
    colors = sns.color_palette("viridis", max(len(budgets), 1))
    return dict(zip(budgets, colors))


def _label_budgets(df: pd.DataFrame) -> tuple[pd.DataFrame, dict]:
    """Add a readable budget label column for seaborn's hue, with its palette."""
    palette = _budget_palette(df["budget"])
    labels = {b: fmt_flops(b) for b in palette}
    return df.assign(**{BUDGET_TITLE: df["budget"].map(labels)}), {labels[b]: c for b, c in palette.items()}


def _budget_handles(palette: dict, marker: str = "o") -> list:
    return [Line2D([], [], color=c, marker=marker, ls="-", label=fmt_flops(b)) for b, c in palette.items()]


def _grid(nrows: int, ncols: int, width: float = 4.6, height: float = 3.6, **kw):
    fig, axes = plt.subplots(nrows, ncols, figsize=(width * ncols, height * nrows), squeeze=False, **kw)
    return fig, axes


def _title(ax, label: str, text: str) -> None:
    """Panel title in the architecture's colour."""
    ax.set_title(f"{arch_name(label)}: {text}" if text else arch_name(label), color=arch_color(label),
                 fontweight="bold", fontsize=10)


def _legend_right(fig, handles, title: str | None = None) -> None:
    if handles:
        fig.legend(handles=handles, title=title, loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=8,
                   title_fontsize=8, frameon=False)


def _grid_ticks(ax, values, axis: str = "x") -> None:
    """On a log axis with few distinct grid values, tick exactly those values."""
    values = np.unique(np.asarray(values, float)[np.isfinite(values) & (np.asarray(values, float) > 0)])
    if 0 < len(values) <= 8:
        target = ax.xaxis if axis == "x" else ax.yaxis
        target.set_major_locator(FixedLocator(values))
        target.set_major_formatter(FuncFormatter(lambda v, _: f"{v:.3g}"))
        target.set_minor_locator(NullLocator())


SHORT_AXIS = {"width_depth_ratio": "width/depth d/L", "depth": "depth L", "width": "width d", "params": "params N"}


def _padded_range(values, pad: float = 0.25) -> tuple[float, float]:
    """Grid extent on a log axis, widened by `pad` of its log span on each side."""
    v = np.asarray(values, float)
    v = v[np.isfinite(v) & (v > 0)]
    if len(v) == 0:
        return np.nan, np.nan
    lo, hi = np.log(v.min()), np.log(v.max())
    margin = pad * (hi - lo) if hi > lo else 0.3
    return float(np.exp(lo - margin)), float(np.exp(hi + margin))


# ---------------------------------------------------------------- figures

def plot_compute_scaling(runs, metrics, out_path, n_boot: int = 200, seed: int = 0) -> Path:
    """Creativity and validity (level 0, default decoding) against measured FLOPs,
    with the OLS power-law line and its bootstrap band, one colour per architecture."""
    data = _default_decoding(_ok_metrics(runs, metrics))
    data = data[data["level"] == 0]
    labels = _arch_labels(data)
    fig, axes = _grid(1, 2, width=5.2, height=4.0)
    for col, metric in enumerate(("creativity", "validity")):
        handles = []
        ax = axes[0, col]
        if not labels:
            _no_data(ax, metric)
            continue
        for label in labels:
            sub = data[data[LABEL] == label]
            color = arch_color(label)
            decoding = DEFAULT_DECODING.get(sub["arch"].iloc[0], "?")
            name = f"{arch_name(label)} ({decoding})"
            ax.scatter(sub["flops_measured"], sub[metric], color=color, alpha=0.6, s=18, edgecolor="none")
            fit = powerlaw.fit_power_law(sub["flops_measured"], sub[metric])
            # As in fits.py: within one budget, measured-FLOP spread is shape noise.
            if np.isfinite(fit.exponent) and sub["budget"].nunique() >= 2:
                ok = powerlaw.loggable(sub["flops_measured"], sub[metric])
                grid = np.geomspace(sub["flops_measured"][ok].min(), sub["flops_measured"][ok].max(), 50)
                lo, hi = powerlaw.power_law_band(sub["flops_measured"], sub[metric], grid, n_boot, seed)
                ax.plot(grid, fit.prefactor * grid**fit.exponent, color=color)
                ax.fill_between(grid, lo, hi, color=color, alpha=0.2, linewidth=0)
                text = f"{name}: exponent {fit.exponent:.3f}"
            else:
                text = f"{name}: no fit"
            handles.append(Line2D([], [], color=color, marker="o", label=text))
        ax.set_xscale("log")
        if (data[metric] > 0).all():
            ax.set_yscale("log")
        ax.set(xlabel=FLOPS_LABEL, ylabel=f"{METRIC_LABELS[metric]}, level 0")
        ax.set_title(f"{metric.capitalize()} vs training compute", fontsize=10)
        ax.grid(alpha=0.3, which="major")
        ax.legend(handles=handles, title="architecture (default decoding)\nline: OLS power law, band: 95% bootstrap",
                  fontsize=7, title_fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.16), frameon=False)
    return _save(fig, out_path)


def plot_isoflop(runs, metrics, out_path, metric: str = "val_loss", axes=ISOFLOP_PLOT_AXES,
                 maximize: bool | None = None, n_boot: int = 200, seed: int = 0) -> Path:
    """IsoFLOP profiles over model shape: metric against each shape axis, one curve per
    budget, rows = architectures (arch, variant), columns = shape axes.

    Each budget's parabola in ln(shape) is drawn with its vertex (★) and the vertex's
    95% bootstrap interval (horizontal bar; runs resampled, see isoflop.bootstrap_vertex);
    where no parabola is identified the best grid point is marked (□).
    metric: "val_loss" (minimised; from runs) or a level-0 metrics column at each
    architecture's default decoding, e.g. "creativity" (maximised). maximize
    overrides the direction. axes: a shape axis or a sequence of them.
    """
    axes = (axes,) if isinstance(axes, str) else tuple(axes)
    ok = _ok_runs(runs)
    ok_metrics = _ok_metrics(runs, metrics)
    level0 = ok_metrics[ok_metrics["level"] == 0] if "level" in ok_metrics.columns else ok_metrics
    if metric == "val_loss":
        table = ok
    else:
        table = isoflop_tables(ok, level0)[1][2] if len(level0) else level0
    maximize = (metric != "val_loss" and "loss" not in metric) if maximize is None else maximize
    metric_label = METRIC_LABELS.get(metric, metric) + ("" if metric == "val_loss" else ", level 0, default decoding")
    direction = "maximised" if maximize else "minimised"
    if metric in table.columns:
        table = table[table[metric].notna()]
    labels = _arch_labels(table) if metric in table.columns else []
    if not labels:
        return _no_data_figure(out_path, f"IsoFLOP profiles: {metric}", metric)
    palette = _budget_palette(table["budget"])
    fig, grid = _grid(len(labels), len(axes), width=4.3, height=3.4, sharey="row")
    for row, label in enumerate(labels):
        sub = table[table[LABEL] == label]
        for col, axis in enumerate(axes):
            ax = grid[row, col]
            shapes_all = isoflop.shape_values(sub, axis)
            lo_x, hi_x = _padded_range(shapes_all)
            for budget, grp in sub.groupby("budget"):
                shape = isoflop.shape_values(grp, axis)
                y = grp[metric].to_numpy(float)
                color = palette[budget]
                ax.scatter(shape, y, color=color, s=16, alpha=0.8, edgecolor="none")
                opt = isoflop.fit_isoflop(shape, y, maximize)
                if opt.method == "parabola":
                    coef = isoflop.parabola(shape, y)
                    u = np.log(shape[shape > 0])
                    # The curve is drawn across the grid and out to the vertex, within the panel.
                    span = np.linspace(max(min(u.min(), opt.log_optimum), np.log(lo_x)),
                                       min(max(u.max(), opt.log_optimum), np.log(hi_x)), 80)
                    ax.plot(np.exp(span), np.polyval(coef, span), color=color, lw=1.2)
                    ci = isoflop.bootstrap_vertex(shape, y, maximize, n_boot, seed)
                    if np.isfinite(ci.low):
                        ax.errorbar([opt.optimum], [opt.metric_at_optimum],
                                    xerr=[[opt.optimum - min(ci.low, opt.optimum)],
                                          [max(ci.high, opt.optimum) - opt.optimum]],
                                    fmt="none", ecolor=color, elinewidth=1.5, capsize=3, zorder=3)
                    if lo_x <= opt.optimum <= hi_x:
                        ax.scatter([opt.optimum], [opt.metric_at_optimum], color=color, marker="*", s=170,
                                   edgecolor="black", linewidth=0.7, zorder=4)
                    else:  # extrapolated far beyond the grid: an arrow at the panel edge
                        right = opt.optimum > hi_x
                        ax.scatter([hi_x if right else lo_x], [np.polyval(coef, np.log(hi_x if right else lo_x))],
                                   color=color, marker=">" if right else "<", s=90, edgecolor="black",
                                   linewidth=0.7, zorder=4, clip_on=False)
                elif opt.method in ("best_grid_point", "no_interior_optimum") and np.isfinite(opt.best_grid_point):
                    best = opt.best_grid_point
                    shape_arr = np.asarray(shape, float)
                    nearest = np.isclose(shape_arr, best, rtol=1e-9)
                    best_y = float(np.nanmean(y[nearest])) if nearest.any() else np.nan
                    ax.scatter([best], [best_y], marker="s", s=70, facecolor="none", edgecolor=color,
                               linewidth=1.5, zorder=4)
            ax.set_xscale("log")
            if np.isfinite(lo_x):
                ax.set_xlim(lo_x, hi_x)
            _grid_ticks(ax, shapes_all)
            ax.grid(alpha=0.3)
            ax.set_xlabel(isoflop.AXIS_LABELS.get(axis, axis) + " (log scale)")
            if col == 0:
                ax.set_ylabel(metric_label)
            _title(ax, label, f"vs {SHORT_AXIS.get(axis, axis)}")
    handles = _budget_handles(palette) + [
        Line2D([], [], ls="none", marker="*", ms=12, color="grey", markeredgecolor="black",
               label=f"parabola optimum ({direction})\n± 95% bootstrap CI"),
        Line2D([], [], ls="none", marker=">", ms=8, color="grey", markeredgecolor="black",
               label="optimum beyond the grid\n(extrapolated, off panel)"),
        Line2D([], [], ls="none", marker="s", ms=8, markerfacecolor="none", color="grey",
               label="best grid point\n(no interior parabola)")]
    _legend_right(fig, handles, BUDGET_TITLE)
    fig.suptitle(f"IsoFLOP profiles: {metric_label} ({direction}) against model shape", y=1.0)
    return _save(fig, out_path)


def plot_isoflop_creativity(runs, metrics, out_path, **kwargs) -> Path:
    """plot_isoflop for creativity (maximised), with the same signature as the other figures."""
    return plot_isoflop(runs, metrics, out_path, metric="creativity", **kwargs)


def plot_pareto_fronts(runs, metrics, out_path) -> Path:
    """(novelty_valid, utility) over all decodings and levels >= 1; one front per budget,
    one panel per architecture."""
    points = _ok_metrics(runs, metrics)
    if len(points):
        points = points[(points["level"] >= 1) & points["novelty_valid"].notna() & points["utility"].notna()]
    labels = _arch_labels(points)
    if not labels:
        return _no_data_figure(out_path, "Novelty–utility Pareto fronts", "no (novelty, utility) points")
    palette = _budget_palette(points["budget"])
    fig, grid = _grid(1, len(labels), sharex=True, sharey=True)
    for ax, label in zip(grid[0], labels):
        sub = points[points[LABEL] == label]
        handles = []
        for budget, grp in sub.groupby("budget"):
            color = palette[budget]
            front = grp[pareto.pareto_front_mask(grp["novelty_valid"], grp["utility"])]
            front = front.sort_values(["novelty_valid", "utility"], ascending=[True, False])
            hv = pareto.hypervolume_2d(grp["novelty_valid"], grp["utility"])
            ax.scatter(grp["novelty_valid"], grp["utility"], color=color, alpha=0.25, s=10, edgecolor="none")
            # Staircase: from each front point, utility holds until the next (higher-novelty) point.
            ax.plot(front["novelty_valid"], front["utility"], color=color, marker="o", ms=4, drawstyle="steps-pre")
            handles.append(Line2D([], [], color=color, marker="o", label=f"{fmt_flops(budget)}: HV={hv:.3g}"))
        ax.set(xlabel="novelty of valid outputs (↑)", ylabel="utility (↑)")
        ax.grid(alpha=0.3)
        _title(ax, label, "Pareto fronts")
        ax.legend(handles=handles, title=f"{BUDGET_TITLE}, hypervolume", fontsize=7, title_fontsize=7,
                  loc="upper center", bbox_to_anchor=(0.5, -0.18), ncol=2, frameon=False)
    fig.suptitle("Novelty–utility Pareto fronts over decodings and utility levels ≥ 1 (reference (0, 0))",
                 fontsize=10, y=1.02)
    return _save(fig, out_path)


def plot_novelty_by_level(runs, metrics, out_path) -> Path:
    """Mean novelty of valid outputs against utility level (default decoding), one line per budget."""
    data = _default_decoding(_ok_metrics(runs, metrics))
    if len(data):
        data = data[(data["level"] >= 1) & data["novelty_valid"].notna()]
    labels = _arch_labels(data)
    if not labels:
        return _no_data_figure(out_path, "Novelty of valid outputs by utility level", "no valid outputs")
    palette_by_budget = _budget_palette(data["budget"])
    data, palette = _label_budgets(data)
    fig, grid = _grid(1, len(labels), sharey=True)
    for ax, label in zip(grid[0], labels):
        sub = data[data[LABEL] == label]
        sns.lineplot(data=sub, x="level", y="novelty_valid", hue=BUDGET_TITLE, palette=palette, marker="o",
                     errorbar=("ci", 95), ax=ax, legend=False)
        ax.set(xlabel="utility level (constraints in the prompt)", ylabel="novelty of valid outputs")
        ax.xaxis.set_major_locator(FixedLocator(sorted(sub["level"].unique())))
        ax.grid(alpha=0.3)
        _title(ax, label, f"decoding {DEFAULT_DECODING.get(sub['arch'].iloc[0], '?')}")
    _legend_right(fig, _budget_handles(palette_by_budget), f"{BUDGET_TITLE}\nband: 95% CI over runs")
    return _save(fig, out_path)


def plot_error_shares(runs, metrics, out_path) -> Path:
    """Stacked error-type shares against budget (level 0, default decoding, mean over runs)."""
    data = _default_decoding(_ok_metrics(runs, metrics))
    data = data[data["level"] == 0] if len(data) else data
    labels = _arch_labels(data)
    if not labels:
        return _no_data_figure(out_path, "Error types of generated walks", "no outputs")
    # Not tab10: its first colours are the architectures'. "none" (no error) is light grey.
    colors = sns.color_palette("Set2", len(ERROR_COLUMNS) - 1) + ["#d9d9d9"]
    fig, grid = _grid(1, len(labels), sharey=True)
    for ax, label in zip(grid[0], labels):
        sub = data[data[LABEL] == label]
        shares = sub.groupby("budget")[ERROR_COLUMNS].mean()
        positions = np.arange(len(shares))
        bottom = np.zeros(len(shares))
        for col, color in zip(ERROR_COLUMNS, colors):
            ax.bar(positions, shares[col], bottom=bottom, color=color, width=0.7)
            bottom += shares[col].fillna(0).to_numpy()
        ax.set_xticks(positions, [fmt_flops(b) for b in shares.index])
        ax.set(xlabel=BUDGET_TITLE, ylabel="share of outputs (level 0)", ylim=(0, 1.02))
        _title(ax, label, f"error types ({DEFAULT_DECODING.get(sub['arch'].iloc[0], '?')})")
    handles = [plt.Rectangle((0, 0), 1, 1, color=c, label=col.removeprefix("err_").replace("_", " "))
               for col, c in zip(ERROR_COLUMNS, colors)][::-1]
    _legend_right(fig, handles, "error type")
    return _save(fig, out_path)


def plot_thinking_curves(runs, metrics, out_path, metric: str = "creativity") -> Path:
    """EBT metric (level 0) against thinking-steps multiplier and against self-verification
    candidates M, one line per budget, one row per EBT variant; Transformer++ greedy at the
    same budget dashed."""
    data = _ok_metrics(runs, metrics)
    data = data[data["level"] == 0] if len(data) else data
    ebt = data[data["arch"] == "ebt"] if len(data) else data
    labels = _arch_labels(ebt)
    if not labels:
        return _no_data_figure(out_path, f"EBT inference-time scaling: {metric}", "no EBT runs")
    tpp_greedy = data[(data["arch"] == "tpp") & (data["decoding"] == "greedy")].groupby("budget")[metric].mean()
    budget_colors = _budget_palette(ebt["budget"])
    ebt, palette = _label_budgets(ebt)
    panels = (("think", "steps_multiplier", "thinking steps (× training steps, log₂)"),
              ("verify", "num_candidates", "self-verification candidates M (log₂)"))
    fig, grid = _grid(len(labels), 2, sharey=True)
    for row, label in enumerate(labels):
        for ax, (family, x, xlabel) in zip(grid[row], panels):
            sub = ebt[(ebt[LABEL] == label) & (ebt["decoding_family"] == family) & ebt[x].notna()]
            if sub.empty:
                _no_data(ax, f"{arch_name(label)} {family}")
                continue
            sns.lineplot(data=sub, x=x, y=metric, hue=BUDGET_TITLE, palette=palette, marker="o",
                         errorbar=("ci", 95), ax=ax, legend=False)
            for budget, color in budget_colors.items():
                if budget in tpp_greedy.index:
                    ax.axhline(tpp_greedy[budget], color=color, ls="--", lw=1)
            ax.set_xscale("log", base=2)
            _grid_ticks(ax, sub[x])
            ax.grid(alpha=0.3)
            ax.set(xlabel=xlabel, ylabel=f"{METRIC_LABELS.get(metric, metric)}, level 0")
            _title(ax, label, "thinking longer" if family == "think" else "self-verification")
    handles = _budget_handles(budget_colors) + [Line2D([], [], color="grey", ls="--", label="Transformer++ greedy\n(same budget)")]
    _legend_right(fig, handles, BUDGET_TITLE)
    return _save(fig, out_path)


def plot_energy_descent(runs, samples, out_path) -> Path:
    """Mean EBT energy at each optimisation step (samples.energy_by_step), one line per budget,
    one panel per EBT variant."""
    ok = _ok_runs(runs)
    ok = ok[ok["arch"] == "ebt"] if len(ok) else ok
    has = len(samples) and {"run_id", "energy_by_step"} <= set(samples.columns)
    sub = samples[samples["run_id"].isin(ok["run_id"])][["run_id", "energy_by_step"]].reset_index(drop=True) \
        if has else pd.DataFrame(columns=["run_id", "energy_by_step"])
    steps = sub.explode("energy_by_step") if len(sub) else sub
    if len(steps):
        steps = steps.assign(step=steps.groupby(level=0).cumcount())
        steps = steps.dropna(subset=["energy_by_step"]).astype({"energy_by_step": float})
    if steps.empty:
        return _no_data_figure(out_path, "EBT energy descent", "no EBT energies")
    # Average within a run first, so runs with more samples do not dominate.
    per_run = steps.groupby(["run_id", "step"], as_index=False)["energy_by_step"].mean()
    per_run = per_run.merge(ok[["run_id", "budget", LABEL]], on="run_id")
    labels = _arch_labels(per_run)
    palette_by_budget = _budget_palette(per_run["budget"])
    per_run, palette = _label_budgets(per_run)
    fig, grid = _grid(1, len(labels), sharey=True)
    for ax, label in zip(grid[0], labels):
        sns.lineplot(data=per_run[per_run[LABEL] == label], x="step", y="energy_by_step", hue=BUDGET_TITLE,
                     palette=palette, marker="o", errorbar=("ci", 95), ax=ax, legend=False)
        ax.xaxis.set_major_locator(FixedLocator(sorted(per_run["step"].unique())) if per_run["step"].nunique() <= 12
                                   else ax.xaxis.get_major_locator())
        ax.set(xlabel="optimisation step (0 = initial guess)", ylabel="mean energy (per token)")
        ax.grid(alpha=0.3)
        _title(ax, label, "energy descent")
    _legend_right(fig, _budget_handles(palette_by_budget), f"{BUDGET_TITLE}\nband: 95% CI over runs")
    return _save(fig, out_path)


def plot_loss_curves(runs, curves, out_path) -> Path:
    """Training loss (lines) and validation loss (dots) against tokens, coloured by budget,
    one panel per architecture; diverged runs dashed."""
    keys = ["run_id", "arch", "variant", "budget", "status"]
    if len(curves) == 0 or "run_id" not in curves.columns or "run_id" not in runs.columns:
        return _no_data_figure(out_path, "Training curves", "no curves")
    info = with_labels(runs)[[k for k in keys if k in runs.columns] + [LABEL]]
    data = curves.drop(columns=[c for c in ("arch", "variant", "budget", "status") if c in curves.columns])
    data = data.merge(info, on="run_id", how="inner")
    labels = _arch_labels(data)
    if not labels:
        return _no_data_figure(out_path, "Training curves", "no curves")
    palette = _budget_palette(data["budget"])
    fig, grid = _grid(1, len(labels), sharey=True)
    for ax, label in zip(grid[0], labels):
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
        _title(ax, label, "loss curves")
    handles = _budget_handles(palette, marker="") + [
        Line2D([], [], color="grey", label="train loss"),
        Line2D([], [], color="grey", ls="none", marker="o", ms=4, label="validation loss"),
        Line2D([], [], color="grey", ls="--", label="diverged run")]
    _legend_right(fig, handles, BUDGET_TITLE)
    return _save(fig, out_path)
