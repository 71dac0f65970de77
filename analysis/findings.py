"""The findings page: the study's answer, generated from fits.parquet.

`findings_html(fits, tuning, figures)` returns a self-contained HTML page. Its first screen
answers in a few sentences (answer_sentences): each arm's correct rate per budget with
counts, as a table (regime_table); EBT − Transformer++ in C and C_lc at equal training
compute and how that changes with compute; whether each conclusion survives length
control; the loss floor and the excess-loss exponents; what cannot be concluded and why.
Then one compact table, the figures, and the details, with every decoding name and measure
defined.

Every number is a row of fits.parquet. An interval whose ends coincide with its estimate
(one seed, an exact fit) is printed as "no interval", never as [x, x]. A difference whose
interval includes 0 is "not distinguishable from 0" in a sentence; in a detail table only
those that exclude 0 are bold, and the sentence above it counts them. Findings are stated
whatever their sign.
"""

from __future__ import annotations

import base64
import html
import re
from pathlib import Path

import numpy as np
import pandas as pd

from analysis.labels import LABEL, arch_name, fit_rows, flops_text

STYLE = """body{font-family:sans-serif;max-width:62em;margin:1em auto;line-height:1.45;color:#222}
table{border-collapse:collapse;font-size:0.85em;margin:0.5em 0}td,th{border:1px solid #ccc;padding:2px 6px;text-align:right}
th{background:#f2f2f2}td:first-child,th:first-child{text-align:left}h2{border-bottom:1px solid #ddd;margin-top:1.4em}
.small{color:#666;font-size:0.85em}.answer{background:#f7f7fb;border-left:4px solid #558;padding:0.4em 1em}
img{max-width:100%}dt{font-weight:bold}
table{display:block;overflow-x:auto;max-width:100%}.regime td,.regime th{text-align:center}"""
FIGURES = ("paired_deltas", "pareto", "thinking")  # embedded on the page; the findings rule's inputs
MEASURES = {
    "correct_rate": "correct rate", "validity": "walk validity", "creativity": "C", "creativity_lc": "C_lc",
    "novelty_valid": "novelty N of valid walks", "novelty_lc": "N_lc of valid walks",
}
DEFINITIONS = [
    ("correct", "a walk from the start to the end concept along edges of the graph, without revisits, that uses "
                "every required label (include) and no forbidden one (exclude). Correct rate: the share of "
                "answers that are correct."),
    ("walk validity", "a walk from the start to the end concept along edges, include and exclude constraints "
                      "not checked. It is not success: a walk that breaks a constraint is valid but not correct."),
    ("novelty N, creativity C", "the paper's definitions: N = hops + mean label surprisal of the walk; utility U > 0 "
                                "only for a correct walk; C = E[U·N] over all answers. N grows with walk length."),
    ("N_lc, C_lc", "length-controlled novelty: N relative to uniform feasible walks of the same prompt with the same "
                   "hop count, so walking further does not raise it; C_lc = E[U·N_lc]."),
    ("utility level", "|include| + |exclude| + 1: level 1 has no constraint, each further level one more."),
    ("compute-optimal shape", "at each budget, the arm's depth × width with the lowest validation loss (mean over "
                              "seeds); chosen without looking at the test prompts."),
    ("intervals", "95%: the mean over seeds ± t(seeds − 1) × its standard error over seeds, combined with a "
                  "bootstrap of the test prompts (the same prompts for both arms, so differences are paired). A "
                  "simulation shaped like this study checks that they cover (analysis/intervals.py)."),
    ("not comparable", "an arm with fewer than fit.min_correct correct walks in a cell is not compared there."),
    ("not estimable", "an exponent needs >= 4 budgets spanning >= 1 decade of compute; an IsoFLOP optimum over "
                      "parameters >= 5 model sizes; a d/L optimum shapes of one parameter count."),
]
DECODING_PATTERNS = [
    (r"greedy", "Transformer++: the most likely token at each step"),
    (r"temp([\d.]+)_k(\d+)", "Transformer++: {1} samples at temperature {0}"),
    (r"bestofk_ll_k(\d+)", "Transformer++: {0} samples, keeping the one the model itself finds most likely"),
    (r"tilt_beta([\d.]+)_k(\d+)", "Transformer++: {1} samples re-weighted by exp(U·N/{0}) with the scorer itself "
                                  "(an oracle: shown, never compared)"),
    (r"think_x([\d.]+)", "EBT: {0} × the training number of energy-descent (thinking) steps"),
    (r"verify_m(\d+)", "EBT: {0} candidates, keeping the one with the lowest final energy (self-verification)"),
    (r"langevin_s([\d.]+)_k(\d+)", "EBT: {1} samples with Gaussian noise of std {0} added before each descent step"),
]


