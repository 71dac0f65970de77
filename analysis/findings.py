"""The findings page: the study's answer in plain sentences, generated from fits.parquet.

`findings_html(fits, tuning)` returns a self-contained HTML page. Every number on it is a
row of fits.parquet (the tuning table, when given, is shown as it is). A difference whose
95% interval includes 0 is reported as "no detectable difference".
"""

from __future__ import annotations

import html

import numpy as np
import pandas as pd

from analysis.labels import LABEL, arch_name, fit_rows

METRIC_NAMES = {"creativity": "creativity C", "validity": "validity", "novelty_valid": "novelty of valid walks"}
STYLE = """body{font-family:sans-serif;max-width:60em;margin:1em auto;line-height:1.45;color:#222}
table{border-collapse:collapse;font-size:0.85em;margin:0.5em 0}td,th{border:1px solid #ccc;padding:2px 6px;text-align:right}
th{background:#f2f2f2}td:first-child,th:first-child{text-align:left}h2{border-bottom:1px solid #ddd;margin-top:1.4em}
.small{color:#666;font-size:0.85em}"""


def num(v: float) -> str:
    if v is None or not np.isfinite(v):
        return "n/a"
    text = f"{v:.3g}" if abs(v) >= 1e-3 or v == 0 else f"{v:.2e}"
    return text.replace("e+", "e")


def ci(row) -> str:
    """'0.12 [0.05, 0.20]' from a fits row."""
    return f"{num(row.estimate)} [{num(row.ci_low)}, {num(row.ci_high)}]"


def verdict(row, what: str, more: str = "higher", less: str = "lower", why: str | None = None) -> str:
    """A sentence fragment that says whether the interval excludes 0; `why` explains a NaN
    (default: the row's note)."""
    if not np.isfinite(row.estimate) or not (np.isfinite(row.ci_low) and np.isfinite(row.ci_high)):
        return f"{what} could not be estimated ({why or row.note or 'no interval'})"
    if row.ci_low > 0:
        return f"{what} is {more}: {ci(row)}"
    if row.ci_high < 0:
        return f"{what} is {less}: {ci(row)}"
    return f"no detectable difference in {what}: {ci(row)}, the interval includes 0"


def headline(fits: pd.DataFrame) -> list[str]:
    """Paired EBT − Transformer++ sentences per variant, shared budget and comparison."""
    rows = fit_rows(fits, kind="paired_delta")
    if rows.empty:
        return ["No paired comparison was computed (no EBT runs, or no scored samples)."]
    out = []
    for variant, grp in rows.groupby("variant", sort=True):
        label = arch_name(f"ebt-{variant}")
        deltas = grp[grp["parameter"] == "delta"]
        if deltas["estimate"].isna().all() and deltas["budget"].isna().all():
            out.append(f"{label}: {html.escape(deltas['note'].iloc[0])}. No paired comparison is possible; "
                       "the scaling laws below compare the two over their own budget ranges.")
            continue
        for (budget, x), sub in deltas.groupby(["budget", "x"], sort=True):
            how = ("at each architecture's default decoding" if x == "default_decoding"
                   else "at matched inference FLOPs")
            decoding = sub["decoding"].iloc[0]
            parts = [verdict(r, METRIC_NAMES.get(r.metric, r.metric), why="an arm has no valid walk")
                     for r in sub.itertuples()]
            values = grp[(grp["budget"] == budget) & (grp["x"] == x) & (grp["metric"] == "creativity")]
            tr = values[values["parameter"] == "treatment"]
            bl = values[values["parameter"] == "baseline"]
            level = (f" (C = {ci(tr.iloc[0])} against {ci(bl.iloc[0])})" if len(tr) and len(bl) else "")
            note = f" <span class=small>{html.escape(sub['note'].iloc[0])}</span>" if sub["note"].iloc[0] else ""
            out.append(f"At {num(budget)} training FLOPs, {how} ({html.escape(decoding)}), {label} minus "
                       f"Transformer++{level}: " + "; ".join(parts) + "." + note)
    return out


