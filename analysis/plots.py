"""Figures of the fits: every line, band, vertex and hypervolume drawn here is read from
fits.parquet; the raw tables only give the points behind them. Nothing here fits
(tests/test_analysis.py fails if this module imports a fitting module).

Each plot_xxx(fits=..., runs=..., metrics=..., out_path=...) writes one PNG and returns
the fit rows it drew (a DataFrame), so a test can check that the figure follows the table.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.lines import Line2D

from analysis.labels import (AXIS_LABELS, DEFAULT_DECODING, LABEL, LABEL_FAMILY, arch_name, default_decoding, fit_rows,
                             is_oracle, shape_values)
from analysis.plotting import (BUDGET_TITLE, METRIC_LABELS, SHORT_AXIS, arch_color, arch_labels, budget_handles,
                               budget_palette, error_bars, fmt_flops, grid, legend_right, log_axis, no_data_figure,
                               headline_rate, ok_metrics, ok_runs, padded_range, save, title)

ISOFLOP_PLOT_AXES = ("params", "width_depth_ratio")  # the axes fits.parquet has optima on
SCALING_AXES = ("flops_measured", "params", "tokens")


def _ci_text(row) -> str:
    return f"{row.estimate:.3g} [{row.ci_low:.3g}, {row.ci_high:.3g}]" if np.isfinite(row.estimate) else "n/a"


def plot_compute_scaling(fits, runs, metrics, out_path, subset: str = "frontier", **_) -> pd.DataFrame:
    """Creativity and the correct rate (default decoding, all levels pooled) against training FLOPs, parameters and
    tokens: the power-law curves and bands of fits.parquet (kind power_law_curve) over the runs."""
    points = default_decoding(ok_metrics(runs, metrics))
    points = points[points["level"] == 0].merge(ok_runs(runs)[["run_id", "tokens"]], on="run_id", how="left") \
        if "tokens" in runs.columns else points[points["level"] == 0]
    curves = fit_rows(fits, kind="power_law_curve", subset=subset)
    laws = fit_rows(fits, kind="power_law", subset=subset)
    labels = arch_labels(pd.concat([points[[LABEL]], curves[[LABEL]]]))
    if not labels:
        no_data_figure(out_path, "Creativity and validity against compute", "no runs")
        return curves.iloc[:0]
    fig, axes = grid(2, len(SCALING_AXES), width=4.4, height=3.6)
    drawn = []
    for row, metric in enumerate(("creativity", headline_rate(points))):
        for col, x in enumerate(SCALING_AXES):
            ax = axes[row, col]
            for label in labels:
                color = arch_color(label)
                pts = points[points[LABEL] == label]
                if x in pts.columns:
                    ax.scatter(pts[x], pts[metric], color=color, alpha=0.5, s=14, edgecolor="none")
                line = curves[(curves[LABEL] == label) & (curves["metric"] == metric) & (curves["x"] == x)]
                line = line.sort_values("x_value")
                if len(line):
                    ax.plot(line["x_value"], line["estimate"], color=color)
                    ax.fill_between(line["x_value"], line["ci_low"], line["ci_high"], color=color, alpha=0.2, lw=0)
                    drawn.append(line)
            used = pd.concat([points[x] if x in points.columns else pd.Series(dtype=float),
                              curves.loc[curves["x"] == x, "x_value"]])
            log_axis(ax, used)
            if metric == "creativity" and (points[metric] > 0).all() and len(points):
                log_axis(ax, pd.concat([points[metric], curves.loc[curves["metric"] == metric, "estimate"]]), "y")
            ax.set(xlabel=AXIS_LABELS.get(x, x) + " (log)", ylabel=f"{METRIC_LABELS[metric]}, all levels")
            ax.grid(alpha=0.3, which="major")
    handles = []
    for label in labels:
        law = laws[(laws[LABEL] == label) & (laws["x"] == "flops_measured")].set_index(["metric", "parameter"])
        exp = law.loc[("creativity", "exponent")] if ("creativity", "exponent") in law.index else None
        text = f"{arch_name(label)} ({DEFAULT_DECODING.get(LABEL_FAMILY.get(label), '?')})"
        if exp is not None and np.isfinite(exp.estimate):
            text += f"\nC ∝ FLOPs^{_ci_text(exp)}"
        elif exp is not None:
            text += "\nno creativity law (see fits note)"
        handles.append(Line2D([], [], color=arch_color(label), marker="o", label=text))
    legend_right(fig, handles, f"{subset} runs; band: 95% bootstrap\n(seeds × prompts)")
    fig.suptitle("Creativity (log-link GLM) and the correct rate (logistic in ln X) against the EBT paper's axes; "
                 "curves only where an exponent is estimable", y=1.01)
    save(fig, out_path)
    return pd.concat(drawn, ignore_index=True) if drawn else curves.iloc[:0]


def plot_paired_deltas(fits, out_path, **_) -> pd.DataFrame:
    """EBT minus Transformer++ (paired bootstrap) per shared budget, at default decoding and at
    matched inference FLOPs: one panel per metric, one row per (variant, budget, comparison)."""
    rows = fit_rows(fits, kind="paired_delta", parameter="delta")
    rows = rows[rows["estimate"].notna()]
    if rows.empty:
        notes = fit_rows(fits, kind="paired_delta")["note"]
        no_data_figure(out_path, "EBT − Transformer++ at the same training budget",
                       notes.iloc[0] if len(notes) else "no shared budget")
        return rows
    rows = rows.sort_values(["variant", "budget", "x"])
    keys = list(dict.fromkeys(zip(rows["variant"], rows["budget"], rows["x"])))
    metrics = [m for m in ("correct_rate", "creativity", "creativity_lc") if m in set(rows["metric"])]
    fig, axes = grid(1, len(metrics), width=4.2, height=0.5 * len(keys) + 1.6, sharey=True)
    for ax, metric in zip(axes[0], metrics):
        for i, key in enumerate(keys):
            hit = rows[(rows["metric"] == metric) & (rows["variant"] == key[0]) & (rows["budget"] == key[1])
                       & (rows["x"] == key[2])]
            if hit.empty:
                continue
            r = hit.iloc[0]
            color = arch_color(f"ebt-{key[0]}")
            ax.errorbar([r.estimate], [i], xerr=error_bars(hit.iloc[:1]), fmt="o" if key[2] == "default_decoding"
                        else "s", color=color, capsize=3)
        ax.axvline(0, color="black", lw=0.8)
        ax.set_yticks(range(len(keys)), [f"{v} @ {fmt_flops(b)}\n{x.replace('_', ' ')}" for v, b, x in keys],
                      fontsize=7)
        ax.set(xlabel=f"Δ {METRIC_LABELS.get(metric, metric)} (EBT − TPP)")
        ax.grid(alpha=0.3, axis="x")
    fig.suptitle("Paired difference at the same training budget, compute-optimal shapes\n(95%: t over seeds + "
                 "prompt bootstrap; cells with too few correct walks are not drawn)", y=1.04)
    save(fig, out_path)
    return rows


def plot_tradeoff(fits, runs, out_path, **_) -> pd.DataFrame:
    """Left: net trade-off slope (run's novelty-per-level slope minus the feasible-set null's) of
    every run at its default decoding against training FLOPs, with the regression line of
    fits.parquet (tradeoff_scaling). Right: the baseline's raw slope for reference."""
    slopes = default_decoding(fit_rows(fits, kind="tradeoff_slope", parameter="net_slope"))
    scaling = fit_rows(fits, kind="tradeoff_scaling")
    labels = arch_labels(slopes)
    if not labels:
        no_data_figure(out_path, "Novelty–utility trade-off, net of the feasible-set null", "no slopes")
        return slopes
    flops = ok_runs(runs).set_index("run_id")["flops_measured"]
    slopes = slopes.assign(flops=slopes["run_id"].map(flops))
    fig, axes = grid(1, 1, width=6.5, height=4.2)
    ax = axes[0, 0]
    drawn = [slopes]
    for label in labels:
        color = arch_color(label)
        sub = slopes[slopes[LABEL] == label]
        ax.errorbar(sub["flops"], sub["estimate"], yerr=error_bars(sub), fmt="o", color=color, alpha=0.6, ms=4,
                    capsize=2)
        coef = scaling[(scaling[LABEL] == label)].set_index("parameter")["estimate"]
        if {"slope_per_ln_flops", "intercept"} <= set(coef.index) and np.isfinite(coef["slope_per_ln_flops"]):
            xs = np.geomspace(sub["flops"].min(), sub["flops"].max(), 20)
            ax.plot(xs, coef["intercept"] + coef["slope_per_ln_flops"] * np.log(xs), color=color)
            drawn.append(scaling[scaling[LABEL] == label])
    ax.axhline(0, color="black", lw=0.8)
    log_axis(ax, slopes["flops"])
    ax.set(xlabel=AXIS_LABELS["flops_measured"] + " (log)",
           ylabel="net slope: d novelty / d level\n(run − feasible-set null)")
    ax.grid(alpha=0.3)
    handles = []
    for label in labels:
        coef = scaling[(scaling[LABEL] == label) & (scaling["parameter"] == "slope_per_ln_flops")]
        text = arch_name(label) + (f"\nchange per e-fold FLOPs {_ci_text(coef.iloc[0])}" if len(coef) else "")
        handles.append(Line2D([], [], color=arch_color(label), marker="o", label=text))
    base = fit_rows(fits, kind="tradeoff_slope", arch="baseline", parameter="slope")
    title = "feasible-set null slope " + (_ci_text(base.iloc[0]) if len(base) else "n/a")
    legend_right(fig, handles, f"default decoding; 95% bootstrap\n{title}")
    fig.suptitle("Does the trade-off close with scale? (0 = no more than the task forces)", y=1.02)
    save(fig, out_path)
    return pd.concat(drawn, ignore_index=True)