def num(v: float) -> str:
    if v is None or not np.isfinite(v):
        return "n/a"
    v = 0.0 if abs(v) < 1e-12 else v  # the float residue of a difference of equal shares (k/n - k/n)
    text = f"{v:.3g}" if abs(v) >= 1e-3 or v == 0 else f"{v:.2e}"
    return text.replace("e+0", "e").replace("e+", "e").replace("e-0", "e-")


def has_interval(row) -> bool:
    return bool(np.isfinite(row.ci_low) and np.isfinite(row.ci_high) and row.ci_high > row.ci_low)


def ci(row) -> str:
    """'0.12 [0.05, 0.20]', or '0.12 (no interval)' where there is none or it has no width."""
    if not np.isfinite(row.estimate):
        return "n/a"
    return f"{num(row.estimate)} [{num(row.ci_low)}, {num(row.ci_high)}]" if has_interval(row) else \
        f"{num(row.estimate)} (no interval)"


def sign(row) -> int:
    """+1 / -1 when the interval excludes 0, 0 when it includes it, None without an interval."""
    if not np.isfinite(row.estimate) or not has_interval(row):
        return None
    return 1 if row.ci_low > 0 else -1 if row.ci_high < 0 else 0


def define_decoding(name: str) -> str:
    for pattern, text in DECODING_PATTERNS:
        m = re.fullmatch(pattern, str(name))
        if m:
            return text.format(*m.groups())
    return "defined in config.yaml's decoding section"


def _esc(text) -> str:
    return html.escape(str(text))


# ------------------------------------------------------------------ the first screen

def _summary(fits: pd.DataFrame, metric: str, parameter: str = "mean") -> pd.DataFrame:
    return fit_rows(fits, kind="summary", x="test", metric=metric, parameter=parameter)


def rates_sentence(fits: pd.DataFrame) -> str:
    """What the regime table under it holds (regime_table)."""
    if _summary(fits, "correct_rate").empty:
        return "No scored samples, so no correct rate."
    return ("Correct rate (a valid walk that meets every constraint; correct of all answers) at each arm's default "
            "decoding and compute-optimal shape, mean over seeds, by training FLOPs; under it, the rate on the "
            "unconstrained (level-1) prompts:")


def regime_table(fits: pd.DataFrame) -> str:
    """The regime, first: each arm's correct rate per budget, with counts, and on level-1 prompts."""
    rates, counts = _summary(fits, "correct_rate"), _summary(fits, "n_correct", "count")
    if rates.empty:
        return ""
    level1 = _summary(fits, "level1_correct_rate")
    budgets = sorted(rates["budget"].unique())
    rows = []
    for label, grp in rates.groupby(LABEL, sort=True):
        cells = []
        for budget in budgets:
            r, c = grp[grp["budget"] == budget], counts[(counts[LABEL] == label) & (counts["budget"] == budget)]
            one = level1[(level1[LABEL] == label) & (level1["budget"] == budget)]
            text = num(r.estimate.iloc[0]) if len(r) else ""
            text += f" ({int(c.estimate.iloc[0])} of {int(c.n.iloc[0])})" if len(c) else ""
            text += f"<br><span class=small>level 1: {num(one.estimate.iloc[0])}</span>" if len(one) else ""
            cells.append(f"<td>{text}</td>")
        rows.append(f"<tr><td>{arch_name(label)}</td>{''.join(cells)}</tr>")
    head = "".join(f"<th>{flops_text(b)}</th>" for b in budgets)
    return f"<table class=regime><tr><th>arm</th>{head}</tr>{''.join(rows)}</table>"


def _deltas(fits: pd.DataFrame, metric: str) -> pd.DataFrame:
    return fit_rows(fits, kind="paired_delta", x="default_decoding", metric=metric, parameter="delta").dropna(
        subset=["budget"])