def paired_table(fits: pd.DataFrame) -> str:
    """The paired differences as one table: a row per (variant, budget, comparison)."""
    rows = fit_rows(fits, kind="paired_delta", parameter="delta").dropna(subset=["budget"])
    if rows.empty:
        return ""
    metrics = [m for m in METRIC_NAMES if m in set(rows["metric"])]
    head = "".join(f"<th>Δ {METRIC_NAMES[m]}</th>" for m in metrics)
    body = []
    for (variant, budget, x), grp in rows.groupby(["variant", "budget", "x"], sort=True):
        cells = "".join(f"<td>{ci(grp[grp['metric'] == m].iloc[0]) if (grp['metric'] == m).any() else ''}</td>"
                        for m in metrics)
        body.append(f"<tr><td>{arch_name('ebt-' + variant)}</td><td>{num(budget)}</td><td>{x.replace('_', ' ')}</td>"
                    f"<td>{html.escape(grp['decoding'].iloc[0])}</td>{cells}</tr>")
    return (f"<table><tr><th>EBT variant</th><th>budget</th><th>comparison</th><th>decodings (EBT vs TPP)</th>{head}"
            f"</tr>{''.join(body)}</table><p class=small>EBT minus Transformer++, estimate [95% paired bootstrap "
            "interval over prompts and seeds].</p>")


def frontier(fits: pd.DataFrame) -> list[str]:
    rows = fit_rows(fits, kind="pareto_hv_delta")
    if rows.empty:
        return ["No budget is shared by both arms, so no paired hypervolume difference is computed; "
                "the per-level fronts and hypervolumes are in the Pareto figure."]
    out = []
    for (variant, budget), grp in rows.groupby(["variant", "budget"], sort=True):
        parts = [verdict(r, f"level {int(r.level)} hypervolume", "larger", "smaller") for r in grp.itertuples()]
        out.append(f"{arch_name('ebt-' + variant)} against Transformer++ at {num(budget)} FLOPs, "
                   "non-oracle decodings only: "
                   + "; ".join(parts) + ".")
    return out


def scaling(fits: pd.DataFrame) -> list[str]:
    out = []
    laws = fit_rows(fits, kind="power_law", subset="frontier", x="flops_measured")
    for label, grp in laws.groupby(LABEL, sort=True):
        g = grp.set_index(["metric", "parameter"])
        bits = []
        if ("creativity", "exponent") in g.index:
            r = g.loc[("creativity", "exponent")]
            bits.append(f"creativity grows as FLOPs^b with b = {ci(r)}" + (f" ({r.note})" if r.note else ""))
        if ("validity", "logit_slope") in g.index:
            bits.append(f"the logit of validity rises by {ci(g.loc[('validity', 'logit_slope')])} per e-fold of FLOPs")
        if ("val_loss", "exponent") in g.index:
            bits.append(f"validation loss scales with exponent {ci(g.loc[('val_loss', 'exponent')])}")
        if bits:
            out.append(f"{arch_name(label)} (best shape per budget): " + "; ".join(bits) + ".")
    for r in fit_rows(fits, kind="scaling_rate", parameter="ratio").itertuples():
        out.append(f"Scaling-rate ratio of val_loss ({html.escape(r.variant)}, best runs per budget, seed bootstrap): "
                   f"{ci(r)}; {html.escape(r.note)}.")
    out += _isoflop_vertices(fits)
    return out or ["No scaling law could be fitted (fewer than two budgets with scored runs)."]


def _isoflop_vertices(fits: pd.DataFrame) -> list[str]:
    """The d/L vertex of each arm's IsoFLOP parabola, at the budget with the most runs (the
    one the grid's `isoflop` shapes train at; the largest on a tie)."""
    out = []
    vertices = fit_rows(fits, kind="isoflop_optimum", x="width_depth_ratio", parameter="optimum")
    for label, grp in vertices.groupby(LABEL, sort=True):
        budget = grp.sort_values(["n", "budget"]).iloc[-1].budget
        bits = []
        for metric in ("val_loss", "creativity"):
            rows = grp[(grp.budget == budget) & (grp.metric == metric)]
            if len(rows):
                r = rows.iloc[0]
                bits.append(f"{metric} has " + (f"an interior optimum at d/L = {ci(r)}" if r.method == "parabola"
                                                 else f"no interior optimum ({html.escape(r.method)})"))
        out.append(f"Shape: at {num(budget)} FLOPs ({grp[grp.budget == budget].n.max()} runs), "
                   f"{arch_name(label)}'s IsoFLOP "
                   + "; ".join(bits) + ".")
    return out


