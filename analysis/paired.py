"""The headline: each EBT variant against the Transformer++ at the same training budget.

For every budget both arms were trained at (same budget tag), and two decoding choices:

* default_decoding: Transformer++ greedy against EBT think_x1 (its training step count);
* matched_inference_flops: each arm's non-oracle setting with the largest mean per-sample
  inference FLOPs not above the common level L = min over the two arms of their most
  expensive setting, so neither arm spends more inference compute than the other can.
  If an arm's cheapest setting already costs more than L, that cheapest setting is used
  and the note gives the FLOP ratio. Inference FLOPs of a setting are averaged over the
  arm's runs at that budget (test split, all levels; from the samples' inference_flops, else
  the metrics table's).

An arm's value at a budget is that of its best shape by creativity (seed mean), chosen
again in every resample. The bootstrap resamples test prompts and seeds jointly, with the
same prompt ids and seed values for both arms, so the difference is paired on prompt id.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis import resample
from analysis.labels import DEFAULT_DECODING, LABEL, flops_text, is_oracle

METRICS = ("creativity", "validity", "novelty_valid")


def arm_values(stats: resample.PromptStats, draws: resample.Draws, arm_runs: pd.DataFrame,
               decoding: str) -> dict[str, np.ndarray]:
    """(resamples,) value of each metric for the arm's best shape (by creativity) per resample."""
    rows = np.array([stats.unit_index(r, decoding) for r in arm_runs["run_id"]])
    present = rows >= 0
    runs, rows = arm_runs[present], rows[present]
    if len(rows) == 0:
        return {m: np.full(len(draws.prompt), np.nan) for m in METRICS}
    cells = resample.make_cells(runs, ["depth", "width"], draws.seeds)
    per_cell = {m: resample.cell_values(stats.values(m, draws.prompt, rows=rows), cells, draws.seed)
                for m in METRICS if m in stats.sums}
    best = np.argmax(np.where(np.isfinite(per_cell["creativity"]), per_cell["creativity"], -np.inf), axis=1)
    return {m: v[np.arange(len(v)), best] for m, v in per_cell.items()}


def matched_decodings(inference_flops: pd.DataFrame) -> tuple[dict[str, str], dict[str, float], str]:
    """inference_flops: columns side ("tpp" | "ebt"), decoding, flops. Returns the chosen
    decoding per side, its FLOPs, and a note."""
    menus = {side: grp[~is_oracle(grp["decoding"])].sort_values("flops")
             for side, grp in inference_flops.groupby("side")}
    if set(menus) != {"tpp", "ebt"} or any(m.empty for m in menus.values()):
        return {}, {}, "no inference FLOPs for one of the arms"
    level = min(m["flops"].max() for m in menus.values())
    chosen, flops, notes = {}, {}, []
    for side, menu in menus.items():
        under = menu[menu["flops"] <= level * (1 + 1e-9)]
        row = under.iloc[-1] if len(under) else menu.iloc[0]
        chosen[side], flops[side] = row["decoding"], float(row["flops"])
    if max(flops.values()) > level * (1 + 1e-9):
        notes.append(f"no setting of one arm fits under {flops_text(level)} FLOPs; its cheapest is used")
    notes.append(f"inference FLOPs per sample: ebt {flops_text(flops['ebt'])}, tpp {flops_text(flops['tpp'])} "
                 f"(ratio {flops['ebt'] / flops['tpp']:.2f})")
    return chosen, flops, "; ".join(notes)


def paired_rows(runs: pd.DataFrame, inference_flops: pd.DataFrame, stats: resample.PromptStats,
                draws: resample.Draws) -> list[dict]:
    """Rows of kind paired_delta for every EBT label and shared budget (see module docstring).
    inference_flops: run_id, decoding, inference_flops (mean per sample, test split)."""
    rows = []
    tpp = runs[runs[LABEL] == "tpp"]
    for label, ebt in runs[runs["arch"] == "ebt"].groupby(LABEL, sort=True):
        shared = sorted(set(ebt["budget"]) & set(tpp["budget"]))
        ids = dict(kind="paired_delta", arch="ebt", variant=ebt["variant"].iloc[0], n=len(stats.prompt_ids))
        if not shared:
            rows.append(dict(ids, parameter="delta", metric="creativity", x="default_decoding",
                             note=f"no budget shared by {label} ({_fmt(ebt['budget'])}) and tpp ({_fmt(tpp['budget'])})"))
            continue
        for budget in shared:
            arms = {"ebt": ebt[ebt["budget"] == budget], "tpp": tpp[tpp["budget"] == budget]}
            choices = [("default_decoding", {s: DEFAULT_DECODING[s] for s in arms}, {}, "")]
            chosen, flops, note = matched_decodings(_inference_flops(inference_flops, arms))
            if chosen:
                choices.append(("matched_inference_flops", chosen, flops, note))
            for x, decodings, flop_of, note in choices:
                values = {s: arm_values(stats, draws, arms[s], decodings[s]) for s in arms}
                common = dict(ids, budget=budget, x=x, decoding=f"{decodings['ebt']} vs {decodings['tpp']}", note=note,
                              ci_method="bootstrap_percentile")
                for metric in METRICS:
                    if metric not in values["ebt"]:
                        continue
                    for parameter, v in (("delta", values["ebt"][metric] - values["tpp"][metric]),
                                         ("treatment", values["ebt"][metric]), ("baseline", values["tpp"][metric])):
                        lo, hi = resample.percentile_ci(v[1:])
                        rows.append(dict(common, metric=metric, parameter=parameter, estimate=float(v[0]),
                                         ci_low=float(lo), ci_high=float(hi), n_boot=int(np.isfinite(v[1:]).sum())))
                for side, parameter in (("ebt", "treatment_inference_flops"), ("tpp", "baseline_inference_flops")):
                    if side in flop_of:
                        rows.append(dict(common, metric="inference_flops", parameter=parameter,
                                         estimate=flop_of[side], ci_method=""))
    return rows


def _inference_flops(flops: pd.DataFrame, arms: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Mean per-sample inference FLOPs of each decoding over each arm's runs (side, decoding, flops)."""
    frames = [flops[flops["run_id"].isin(arm["run_id"])].groupby("decoding", as_index=False)["inference_flops"].mean()
              .rename(columns={"inference_flops": "flops"}).assign(side=side) for side, arm in arms.items()]
    return pd.concat(frames, ignore_index=True).dropna(subset=["flops"])


def _fmt(budgets: pd.Series) -> str:
    return ", ".join(flops_text(b) for b in sorted(set(budgets)))