def gap_sentences(fits: pd.DataFrame) -> list[str]:
    """ΔC and ΔC_lc per variant and budget, how they change with compute, and whether C's
    conclusion survives length control."""
    c_rows = _deltas(fits, "creativity")
    if c_rows.empty:
        notes = fit_rows(fits, kind="paired_delta")["note"]
        return [f"No paired comparison: {_esc(notes.iloc[0]) if len(notes) else 'no EBT run or no scored samples'}."]
    lc_rows = _deltas(fits, "creativity_lc")
    out = []
    for variant, grp in c_rows.groupby("variant", sort=True):
        label, grp = arch_name(f"ebt-{variant}"), grp.sort_values("budget")
        lc = lc_rows[lc_rows["variant"] == variant].set_index("budget")
        bits, survive = [], {}
        for r in grp.itertuples():
            if not np.isfinite(r.estimate):
                bits.append(f"not comparable at {flops_text(r.budget)}")
                continue
            lc_r = lc.loc[r.budget] if r.budget in lc.index else None
            lc_text = f", ΔC_lc {ci(lc_r)}" if lc_r is not None else ""
            bits.append(f"ΔC {ci(r)}{lc_text} at {flops_text(r.budget)}")
            survive.setdefault(_survives(r, lc_r), []).append(flops_text(r.budget))
        trend = ""
        change = fit_rows(fits, kind="paired_delta_change", variant=variant, x="default_decoding")
        for r in change[change["metric"].isin(["creativity", "creativity_lc"])].itertuples():
            lo_b, hi_b = _budget_range(r.note)
            way = {1: ": towards the EBT", -1: ": towards the Transformer++", 0: ", not distinguishable from 0",
                   None: ""}[sign(r)]
            trend += (f" From {lo_b} to {hi_b} FLOPs Δ{'C' if r.metric == 'creativity' else 'C_lc'} changes by "
                      f"{ci(r)}{way}.")
        control = " ".join(f"At {', '.join(b)}: {text}." for text, b in survive.items())
        out.append(f"{label} minus Transformer++ at equal training compute (default decodings): " + "; ".join(bits)
                   + "." + trend + (" " + control if control else ""))
    return out


def _budget_range(note: str) -> tuple[str, str]:
    m = re.search(r"delta at (\S+) minus delta at (\S+) FLOPs", str(note))
    return (m.group(2), m.group(1)) if m else ("the smallest", "the largest budget")


def _survives(c_row, lc_row) -> str:
    if lc_row is None:
        return "C_lc was not computed (no novelty_lc), so whether ΔC survives length control is unknown"
    s, s_lc = sign(c_row), sign(lc_row)
    if not s:
        return "ΔC is not distinguishable from 0" + ("; neither is ΔC_lc" if not s_lc else
                                                      f", but ΔC_lc is ({'+' if s_lc > 0 else '−'})")
    if s_lc == s:
        return "the sign of ΔC survives length control (ΔC_lc has the same sign)"
    return f"ΔC does not survive length control (ΔC_lc {'includes 0' if s_lc == 0 else 'has the other sign'})"


def loss_sentence(fits: pd.DataFrame) -> str:
    floors = fit_rows(fits, kind="loss_floor").set_index("scope") if len(fit_rows(fits, kind="loss_floor")) else None
    if floors is None or "validation" not in floors.index:
        return "No loss floor was computed, so no loss law is fitted (a raw-loss law would mostly measure the floor)."
    v = floors.loc["validation"]
    value = f"{num(v.estimate)} (exact)" if v.method == "exact" else ci(v)
    text = f"The task's loss floor is {value} nats per loss token on the validation sample"
    if "corpus" in floors.index:
        text += f" ({num(floors.loc['corpus'].estimate)} over the whole corpus)"
    excess = fit_rows(fits, kind="excess_loss")
    bits = []
    for label, grp in excess.groupby(LABEL, sort=True):
        grp = grp.sort_values("budget")
        bits.append(f"{arch_name(label)} {num(grp.estimate.iloc[0])} to {num(grp.estimate.iloc[-1])}")
    if bits:
        text += "; excess loss above it, smallest to largest budget: " + ", ".join(bits)
    laws = fit_rows(fits, kind="power_law", metric="excess_loss", parameter="exponent")
    if len(laws) and laws["estimate"].isna().all():
        text += f". Excess-loss exponents are {_esc(laws['note'].iloc[0])}"
    elif len(laws):
        text += ". Excess-loss exponents: " + ", ".join(f"{arch_name(r.arch_label)} {ci(r)}" for r in laws.itertuples())
        for r in fit_rows(fits, kind="scaling_rate", parameter="ratio").itertuples():
            text += f"; {arch_name('ebt-' + r.variant.split('/')[0])} / Transformer++ exponent ratio {ci(r)}"
    return text + "."


