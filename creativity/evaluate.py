"""From generated samples to scored samples and per-(run, decoding, level) metrics."""
from __future__ import annotations

import pandas as pd

from .scoring import Scorer, aggregate, diversity

PROMPT_COLUMNS = ["prompt_id", "split", "level", "start", "end", "include", "exclude"]
POOLED_LEVEL = 0  # the `level` value of rows pooled over all utility levels


def score_samples(samples: pd.DataFrame, prompts: pd.DataFrame, scorer: Scorer) -> pd.DataFrame:
    """Attach each sample's prompt and its scores. `samples` needs prompt_id and walk."""
    merged = samples.merge(prompts[PROMPT_COLUMNS], on="prompt_id", how="left", validate="many_to_one")
    if merged["level"].isna().any():
        raise ValueError("samples refer to prompt ids that are not in the prompts table")
    scored = scorer.score_table(merged)
    return pd.concat([merged.reset_index(drop=True), scored], axis=1)


def metrics_table(scored: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Metrics per (keys, split, level), plus rows with level 0 pooling every level of a split.

    The test and ood splits are never pooled: ood prompts need walks longer than any
    demonstration, a different question. Diversity is computed per prompt over its k
    samples, then averaged.
    """
    keys = [*keys, "split"]
    per_prompt = diversity(scored, [*keys, "level", "prompt_id"])
    frames = []
    for level_keys, data, div in (
        ([*keys, "level"], scored, per_prompt),
        (keys, scored, per_prompt),
    ):
        agg = aggregate(data, level_keys)
        div_mean = div.groupby(level_keys, sort=True)[["diversity_jaccard", "diversity_edit"]].mean().reset_index()
        agg = agg.merge(div_mean, on=level_keys, how="left") if len(div_mean) else agg.assign(
            diversity_jaccard=float("nan"), diversity_edit=float("nan")
        )
        if "level" not in level_keys:
            agg.insert(len(keys), "level", POOLED_LEVEL)
        frames.append(agg)
    return pd.concat(frames, ignore_index=True).sort_values([*keys, "level"], ignore_index=True)