def tradeoff(fits: pd.DataFrame) -> list[str]:
    out = []
    base = fit_rows(fits, kind="tradeoff_slope", arch="baseline", parameter="slope")
    if len(base):
        out.append(f"Walks sampled uniformly from each prompt's feasible set already change novelty by "
                   f"{ci(base.iloc[0])} per utility level; model slopes below are net of this null.")
    else:
        out.append("No feasible-set baseline was given, so trade-off slopes are not corrected for the task.")
    rows = fit_rows(fits, kind="tradeoff_scaling")
    for label, grp in rows.groupby(LABEL, sort=True):
        g = grp.set_index("parameter")
        mean = g.loc["mean_net_slope"] if "mean_net_slope" in g.index else None
        coef = g.loc["slope_per_ln_flops"] if "slope_per_ln_flops" in g.index else None
        text = f"{arch_name(label)} ({html.escape(grp['decoding'].iloc[0])}): "
        if mean is not None:
            text += verdict(mean, "net trade-off slope", "positive (less trade-off than the null)",
                            "negative (more trade-off than the null)")
        if coef is not None:
            text += "; with scale, " + verdict(coef, "change of the net slope per e-fold of FLOPs",
                                               "positive (the trade-off closes)", "negative (it widens)")
        out.append(text + ".")
    return out


DIAGNOSTICS = [("validity", "test"), ("validity", "ood"), ("creativity", "test"), ("copy_rate", "test"),
               ("copy_share", "test"), ("combinatorial_novelty", "test"), ("uses_heldout_rate", "test"), ("revisit_rate", "test")]


def diagnostics_table(fits: pd.DataFrame) -> str:
    rows = fit_rows(fits, kind="summary")
    if rows.empty:
        return "<p>No scored samples.</p>"
    cols = [(m, s) for m, s in DIAGNOSTICS if len(rows[(rows["metric"] == m) & (rows["x"] == s)])]
    head = "".join(f"<th>{html.escape(m.replace('_', ' '))} ({s})</th>" for m, s in cols)
    body = []
    for (label, budget), grp in rows.groupby([LABEL, "budget"], sort=True):
        cells = []
        for m, s in cols:
            hit = grp[(grp["metric"] == m) & (grp["x"] == s)]
            cells.append(f"<td>{ci(hit.iloc[0]) if len(hit) else ''}</td>")
        body.append(f"<tr><td>{arch_name(label)}</td><td>{num(budget)}</td>{''.join(cells)}</tr>")
    return (f"<table><tr><th>architecture</th><th>budget</th>{head}</tr>{''.join(body)}</table>"
            "<p class=small>Default decoding; mean over the seeds of the shapes trained at every budget; "
            "95% interval over prompts. ood: prompts whose shortest solution is longer than any training walk.</p>")


def tuning_table(tuning: pd.DataFrame | None) -> str:
    if tuning is None or tuning.empty:
        return "<p>No tuning sweep table was produced.</p>"
    counts = tuning.groupby([c for c in ("arch", "variant") if c in tuning.columns]).size()
    summary = ", ".join(f"{' '.join(map(str, k)) if isinstance(k, tuple) else k}: {n} runs" for k, n in counts.items())
    return f"<p>Sweep runs per arm: {html.escape(summary)}.</p>" + tuning.to_html(index=False, float_format="%.4g")


def findings_html(fits: pd.DataFrame, tuning: pd.DataFrame | None = None) -> str:
    n_boot = int(fits["n_boot"].max()) if len(fits) else 0
    seed = int(fits["seed"].max()) if len(fits) else 0
    sections = [
        ("Does the EBT move the novelty–utility frontier?", headline(fits) + frontier(fits)),
        ("How does that scale with compute and shape?", scaling(fits)),
        ("The novelty–utility trade-off, net of the feasible-set null", tradeoff(fits)),
    ]
    body = "".join(f"<h2>{t}</h2>" + "".join(f"<p>{p}</p>" for p in ps) + (paired_table(fits) if i == 0 else "")
                   for i, (t, ps) in enumerate(sections))
    return (f"<!doctype html><html><head><meta charset=utf-8><title>Findings</title><style>{STYLE}</style></head><body>"
            f"<h1>Findings</h1><p class=small>Generated from fits.parquet. Intervals are 95% percentile bootstrap "
            f"intervals over test prompts and seeds jointly ({n_boot} resamples, seed {seed}); oracle decodings "
            f"(reward tilt) are excluded from every comparison.</p>{body}"
            f"<h2>Validity, copying, held-out compositions and revisits</h2>{diagnostics_table(fits)}"
            f"<h2>Tuning sweep</h2>{tuning_table(tuning)}</body></html>")