def refusal_reason(note) -> str:
    """The 'not comparable: ...' clause of a note, without the prefix; '' if there is none."""
    m = re.search(r"not comparable: ([^;]*(?:; each needs >= \d+ \(fit.min_correct\))?)", str(note))
    return m.group(1) if m else ""


def cannot_sentence(fits: pd.DataFrame) -> str:
    deltas = with_label(fits[(fits["kind"] == "paired_delta") & (fits["metric"] == "creativity")
                             & (fits["parameter"] == "delta") & (fits["x"] == "default_decoding")])
    counts = fit_rows(fits, kind="paired_delta", x="default_decoding", metric="n_correct")
    bits = []
    for label, grp in deltas[deltas["note"].map(refusal_reason).astype(bool)].groupby(LABEL, sort=True):
        cells = []
        for budget in sorted(grp["budget"]):
            c = counts[(counts[LABEL] == label) & (counts["budget"] == budget)].set_index("parameter")["estimate"]
            cells.append(f"{flops_text(budget)} ({int(c.get('treatment', 0))} vs {int(c.get('baseline', 0))})")
        bits.append(f"{arch_name(label)} − Transformer++ at {', '.join(cells)}")
    n_refused = int(fits["note"].map(refusal_reason).astype(bool).sum())
    text = "What cannot be concluded: "
    text += (f"comparisons where an arm has fewer than {_min_correct(fits)} correct walks (EBT vs Transformer++ "
             f"counts at the default decodings): " + "; ".join(bits) + f"; {n_refused} rows of fits.parquet are "
             "refused in all") if bits else "every paired cell at the default decodings was comparable"
    # Per kind, the row with the most points (e.g. the IsoFLOP budget with the most shapes).
    gate = fits[fits["note"].astype(str).str.startswith("not estimable")].sort_values("n", ascending=False,
                                                                                      kind="stable")
    gate = gate.drop_duplicates("kind").sort_index()
    for r in gate.itertuples():
        what = {"power_law": "exponents", "scaling_rate": "exponent ratios", "tradeoff_scaling": "trade-off trends",
                "isoflop_optimum": "IsoFLOP optima", "isoflop_power_law": "optimal-size laws"}.get(r.kind, r.kind)
        text += f"; {what} are not estimable ({_esc(r.note.split(';')[0].replace('not estimable: ', ''))})"
    return text + "."


def _min_correct(fits: pd.DataFrame) -> str:
    m = fits["note"].astype(str).str.extract(r"each needs >= (\d+)")[0].dropna()
    return m.iloc[0] if len(m) else "fit.min_correct"


def with_label(rows: pd.DataFrame) -> pd.DataFrame:
    return fit_rows(rows) if len(rows) else rows.assign(**{LABEL: pd.Series(dtype=object)})


def crossover_sentence(fits: pd.DataFrame) -> str:
    """Where each EBT's fitted trend would meet the Transformer++'s, in excess loss and in creativity."""
    rows = fit_rows(fits, kind="crossover")
    if rows.empty:
        return ""
    parts = []
    for variant, grp in rows.groupby("variant", sort=True):
        notes = "; ".join(_esc(r.note) for r in grp.sort_values("metric", ascending=False).itertuples())
        parts.append(f"{arch_name('ebt-' + variant)} vs Transformer++, from the fitted trends: {notes}")
    return ". ".join(parts) + "."


def answer_sentences(fits: pd.DataFrame) -> list[str]:
    sentences = [rates_sentence(fits), crossover_sentence(fits), *gap_sentences(fits), loss_sentence(fits),
                 cannot_sentence(fits)]
    return [s for s in sentences if s]


# ------------------------------------------------------------------ the compact table

TABLE_METRICS = ("correct_rate", "validity", "creativity", "creativity_lc")


