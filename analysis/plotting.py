"""Shared pieces of the figures: colours, labels, ticks, atomic PNG writes.

Every figure groups by architecture = the (arch, variant) pair, labelled "tpp",
"ebt-system1", "ebt-system2" (labels.arch_label), each with its registry colour
(models/architectures.py, ARCH_COLORS) in
every figure; uses only non-diverged runs; draws a "no data" note instead of failing on
degenerate input; puts legends outside the data area; and writes its PNG atomically
(creativity.io.atomic_path), so a reader never sees a half-written file.
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
from matplotlib.ticker import FixedLocator, FuncFormatter, NullFormatter, NullLocator  # noqa: E402

from analysis.labels import LABEL, arch_name, flops_text, in_distribution, with_labels  # noqa: E402
from creativity.io import atomic_path  # noqa: E402
from models.architectures import ARCHITECTURES, EBT_FAMILY  # noqa: E402

# The registry's order and colours; rows of the EBT family as a whole (no variant) come last.
ARCH_ORDER = (*(a.label for a in ARCHITECTURES.values()), EBT_FAMILY)
ARCH_COLORS = {**{a.label: a.colour for a in ARCHITECTURES.values()}, EBT_FAMILY: "#d62728"}
_EXTRA_COLORS = ["#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22"]
METRIC_LABELS = {"val_loss": "validation loss (nats/token)", "creativity": "creativity C",
                 "creativity_lc": "length-controlled creativity C_lc",
                 "correct_rate": "correct rate (valid and meets I, X)",
                 "validity": "walk validity (constraints not checked)", "novelty_valid": "novelty of valid outputs",
                 "utility": "utility"}


def headline_rate(table: pd.DataFrame) -> str:
    """The rate figures lead with: correct_rate where the table has it, else walk validity."""
    return "correct_rate" if "correct_rate" in table.columns else "validity"
BUDGET_TITLE = "budget (FLOPs)"


def arch_color(label: str) -> str:
    """The architecture's colour, the same in every figure (unknown labels: a stable hash)."""
    return ARCH_COLORS.get(label) or _EXTRA_COLORS[zlib.crc32(str(label).encode()) % len(_EXTRA_COLORS)]


def arch_labels(table: pd.DataFrame) -> list[str]:
    """Labels present in table, in ARCH_ORDER then alphabetical."""
    if table.empty or LABEL not in table.columns:
        return []
    present = set(table[LABEL].dropna())
    return [lab for lab in ARCH_ORDER if lab in present] + sorted(present - set(ARCH_ORDER))


def save(fig, out_path) -> Path:
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


def no_data(ax, what: str = "") -> None:
    ax.text(0.5, 0.5, f"no data{': ' + what if what else ''}", ha="center", va="center", transform=ax.transAxes,
            color="grey")
    ax.set_xticks([])
    ax.set_yticks([])


def no_data_figure(out_path, title: str, what: str = "") -> Path:
    fig, ax = plt.subplots(figsize=(6, 3.5))
    no_data(ax, what)
    ax.set_title(title)
    return save(fig, out_path)


def ok_runs(runs: pd.DataFrame) -> pd.DataFrame:
    return with_labels(runs[runs["status"] == "ok"]) if "status" in runs.columns else with_labels(runs.iloc[:0])


def ok_metrics(runs: pd.DataFrame, metrics: pd.DataFrame) -> pd.DataFrame:
    """Test-split metrics of non-diverged runs (empty, with the columns figures use, if none)."""
    if "run_id" not in metrics.columns or "status" not in runs.columns or metrics.empty:
        cols = ["run_id", "arch", "variant", "budget", "decoding", "decoding_family", "level", "creativity",
                "validity", "novelty_valid", "utility", "flops_measured", "params", "depth", "width"]
        return with_labels(pd.DataFrame({c: pd.Series(dtype=object if c in ("run_id", "arch", "variant", "decoding",
                                                                         "decoding_family") else float) for c in cols}))
    return with_labels(in_distribution(metrics[metrics["run_id"].isin(runs.loc[runs["status"] == "ok", "run_id"])]))


def fmt_flops(value: float) -> str:
    """1e15 -> '1e15', 3e16 -> '3e16', 2.5e17 -> '2.5e17'."""
    if not np.isfinite(value) or value <= 0:
        return str(value)
    exp = int(np.floor(np.log10(value) + 1e-9))
    mant = value / 10**exp
    return f"{mant:.3g}e{exp}"


def budget_palette(budgets) -> dict:
    budgets = sorted(pd.unique(pd.Series(budgets, dtype=float).dropna()))
    colors = sns.color_palette("viridis", max(len(budgets), 1))
    return dict(zip(budgets, colors))


