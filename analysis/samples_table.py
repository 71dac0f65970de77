"""An interactive, bounded table of actual walks, for the report.

A fixed-seed sample of test prompts (PROMPTS_PER_LEVEL per utility level) and, for each
(arch, variant, budget), its most creative run at the default decoding, answered under
every decoding setting (first sample of each). The HTML is self-contained: a filter box
and click-to-sort columns, no external scripts.
"""

from __future__ import annotations

import html

import numpy as np
import pandas as pd

from analysis.labels import LABEL, default_decoding, in_distribution, with_labels

PROMPTS_PER_LEVEL = 3
COLUMNS = ["prompt_id", "level", "start", "end", "include", "exclude", LABEL, "budget", "run_id", "decoding", "walk",
           "valid", "correct", "error_type", "novelty", "novelty_lc", "utility", "creativity"]
SCRIPT = """<script>
function filt(q){q=q.toLowerCase();for(const r of document.querySelectorAll('tbody tr'))
 r.style.display=r.textContent.toLowerCase().includes(q)?'':'none';}
function srt(i){const b=document.querySelector('tbody');const rs=[...b.rows];const d=b.dataset.d=b.dataset.d==='a'?'d':'a';
 rs.sort((x,y)=>{const p=x.cells[i].textContent,q=y.cells[i].textContent,n=parseFloat(p)-parseFloat(q);
 const c=isNaN(n)?p.localeCompare(q):n;return d==='a'?c:-c});rs.forEach(r=>b.appendChild(r));}
</script>"""


def sample_rows(samples: pd.DataFrame, runs: pd.DataFrame, metrics: pd.DataFrame, seed: int = 0) -> pd.DataFrame:
    """The bounded selection described in the module docstring."""
    samples, runs = in_distribution(samples), with_labels(runs[runs["status"] == "ok"])
    if samples.empty or runs.empty:
        return pd.DataFrame(columns=COLUMNS)
    rng = np.random.default_rng(seed)
    prompts = samples.drop_duplicates("prompt_id")[["prompt_id", "level"]]
    chosen = [p for _, grp in prompts.groupby("level", sort=True)
              for p in rng.choice(grp["prompt_id"].to_numpy(), min(PROMPTS_PER_LEVEL, len(grp)), replace=False)]
    level0 = in_distribution(metrics)
    level0 = default_decoding(level0[level0["level"] == 0])
    score = level0.set_index("run_id")["creativity"]
    best = runs.assign(score=runs["run_id"].map(score).fillna(-1)).sort_values(["score", "run_id"], ascending=[False, True])
    best = best.drop_duplicates([LABEL, "budget"])[["run_id", LABEL, "budget"]]
    first = samples["sample_index"] == 0 if "sample_index" in samples.columns else True
    out = samples[first & samples["prompt_id"].isin(chosen)].merge(best, on="run_id")
    out = out.assign(walk=out["walk"].map(lambda w: " ".join(map(str, w)) if w is not None else ""),
                     include=out["include"].map(_join), exclude=out["exclude"].map(_join))
    return out[[c for c in COLUMNS if c in out.columns]].sort_values(["prompt_id", LABEL, "budget", "decoding"])


def _join(values) -> str:
    return " ".join(map(str, values)) if values is not None and len(values) else ""


def samples_html(rows: pd.DataFrame) -> str:
    head = "".join(f"<th onclick='srt({i})'>{html.escape(c)}</th>" for i, c in enumerate(rows.columns))
    body = "".join("<tr>" + "".join(f"<td>{html.escape(_fmt(v))}</td>" for v in r) + "</tr>"
                   for r in rows.itertuples(index=False))
    return ("<!doctype html><html><head><meta charset=utf-8><title>Samples</title><style>"
            "body{font-family:sans-serif;font-size:0.8em}table{border-collapse:collapse}td,th{border:1px solid #ccc;"
            "padding:1px 4px}th{cursor:pointer;background:#f2f2f2}</style>" + SCRIPT + "</head><body>"
            f"<p>{len(rows)} walks: {PROMPTS_PER_LEVEL} test prompts per level, the most creative run of each "
            "architecture and budget, every decoding (first sample). Click a header to sort.</p>"
            "<input placeholder='filter rows' oninput='filt(this.value)' size=40>"
            f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></body></html>")


def _fmt(v) -> str:
    if isinstance(v, float):
        return "" if np.isnan(v) else f"{v:.4g}"
    return str(v)