def compact_table(fits: pd.DataFrame) -> str:
    rows = fit_rows(fits, kind="summary", x="test", parameter="mean")
    if rows.empty:
        return "<p>No scored samples.</p>"
    counts = _summary(fits, "n_correct", "count")
    deltas = {m: _deltas(fits, m) for m in ("creativity", "creativity_lc")}
    excess = fit_rows(fits, kind="excess_loss")
    metrics = [m for m in TABLE_METRICS if m in set(rows["metric"])]
    head = "".join(f"<th>{MEASURES[m]}</th>" for m in metrics)
    body = []
    for (label, budget), grp in rows.groupby([LABEL, "budget"], sort=True):
        c = counts[(counts[LABEL] == label) & (counts["budget"] == budget)]
        cells = [f"<td>{int(c.estimate.iloc[0])} / {int(c.n.iloc[0])}</td>" if len(c) else "<td></td>"]
        cells += [f"<td>{ci(grp[grp['metric'] == m].iloc[0]) if (grp['metric'] == m).any() else ''}</td>"
                  for m in metrics]
        for m, d in deltas.items():
            hit = d[(d[LABEL] == label) & (d["budget"] == budget)]
            cells.append(f"<td>{_delta_cell(hit.iloc[0]) if len(hit) else ''}</td>")
        e = excess[(excess[LABEL] == label) & (excess["budget"] == budget)]
        cells.append(f"<td>{ci(e.iloc[0]) if len(e) else ''}</td>")
        body.append(f"<tr><td>{arch_name(label)}</td><td>{flops_text(budget)}</td>{''.join(cells)}</tr>")
    return (f"<table><tr><th>arm</th><th>training FLOPs</th><th>correct / answers</th>{head}<th>ΔC vs TPP</th>"
            f"<th>ΔC_lc vs TPP</th><th>excess loss</th></tr>{''.join(body)}</table>"
            "<p class=small>Test prompts, default decoding (Transformer++ greedy, EBT think_x1), compute-optimal "
            "shape, mean over seeds [95% interval]. Δ: EBT minus Transformer++ at the same budget, paired.</p>")


def _delta_cell(row) -> str:
    if np.isfinite(row.estimate):
        return ci(row)
    return "not comparable" if refusal_reason(row.note) else "n/a"


# ------------------------------------------------------------------ details

def paired_table(fits: pd.DataFrame) -> str:
    """Every paired difference: a row per (variant, budget, comparison)."""
    rows = fit_rows(fits, kind="paired_delta", parameter="delta").dropna(subset=["budget"])
    if rows.empty:
        return ""
    metrics = [m for m in MEASURES if m in set(rows["metric"])]
    head = "".join(f"<th>Δ {MEASURES[m]}</th>" for m in metrics)
    body = []
    for (variant, budget, x), grp in rows.groupby(["variant", "budget", "x"], sort=True):
        cells = "".join(f"<td>{_delta_cell(grp[grp['metric'] == m].iloc[0]) if (grp['metric'] == m).any() else ''}"
                        "</td>" for m in metrics)
        body.append(f"<tr><td>{arch_name('ebt-' + variant)}</td><td>{flops_text(budget)}</td>"
                    f"<td>{x.replace('_', ' ')}</td><td>{_esc(grp['decoding'].iloc[0])}</td>{cells}"
                    f"<td class=small>{_esc(grp['note'].iloc[0])}</td></tr>")
    return (f"<table><tr><th>EBT variant</th><th>budget</th><th>comparison</th><th>decodings (EBT vs TPP)</th>{head}"
            f"<th>note</th></tr>{''.join(body)}</table>")


def _effect_cell(row) -> str:
    """A difference with its interval, bold where the interval excludes 0."""
    if refusal_reason(row.note):
        return f"<span title='{_esc(row.note)}'>not comparable</span>"
    if not np.isfinite(row.estimate):
        return "n/a"
    return f"<b>{ci(row)}</b>" if sign(row) else ci(row)


def _effect_count(rows: pd.DataFrame, what: str) -> str:
    """'Of 40 differences in <what>, 3 have a 95% interval that excludes 0 (1 up, 2 down); 2 are
    not comparable.'"""
    refused = rows["note"].map(refusal_reason).astype(bool)
    signs = [sign(r) for r in rows[~refused].itertuples() if np.isfinite(r.estimate)]
    up, down = signs.count(1), signs.count(-1)
    text = (f"Of {len(signs)} differences in {what}, {up + down} have a 95% interval that excludes 0"
            + (f" ({up} up, {down} down)" if up + down else ""))
    return text + (f"; {int(refused.sum())} are not comparable." if refused.any() else ".")