def plot_pareto_fronts(fits, runs, metrics, out_path, **_) -> pd.DataFrame:
    """Per utility level (columns) and architecture (rows): each budget's front from fits.parquet
    (pareto_front) over the (run, decoding) points; oracle settings drawn as × and excluded."""
    fronts = fit_rows(fits, kind="pareto_front")
    hv = fit_rows(fits, kind="pareto_hypervolume", parameter="hypervolume")
    points = ok_metrics(runs, metrics)
    points = points[(points["level"] >= 1) & points["novelty_valid"].notna()]
    labels = arch_labels(pd.concat([points[[LABEL]], fronts[[LABEL]]]))
    levels = sorted(set(points["level"]) | set(fronts["level"].dropna()))
    if not labels or not levels:
        no_data_figure(out_path, "Novelty–utility Pareto fronts", "no (novelty, utility) points")
        return fronts
    palette = budget_palette(pd.concat([points["budget"], fronts["budget"]]))
    seed_of = runs.set_index("run_id")["seed"].to_dict().get if "seed" in runs.columns else (lambda r: 0)
    fig, axes = grid(len(labels), len(levels), width=3.6, height=3.2, sharex="col", sharey="col")
    for i, label in enumerate(labels):
        for j, level in enumerate(levels):
            ax = axes[i, j]
            pts = points[(points[LABEL] == label) & (points["level"] == level)]
            oracle = is_oracle(pts["decoding"]) if len(pts) else np.zeros(0, bool)
            ax.scatter(pts.loc[~oracle, "novelty_valid"], pts.loc[~oracle, "utility"],
                       c=[palette.get(b, "grey") for b in pts.loc[~oracle, "budget"]], s=8, alpha=0.35)
            ax.scatter(pts.loc[oracle, "novelty_valid"], pts.loc[oracle, "utility"], marker="x", color="black", s=14,
                       alpha=0.5)
            for budget, color in palette.items():
                f = fronts[(fronts[LABEL] == label) & (fronts["level"] == level) & (fronts["budget"] == budget)]
                f = f.pivot_table(index=["run_id", "decoding"], columns="parameter", values="estimate").reset_index()
                nov = "novelty_correct" if "novelty_correct" in f.columns else "novelty_valid"
                for _, seed_front in f.groupby(f["run_id"].map(seed_of)) if len(f) else []:  # one front per seed
                    seed_front = seed_front.sort_values([nov, "utility"], ascending=[True, False])
                    ax.plot(seed_front[nov], seed_front["utility"], color=color, marker="o", ms=3,
                            drawstyle="steps-pre", alpha=0.7)
            h = hv[(hv[LABEL] == label) & (hv["level"] == level)]
            ax.text(0.02, 0.02, "\n".join(f"{fmt_flops(r.budget)}: HV {_ci_text(r)}" for r in h.itertuples()),
                    transform=ax.transAxes, fontsize=6, va="bottom")
            ax.grid(alpha=0.3)
            ax.set(xlabel="novelty of valid outputs (↑)" if i == len(labels) - 1 else "",
                   ylabel="utility (↑)" if j == 0 else "")
            title(ax, label, f"level {int(level)}")
    legend_right(fig, budget_handles(palette) + [Line2D([], [], ls="none", marker="x", color="black",
                                                         label="oracle (reward tilt),\nexcluded from fronts")],
                 f"{BUDGET_TITLE}\none front per seed\nHV: hypervolume, mean over seeds [95%]")
    save(fig, out_path)
    return fronts