def label_budgets(df: pd.DataFrame) -> tuple[pd.DataFrame, dict]:
    """Add a readable budget label column for seaborn's hue, with its palette."""
    palette = budget_palette(df["budget"])
    labels = {b: fmt_flops(b) for b in palette}
    return df.assign(**{BUDGET_TITLE: df["budget"].map(labels)}), {labels[b]: c for b, c in palette.items()}


def budget_handles(palette: dict, marker: str = "o") -> list:
    return [Line2D([], [], color=c, marker=marker, ls="-", label=fmt_flops(b)) for b, c in palette.items()]


def grid(nrows: int, ncols: int, width: float = 4.6, height: float = 3.6, **kw):
    fig, axes = plt.subplots(nrows, ncols, figsize=(width * ncols, height * nrows), squeeze=False, **kw)
    return fig, axes


def title(ax, label: str, text: str) -> None:
    """Panel title in the architecture's colour."""
    ax.set_title(f"{arch_name(label)}: {text}" if text else arch_name(label), color=arch_color(label),
                 fontweight="bold", fontsize=10)


def legend_right(fig, handles, title: str | None = None) -> None:
    if handles:
        fig.legend(handles=handles, title=title, loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=8,
                   title_fontsize=8, frameon=False)


def grid_ticks(ax, values, axis: str = "x") -> None:
    """On a log axis with few distinct grid values, tick exactly those values."""
    values = np.unique(np.asarray(values, float)[np.isfinite(values) & (np.asarray(values, float) > 0)])
    if 0 < len(values) <= 8:
        target = ax.xaxis if axis == "x" else ax.yaxis
        target.set_major_locator(FixedLocator(values))
        target.set_major_formatter(FuncFormatter(lambda v, _: f"{v:.3g}"))
        target.set_minor_locator(NullLocator())


SHORT_AXIS = {"width_depth_ratio": "width/depth d/L", "depth": "depth L", "width": "width d", "params": "params N"}


def padded_range(values, pad: float = 0.25) -> tuple[float, float]:
    """Grid extent on a log axis, widened by `pad` of its log span on each side."""
    v = np.asarray(values, float)
    v = v[np.isfinite(v) & (v > 0)]
    if len(v) == 0:
        return np.nan, np.nan
    lo, hi = np.log(v.min()), np.log(v.max())
    margin = pad * (hi - lo) if hi > lo else 0.3
    return float(np.exp(lo - margin)), float(np.exp(hi + margin))




def log_axis(ax, values, axis: str = "x") -> None:
    """A log axis with legible ticks: the grid values themselves when there are few, a few
    round values when the data span less than ~1.5 decades (where decade ticks would leave
    the axis unlabelled), else one label per decade; labels get just enough digits to differ
    and minor ticks stay unlabelled, so labels never overlap."""
    values = np.asarray(values, float)
    values = np.unique(values[np.isfinite(values) & (values > 0)])
    target = ax.xaxis if axis == "x" else ax.yaxis
    (ax.set_xscale if axis == "x" else ax.set_yscale)("log")
    target.set_minor_formatter(NullFormatter())
    if len(values) == 0:
        return
    if len(values) > 6 and np.log10(values[-1] / values[0]) < 1.5:
        values = np.unique([float(f"{v:.2g}") for v in np.geomspace(values[0], values[-1], 4)])
    if len(values) <= 6:
        target.set_major_locator(FixedLocator(values))
        target.set_minor_locator(NullLocator())
        labels = tick_labels(values)
        target.set_major_formatter(FuncFormatter(lambda v, _: labels.get(v, fmt_flops(v))))
    else:
        target.set_major_formatter(FuncFormatter(lambda v, _: fmt_flops(v) if v >= 1e4 or v < 1e-2 else f"{v:.3g}"))


def tick_labels(values) -> dict:
    """value -> label with the fewest significant digits (3 to 6) that tells the values apart."""
    for digits in range(3, 7):
        labels = [flops_text(v, digits) for v in values]
        if len(set(labels)) == len(labels):
            break
    return dict(zip(values, labels))


def error_bars(rows: pd.DataFrame) -> list[np.ndarray]:
    """Lower and upper bar lengths of estimate [ci_low, ci_high]; a percentile interval can sit
    a rounding error beside its estimate, and matplotlib refuses negative lengths."""
    est = rows["estimate"].to_numpy(float)
    return [np.maximum(est - rows["ci_low"].to_numpy(float), 0), np.maximum(rows["ci_high"].to_numpy(float) - est, 0)]