def _effect_table(rows: pd.DataFrame) -> str:
    """One row per (arm, budget), one column per value of rows["header"] (the column's HTML
    heading), in the order the rows give them."""
    columns = list(dict.fromkeys(rows["header"]))
    head = "".join(f"<th>{c}</th>" for c in columns)
    body = []
    for (label, budget), grp in rows.groupby([LABEL, "budget"], sort=True):
        cells = "".join(f"<td>{_effect_cell(grp[grp.header == c].iloc[0]) if (grp.header == c).any() else ''}</td>"
                        for c in columns)
        body.append(f"<tr><td>{arch_name(label)}</td><td>{flops_text(budget)}</td>{cells}</tr>")
    return f"<table><tr><th>arm</th><th>budget</th>{head}</tr>{''.join(body)}</table>"


def frontier(fits: pd.DataFrame) -> list[str]:
    rows = fit_rows(fits, kind="pareto_hv_delta")
    if rows.empty:
        return ["No budget is shared by both arms, so no paired hypervolume difference is computed."]
    rows = rows.sort_values("level")
    rows = rows.assign(**{LABEL: "ebt-" + rows["variant"]},
                       header="Δ hypervolume, utility level " + rows["level"].astype(int).astype(str))
    out = [_effect_count(rows, "hypervolume (EBT minus Transformer++)") + " Fronts are per seed, over shapes and "
           "non-oracle decodings; hypervolumes are averaged over seeds. Bold: the interval excludes 0.",
           _effect_table(rows)]
    hv = fit_rows(fits, kind="pareto_hypervolume", parameter="hypervolume").drop_duplicates("level")
    refs = [f"level {int(r.level)}: {m.group(1)}" for r in hv.sort_values("level").itertuples()
            if (m := re.search(r"reference (\([^)]*\))", str(r.note)))]
    if refs:
        out.append(f"<span class=small>Reference points (novelty, utility): {_esc('; '.join(refs))}. The novelty "
                   "is the least any correct walk of the level has, so the length every correct walk has is not "
                   "credited.</span>")
    return out


def tradeoff(fits: pd.DataFrame) -> list[str]:
    out = []
    base = fit_rows(fits, kind="tradeoff_slope", arch="baseline", parameter="slope")
    nets = fit_rows(fits, kind="tradeoff_slope", parameter="net_slope")
    null = "the length-matched null" if nets["note"].astype(str).str.contains("length-matched").any() else \
        "the uniform feasible-set null (walks up to the hop cap; no length-matched null was given)"
    if len(base):
        out.append(f"Walks drawn uniformly from each prompt's feasible set change novelty by {ci(base.iloc[0])} per "
                   f"utility level. Model slopes are net of {null}.")
    net = fit_rows(fits, kind="tradeoff_net")
    if len(net):
        arms = net.drop_duplicates(LABEL).sort_values(LABEL)
        decodings = ", ".join(f"{arch_name(r[LABEL])} {_esc(r['decoding'])}" for _, r in arms.iterrows())
        out += [_effect_count(net, "trade-off slope, model minus the null") + f" Decodings: {decodings}. "
                "Positive: less trade-off than the null; bold: the interval excludes 0.",
                _effect_table(net.assign(header="net trade-off slope"))]
    for label, grp in fit_rows(fits, kind="tradeoff_scaling", parameter="slope_per_ln_flops").groupby(LABEL):
        out.append(f"{arch_name(label)}: change of the net slope per e-fold of FLOPs: "
                   + (ci(grp.iloc[0]) if np.isfinite(grp.iloc[0].estimate) else _esc(grp.iloc[0].note)) + ".")
    return out