def plot_isoflop(fits, runs, metrics, out_path, metric: str = "val_loss", axes=ISOFLOP_PLOT_AXES,
                 **_) -> pd.DataFrame:
    """IsoFLOP profiles over model shape: points from the runs, parabolas, vertices (★) and their
    95% bootstrap intervals from fits.parquet (isoflop_optimum); rows = architectures."""
    axes = (axes,) if isinstance(axes, str) else tuple(axes)
    ok = ok_runs(runs)
    if metric == "val_loss":
        table = ok
    else:
        table = default_decoding(ok_metrics(runs, metrics))
        table = table[table["level"] == 0]
    table = table[table[metric].notna()] if metric in table.columns else table.iloc[:0]
    rows = fit_rows(fits, kind="isoflop_optimum", metric=metric)
    labels = arch_labels(table)
    if not labels:
        no_data_figure(out_path, f"IsoFLOP profiles: {metric}", metric)
        return rows.iloc[:0]
    palette = budget_palette(table["budget"])
    fig, grid_axes = grid(len(labels), len(axes), width=4.3, height=3.4, sharey="row")
    drawn = []
    for r, label in enumerate(labels):
        sub = table[table[LABEL] == label]
        for c, axis in enumerate(axes):
            ax = grid_axes[r, c]
            lo_x, hi_x = padded_range(shape_values(sub, axis))
            for budget, grp in sub.groupby("budget"):
                color = palette[budget]
                ax.scatter(shape_values(grp, axis), grp[metric], color=color, s=16, alpha=0.8, edgecolor="none")
                fit = rows[(rows[LABEL] == label) & (rows["budget"] == budget) & (rows["x"] == axis)]
                drawn.append(fit)
                _draw_vertex(ax, fit.set_index("parameter"), color, lo_x, hi_x)
            log_axis(ax, shape_values(sub, axis))
            if np.isfinite(lo_x):
                ax.set_xlim(lo_x, hi_x)
            ax.grid(alpha=0.3)
            ax.set_xlabel(AXIS_LABELS.get(axis, axis) + " (log)")
            if c == 0:
                ax.set_ylabel(METRIC_LABELS.get(metric, metric))
            title(ax, label, f"vs {SHORT_AXIS.get(axis, axis)}")
    handles = budget_handles(palette) + [
        Line2D([], [], ls="none", marker="*", ms=12, color="grey", markeredgecolor="black",
               label="parabola optimum\n± 95% bootstrap CI"),
        Line2D([], [], ls="none", marker="s", ms=8, markerfacecolor="none", color="grey",
               label="best grid point\n(no interior parabola)")]
    legend_right(fig, handles, BUDGET_TITLE)
    fig.suptitle(f"IsoFLOP profiles: {METRIC_LABELS.get(metric, metric)} against model shape", y=1.0)
    save(fig, out_path)
    return pd.concat(drawn, ignore_index=True) if drawn else rows.iloc[:0]


