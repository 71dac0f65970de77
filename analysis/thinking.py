"""Does thinking longer help the EBT, and which errors does it trade?

Per EBT (arch, variant) and budget, on the budget's compute-optimal shape (paired.py):

* thinking_effect: think_xK minus think_x1 (K optimisation steps times the training
  count, against the training count) in correct rate, creativity C and C_lc. The same
  runs answer both, so the difference is paired on seed and prompt; refused ("not
  comparable") where either setting has fewer than min_correct correct walks.
* error_share: each error type's share of all answers at think_x1 and at the longest
  think_xK, and error_shift: their difference (longest − x1). An error type is the first
  check a walk fails (parse, unknown node, missing edge, revisit, wrong ends, include,
  exclude). Shares of failures need no correct walk, so they are never refused.

Intervals: analysis/intervals.py (t over seeds plus the prompt bootstrap).
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from analysis import intervals, resample
from analysis.labels import LABEL
from analysis.paired import compute_optimal_runs, refusal
from models.architectures import EBT_FAMILY

THINK = re.compile(r"^think_x(\d+)$")
METRICS = ("correct_rate", "creativity", "creativity_lc")


def think_settings(decodings) -> list[tuple[int, str]]:
    """(multiplier, name) of the think_xK settings, by multiplier."""
    found = [(int(m.group(1)), d) for d in set(decodings) if (m := THINK.match(str(d)))]
    return sorted(found)


def thinking_rows(runs: pd.DataFrame, stats: resample.PromptStats, draws: resample.Draws,
                  min_correct: int) -> list[dict]:
    rows = []
    settings = think_settings(stats.units["decoding"])
    if len(settings) < 2:
        return rows
    (_, base), longest = settings[0], settings[-1][1]
    errors = [s for s in stats.sums if s.startswith(resample.ERROR_PREFIX)]
    for (label, budget), grp in runs[runs["arch"] == EBT_FAMILY].groupby([LABEL, "budget"], sort=True):
        best = compute_optimal_runs(grp)
        ids = dict(arch=grp["arch"].iloc[0], variant=grp["variant"].iloc[0], budget=float(budget), n_boot=draws.n_boot)

        def per_seed(decoding, metric):
            return resample.seed_matrix(stats, best, decoding, metric, draws.prompt, draws.seeds)

        n_base = resample.n_correct(stats, best["run_id"], base)
        for _, longer in settings[1:]:
            n_long = resample.n_correct(stats, best["run_id"], longer)
            refused = refusal({"long": n_long, "base": n_base}, {"long": longer, "base": base}, min_correct)
            for metric in [m for m in METRICS if m in stats.sums]:
                iv = intervals.paired_interval(per_seed(longer, metric), per_seed(base, metric),
                                               intervals.bounds(metric, difference=True))
                fields = iv.fields() | {"note": "; ".join(p for p in (refused, iv.note) if p)}
                if refused:
                    fields |= dict(estimate=np.nan, ci_low=np.nan, ci_high=np.nan, ci_method="")
                rows.append(dict(ids, kind="thinking_effect", decoding=f"{longer} vs {base}", metric=metric,
                                 x="thinking", parameter="delta", n=n_long, n_seeds=iv.n_seeds, **fields))
        for error in errors:
            name = error[len(resample.ERROR_PREFIX):]
            for decoding in (base, longest):
                iv = intervals.seed_interval(per_seed(decoding, error), intervals.bounds(error))
                rows.append(dict(ids, kind="error_share", decoding=decoding, metric=name, x="thinking",
                                 parameter="share", n_seeds=iv.n_seeds, **iv.fields()))
            iv = intervals.paired_interval(per_seed(longest, error), per_seed(base, error),
                                           intervals.bounds(error, difference=True))
            rows.append(dict(ids, kind="error_shift", decoding=f"{longest} vs {base}", metric=name, x="thinking",
                             parameter="delta", n_seeds=iv.n_seeds, **iv.fields()))
    return rows