def thinking(fits: pd.DataFrame) -> list[str]:
    effects = fit_rows(fits, kind="thinking_effect")
    if effects.empty:
        return ["No EBT thinking settings were sampled."]
    order = {m: i for i, m in enumerate(MEASURES)}
    effects = effects.assign(
        header=[f"Δ {_esc(MEASURES.get(m, m))}<br><span class=small>{_esc(d)}</span>"
                for m, d in zip(effects["metric"], effects["decoding"])],
        order=effects["metric"].map(lambda m: order.get(m, len(order))),
    ).sort_values(["order", "decoding"])
    out = [_effect_count(effects, "correct rate, C and C_lc from thinking longer") + " Bold: the interval excludes 0.",
           _effect_table(effects)]
    shifts = fit_rows(fits, kind="error_shift")
    if len(shifts):
        out += [_effect_count(shifts, "each error type's share of answers") + " The change is "
                f"{_esc(shifts['decoding'].iloc[0])}.",
                _effect_table(shifts.assign(header="Δ " + shifts["metric"].map(_esc)))]
    return out


def isoflop_sentences(fits: pd.DataFrame) -> list[str]:
    """Each arm's IsoFLOP optimum over parameters and d/L, at the budget with the most runs."""
    out = []
    rows = fit_rows(fits, kind="isoflop_optimum", parameter="optimum")
    for label, grp in rows.groupby(LABEL, sort=True):
        budget = grp.sort_values(["n", "budget"]).iloc[-1].budget
        bits = []
        for r in grp[grp.budget == budget].sort_values(["metric", "x"]).itertuples():
            axis = "parameters" if r.x == "params" else "d/L" if r.x == "width_depth_ratio" else r.x
            bits.append(f"{r.metric} over {axis}: " + (f"optimum {ci(r)}" if r.method == "parabola"
                                                       else _esc(r.note or r.method)))
        out.append(f"At {flops_text(budget)} FLOPs ({grp[grp.budget == budget].n.max()} runs), {arch_name(label)}: "
                   + "; ".join(bits) + ".")
    return out


def null_table(fits: pd.DataFrame) -> str:
    rows = fit_rows(fits, kind="summary", x="test").query("parameter in ['mean', 'null', 'minus_null']")
    rows = rows[rows["metric"].isin(rows.loc[rows["parameter"] == "null", "metric"])]
    if rows.empty:
        return "<p>No length-matched null was given, so copy rate and combinatorial novelty have no reference.</p>"
    body = []
    for (label, budget, metric), grp in rows.groupby([LABEL, "budget", "metric"], sort=True):
        g = grp.set_index("parameter")
        cells = "".join(f"<td>{ci(g.loc[p]) if p in g.index else ''}</td>" for p in ("mean", "null", "minus_null"))
        note = g.loc["null"].note if "null" in g.index else ""
        body.append(f"<tr><td>{arch_name(label)}</td><td>{flops_text(budget)}</td><td>{_esc(metric)}</td>{cells}"
                    f"<td class=small>{_esc(note)}</td></tr>")
    return ("<table><tr><th>arm</th><th>budget</th><th>measure</th><th>model</th><th>length-matched null</th>"
            f"<th>model − null</th><th>note</th></tr>{''.join(body)}</table>")


DIAGNOSTICS = [("correct_rate", "test"), ("validity", "test"), ("correct_rate", "ood"), ("validity", "ood"),
               ("copy_rate", "test"), ("combinatorial_novelty", "test"), ("uses_heldout_rate", "test"),
               ("revisit_rate", "test")]


def diagnostics_table(fits: pd.DataFrame) -> str:
    rows = fit_rows(fits, kind="summary", parameter="mean")
    if rows.empty:
        return "<p>No scored samples.</p>"
    cols = [(m, s) for m, s in DIAGNOSTICS if len(rows[(rows["metric"] == m) & (rows["x"] == s)])]
    head = "".join(f"<th>{_esc(MEASURES.get(m, m.replace('_', ' ')))} ({s})</th>" for m, s in cols)
    body = []
    for (label, budget), grp in rows.groupby([LABEL, "budget"], sort=True):
        cells = []
        for m, s in cols:
            hit = grp[(grp["metric"] == m) & (grp["x"] == s)]
            cells.append(f"<td>{ci(hit.iloc[0]) if len(hit) else ''}</td>")
        body.append(f"<tr><td>{arch_name(label)}</td><td>{flops_text(budget)}</td>{''.join(cells)}</tr>")
    return (f"<table><tr><th>arm</th><th>budget</th>{head}</tr>{''.join(body)}</table>"
            "<p class=small>Default decoding, compute-optimal shape, mean over seeds [95% interval]. ood: prompts "
            "whose shortest solution is longer than any training walk.</p>")