def _draw_vertex(ax, fit: pd.DataFrame, color, lo_x: float, hi_x: float) -> None:
    est = fit["estimate"] if len(fit) else pd.Series(dtype=float)
    if {"c2", "c1", "c0", "optimum"} <= set(est.index) and np.isfinite(est["c2"]):
        u = np.linspace(np.log(lo_x), np.log(hi_x), 80)
        ax.plot(np.exp(u), np.polyval([est["c2"], est["c1"], est["c0"]], u), color=color, lw=1.2)
        opt, y_opt = est["optimum"], est["metric_at_optimum"]
        ci = fit.loc["optimum", ["ci_low", "ci_high"]].to_numpy(float)
        if np.isfinite(ci).all():
            ax.errorbar([opt], [y_opt], xerr=[[max(opt - ci[0], 0)], [max(ci[1] - opt, 0)]], fmt="none", ecolor=color,
                        capsize=3)
        if lo_x <= opt <= hi_x:
            ax.scatter([opt], [y_opt], color=color, marker="*", s=170, edgecolor="black", linewidth=0.7, zorder=4)
    elif "best_grid_point" in est.index and np.isfinite(est["best_grid_point"]):
        ax.scatter([est["best_grid_point"]], [est.get("metric_at_optimum", np.nan)], marker="s", s=70,
                   facecolor="none", edgecolor=color, linewidth=1.5, zorder=4)


def plot_isoflop_creativity(fits, runs, metrics, out_path, **kwargs) -> pd.DataFrame:
    """plot_isoflop for creativity at each architecture's default decoding (maximised)."""
    return plot_isoflop(fits, runs, metrics, out_path, metric="creativity", **kwargs)
