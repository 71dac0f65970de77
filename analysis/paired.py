"""The headline: each EBT variant against the Transformer++ at the same training budget.

For every budget both arms were trained at, each arm is its compute-optimal shape there:
the (depth, width) with the lowest seed-mean validation loss. The choice never looks at
the test prompts, so the intervals need no correction for picking a winner. Two decoding
choices are compared:

* default_decoding: Transformer++ greedy against EBT think_x1 (its training step count);
* matched_inference_flops: a common cap L on inference FLOPs per answer, the smaller of the
  two arms' most expensive non-oracle settings, raised where needed to the more expensive
  arm's cheapest setting so that both arms have one. Each arm then uses its best setting
  by creativity (seed mean) among the non-oracle settings whose FLOPs per answer, measured
  on every compared run itself, are <= L (not its most expensive one, and not FLOPs
  averaged over shapes). Were an arm left without such a setting, it is not comparable
  at matched FLOPs, and the row says so.

How the gap changes with compute: a paired_delta_change row per (variant, comparison,
metric) holds Δ at the largest comparable budget minus Δ at the smallest, per seed (the
same seed value at both budgets), with the seed-level interval.

A comparison is refused (estimate NaN, note "not comparable: ...") where either arm has
fewer than `min_correct` correct walks over its compared runs: a rate or a novelty of a
handful of walks says nothing about the architecture. Intervals: analysis/intervals.py
(per-seed values, seeds paired by seed value, prompts resampled jointly for both arms).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis import intervals, resample
from analysis.labels import DEFAULT_DECODING, LABEL, arch_name, flops_text, is_oracle
from models.architectures import EBT_FAMILY, TPP, TPP_FAMILY

METRICS = ("correct_rate", "creativity", "creativity_lc", "validity", "novelty_valid", "novelty_lc")
NOT_COMPARABLE = "not comparable"


def compute_optimal_runs(arm_runs: pd.DataFrame) -> pd.DataFrame:
    """The runs (one per seed) of the shape with the lowest seed-mean val_loss; all runs
    when no loss is known."""
    loss = arm_runs.groupby(["depth", "width"])["val_loss"].mean().dropna()
    if loss.empty:
        return arm_runs
    depth, width = loss.idxmin()
    return arm_runs[(arm_runs["depth"] == depth) & (arm_runs["width"] == width)]


def refusal(counts: dict[str, int], names: dict[str, str], min_correct: int) -> str:
    """'' when both arms have >= min_correct correct walks, else the note saying which do not."""
    if min(counts.values()) >= min_correct:
        return ""
    listed = ", ".join(f"{names[s]} {counts[s]}" for s in counts)
    return f"{NOT_COMPARABLE}: {listed} correct walks; each needs >= {min_correct} (fit.min_correct)"


def matched_decodings(menus: pd.DataFrame, scores: pd.DataFrame) -> tuple[dict[str, str], dict[str, float], str]:
    """menus: side (the family: TPP_FAMILY | EBT_FAMILY), run_id, decoding, flops (per sample, measured on that run);
    scores: side, decoding, score (seed-mean creativity). Returns the chosen decoding per
    side, its FLOPs (the most any compared run spent on it), and a note; no choice for a
    side without a setting that fits under the level on every run."""
    menus = menus[~is_oracle(menus["decoding"])].dropna(subset=["flops"])
    if set(menus["side"]) != {TPP_FAMILY, EBT_FAMILY}:
        return {}, {}, "no inference FLOPs for one of the arms"
    per_run = menus.groupby(["side", "run_id"])["flops"]
    cheapest = per_run.min().groupby("side").max()  # what every run of a side can get down to
    dearest = per_run.max().groupby("side").min()  # what every run of a side can reach
    level = float(max(dearest.min(), cheapest.max()))
    worst = menus.groupby(["side", "decoding"])["flops"].max().rename("flops").reset_index()
    eligible = worst[worst["flops"] <= level * (1 + 1e-9)].merge(scores, on=["side", "decoding"])
    chosen, flops = {}, {}
    for side, grp in eligible.groupby("side"):
        best = grp.sort_values(["score", "flops"], ascending=[False, True]).iloc[0]
        chosen[side], flops[side] = best["decoding"], float(best["flops"])
    note = f"level {flops_text(level)} inference FLOPs per sample"
    missing = sorted({TPP_FAMILY, EBT_FAMILY} - set(chosen))
    if missing:
        return {}, {}, f"{NOT_COMPARABLE}: no non-oracle setting of {', '.join(missing)} stays under the {note}"
    return chosen, flops, (f"{note}; chosen: {EBT_FAMILY} {chosen[EBT_FAMILY]} ({flops_text(flops[EBT_FAMILY])}), "
                           f"{TPP_FAMILY} {chosen[TPP_FAMILY]} ({flops_text(flops[TPP_FAMILY])}), "
                           f"ratio {flops[EBT_FAMILY] / flops[TPP_FAMILY]:.2f}")


def paired_rows(runs: pd.DataFrame, inference_flops: pd.DataFrame, stats: resample.PromptStats,
                draws: resample.Draws, min_correct: int) -> list[dict]:
    """Rows of kind paired_delta for every EBT label and shared budget (see module docstring).
    inference_flops: run_id, decoding, inference_flops (mean per sample on that run, test split)."""
    rows = []
    tpp = runs[runs[LABEL] == TPP.label]
    for label, ebt in runs[runs["arch"] == EBT_FAMILY].groupby(LABEL, sort=True):
        shared = sorted(set(ebt["budget"]) & set(tpp["budget"]))
        ids = dict(kind="paired_delta", arch=EBT_FAMILY, variant=ebt["variant"].iloc[0])
        if not shared:
            rows.append(dict(ids, parameter="delta", metric="creativity", x="default_decoding",
                             note=f"no budget shared by {label} ({_fmt(ebt['budget'])}) and {TPP.label} "
                                  f"({_fmt(tpp['budget'])})"))
            continue
        names = {EBT_FAMILY: arch_name(label), TPP_FAMILY: TPP.display}
        per_budget: dict[tuple[str, str], dict[float, np.ndarray]] = {}
        for budget in shared:
            arms = {EBT_FAMILY: compute_optimal_runs(ebt[ebt["budget"] == budget]),
                    TPP_FAMILY: compute_optimal_runs(tpp[tpp["budget"] == budget])}
            shapes = "; ".join(f"{s} {int(a['depth'].iloc[0])}x{int(a['width'].iloc[0])}" for s, a in arms.items())
            choices = [("default_decoding", {s: DEFAULT_DECODING[s] for s in arms}, {}, "")]
            chosen, flops, note = matched_decodings(_menus(inference_flops, arms), _scores(stats, draws, arms))
            if chosen or note.startswith(NOT_COMPARABLE):
                choices.append(("matched_inference_flops", chosen, flops, note))
            for x, decodings, flop_of, note in choices:
                common = dict(ids, budget=float(budget), x=x, n=len(stats.prompt_ids),
                              decoding=f"{decodings[EBT_FAMILY]} vs {decodings[TPP_FAMILY]}" if decodings else "")
                rows += _comparison_rows(common, arms, decodings, flop_of, note, names, shapes, stats, draws,
                                         min_correct, per_budget)
        rows += _change_rows(ids, per_budget)
    return rows


def _change_rows(ids: dict, per_budget: dict) -> list[dict]:
    """Δ at the largest comparable budget minus Δ at the smallest, per (comparison, metric)."""
    rows = []
    for (x, metric), by_budget in sorted(per_budget.items()):
        if len(by_budget) < 2:
            continue
        lo, hi = min(by_budget), max(by_budget)
        iv = intervals.seed_interval(by_budget[hi] - by_budget[lo])
        rows.append(dict(ids, kind="paired_delta_change", x=x, metric=metric, parameter="change", n=len(by_budget),
                         n_seeds=iv.n_seeds, **iv.fields())
                    | {"note": "; ".join(p for p in (iv.note, f"delta at {flops_text(hi)} minus delta at "
                                                               f"{flops_text(lo)} FLOPs") if p)})
    return rows


def _comparison_rows(common, arms, decodings, flop_of, note, names, shapes, stats, draws, min_correct,
                     per_budget) -> list[dict]:
    """The rows of one (budget, comparison); per_budget collects each comparable Δ's per-seed values."""
    if not decodings:  # matched FLOPs refused: no setting fits
        return [dict(common, metric=m, parameter="delta", note=note) for m in METRICS if m in stats.sums]
    counts = {s: resample.n_correct(stats, arms[s]["run_id"], decodings[s]) for s in arms}
    refused = refusal(counts, names, min_correct)
    note = "; ".join(p for p in (refused, note, f"compute-optimal shapes {shapes}") if p)
    rows = [dict(common, metric="n_correct", parameter=p, estimate=float(counts[s]), note=note)
            for s, p in ((EBT_FAMILY, "treatment"), (TPP_FAMILY, "baseline"))]
    for metric in [m for m in METRICS if m in stats.sums]:
        per_seed = {s: resample.seed_matrix(stats, arms[s], decodings[s], metric, draws.prompt, draws.seeds)
                    for s in arms}
        limits = intervals.bounds(metric)
        for parameter, iv in (("treatment", intervals.seed_interval(per_seed[EBT_FAMILY], limits)),
                              ("baseline", intervals.seed_interval(per_seed[TPP_FAMILY], limits))):
            rows.append(dict(common, metric=metric, parameter=parameter, n_boot=draws.n_boot, **iv.fields(),
                             n_seeds=iv.n_seeds) | {"note": "; ".join(p for p in (iv.note, note) if p)})
        treatment, baseline = per_seed[EBT_FAMILY], per_seed[TPP_FAMILY]
        delta = intervals.paired_interval(treatment, baseline, intervals.bounds(metric, difference=True))
        fields = delta.fields() | {"note": "; ".join(p for p in (note, delta.note) if p)}
        if refused:
            fields |= dict(estimate=np.nan, ci_low=np.nan, ci_high=np.nan, ci_method="")
        else:
            per_budget.setdefault((common["x"], metric), {})[common["budget"]] = treatment - baseline
        rows.append(dict(common, metric=metric, parameter="delta", n_boot=draws.n_boot, n_seeds=delta.n_seeds,
                         **fields))
    for side, parameter in ((EBT_FAMILY, "treatment_inference_flops"), (TPP_FAMILY, "baseline_inference_flops")):
        if side in flop_of:
            rows.append(dict(common, metric="inference_flops", parameter=parameter, estimate=flop_of[side]))
    return rows


def _menus(flops: pd.DataFrame, arms: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """side, run_id, decoding, flops: each compared run's own measured inference FLOPs per sample."""
    frames = [flops[flops["run_id"].isin(arm["run_id"])].rename(columns={"inference_flops": "flops"}).assign(side=side)
              for side, arm in arms.items()]
    return pd.concat(frames, ignore_index=True)[["side", "run_id", "decoding", "flops"]]


def _scores(stats: resample.PromptStats, draws: resample.Draws, arms: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """side, decoding, score: seed-mean creativity of each setting on the observed prompts."""
    rows = []
    for side, arm in arms.items():
        decodings = stats.units.loc[stats.units["run_id"].isin(arm["run_id"]), "decoding"].unique()
        for decoding in decodings:
            v = resample.seed_matrix(stats, arm, decoding, "creativity", draws.prompt[:1], draws.seeds)[0]
            score = float(np.nanmean(v)) if np.isfinite(v).any() else -np.inf
            rows.append(dict(side=side, decoding=decoding, score=score))
    return pd.DataFrame(rows, columns=["side", "decoding", "score"])


def _fmt(budgets: pd.Series) -> str:
    return ", ".join(flops_text(b) for b in sorted(set(budgets)))