def training_table(fits: pd.DataFrame) -> str:
    rows = fit_rows(fits, kind="training")
    if rows.empty:
        return "<p>The runs table has no epochs or train–val gap.</p>"
    body = []
    for (label, budget), grp in rows.groupby([LABEL, "budget"], sort=True):
        g = grp.set_index("metric")
        cells = "".join(f"<td>{ci(g.loc[m]) if m in g.index else ''}</td>" for m in ("epochs", "train_val_gap"))
        body.append(f"<tr><td>{arch_name(label)}</td><td>{flops_text(budget)}</td>{cells}</tr>")
    return ("<table><tr><th>arm</th><th>budget</th><th>epochs</th><th>train–val gap (nats)</th></tr>"
            f"{''.join(body)}</table>")


def definitions(fits: pd.DataFrame) -> str:
    names = sorted({d for v in fits["decoding"].astype(str) for d in v.split(" vs ") if d not in ("-", "", "nan")}
                   - {"all non-oracle"})
    terms = "".join(f"<dt>{_esc(t)}</dt><dd>{_esc(d)}</dd>" for t, d in DEFINITIONS)
    decodings = "".join(f"<dt>{_esc(n)}</dt><dd>{_esc(define_decoding(n))}</dd>" for n in names)
    return f"<dl>{terms}</dl><h3>Decoding settings</h3><dl>{decodings}</dl>"


def tuning_table(tuning: pd.DataFrame | None) -> str:
    if tuning is None or tuning.empty:
        return "<p>No tuning sweep table was produced.</p>"
    counts = tuning.groupby([c for c in ("arch", "variant") if c in tuning.columns]).size()
    summary = ", ".join(f"{' '.join(map(str, k)) if isinstance(k, tuple) else k}: {n} runs" for k, n in counts.items())
    return f"<p>Sweep runs per arm: {_esc(summary)}.</p>" + tuning.to_html(index=False, float_format="%.4g")


def figure_html(figures: dict[str, str] | None) -> str:
    """The figures, embedded so the page stands alone."""
    out = []
    for name, path in (figures or {}).items():
        if Path(path).exists():
            data = base64.b64encode(Path(path).read_bytes()).decode()
            out.append(f"<figure><img alt='{_esc(name)}' src='data:image/png;base64,{data}'>"
                       f"<figcaption class=small>{_esc(name.replace('_', ' '))}</figcaption></figure>")
    return "".join(out)


def _blocks(items: list[str]) -> str:
    """Sentences as paragraphs; tables as they are (a table cannot sit in a paragraph)."""
    return "".join(item if item.startswith("<table") else f"<p>{item}</p>" for item in items)


def findings_html(fits: pd.DataFrame, tuning: pd.DataFrame | None = None,
                  figures: dict[str, str] | None = None) -> str:
    fits = fits if len(fits) else pd.DataFrame(columns=fits.columns)
    first, *rest = answer_sentences(fits)
    answer = _blocks([item for item in (first, regime_table(fits), *rest) if item])
    sections = [
        ("EBT − Transformer++: every paired comparison", paired_table(fits)),
        ("Does the EBT move the novelty–utility frontier?", _blocks(frontier(fits))),
        ("Thinking longer and the errors it trades", _blocks(thinking(fits))),
        ("Trade-off, net of a null", _blocks(tradeoff(fits))),
        ("Copy rate and combinatorial novelty beside the length-matched null", null_table(fits)),
        ("Model shape (IsoFLOP)", "".join(f"<p>{p}</p>" for p in isoflop_sentences(fits))),
        ("Training: epochs and train–val gap", training_table(fits)),
        ("Validity, copying, held-out compositions and revisits", diagnostics_table(fits)),
        ("Definitions", definitions(fits)),
    ]
    details = "".join(f"<h2>{t}</h2>{body}" for t, body in sections)
    figs = figure_html(figures)
    return (f"<!doctype html><html><head><meta charset=utf-8><title>Findings</title><style>{STYLE}</style></head><body>"
            f"<h1>Findings</h1><div class=answer>{answer}</div><h2>Per arm and budget</h2>{compact_table(fits)}"
            + (f"<h2>Figures</h2>{figs}" if figs else "") + details
            + f"<h2>Tuning sweep</h2>{tuning_table(tuning)}</body></html>")
