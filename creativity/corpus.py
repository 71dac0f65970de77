"""The training corpus: the graph's edges plus demonstrations.

- edges: `BOS u l v EOS` for every edge in both directions, so the graph is
  stored in the weights; the loss covers l, v and EOS.
- demonstrations: a training prompt followed by its base walk; the loss covers
  the completion only.

`target_start` is the index of the first token string the loss is taken on;
`encode_corpus` turns it into an index of token ids (a node may take several).

The rows come in stratum order: edge lines, then demonstrations level by level.
`validation_sample` draws the validation rows every run shares from each stratum.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from .tokenizer import Tokenizer, prompt_tokens


def build_corpus(edges: pd.DataFrame, prompts: pd.DataFrame, edge_copies: int) -> pd.DataFrame:
    rows = []
    for _ in range(edge_copies):
        for u, v, label in edges[["u", "v", "label"]].itertuples(index=False):
            rows.append({"kind": "edge", "prompt_id": -1, "tokens": ["BOS", u, label, v, "EOS"], "target_start": 2})
            rows.append({"kind": "edge", "prompt_id": -1, "tokens": ["BOS", v, label, u, "EOS"], "target_start": 2})
    for row in prompts[prompts["split"] == "train"].itertuples(index=False):
        prompt = prompt_tokens(row.start, row.end, row.include, row.exclude)
        rows.append(
            {
                "kind": "demonstration",
                "prompt_id": int(row.prompt_id),
                "tokens": prompt + list(row.base_walk) + ["EOS"],
                "target_start": len(prompt),
            }
        )
    return pd.DataFrame(rows)


def encode_corpus(corpus: pd.DataFrame, tokenizer: Tokenizer) -> tuple[list[list[int]], list[int]]:
    """Token-id sequences and loss starts, the form `models.train` consumes."""
    sequences = [tokenizer.encode(t) for t in corpus["tokens"]]
    starts = [len(tokenizer.encode(t[:s])) for t, s in zip(corpus["tokens"], corpus["target_start"])]
    return sequences, starts


def strata(corpus: pd.DataFrame, prompts: pd.DataFrame) -> pd.Series:
    """Each row's stratum: "edge", or "level k" for a demonstration of utility level k."""
    level = corpus["prompt_id"].map(prompts.set_index("prompt_id")["level"])
    return pd.Series(np.where(corpus["kind"] == "edge", "edge", "level " + level.fillna(0).astype(int).astype(str)),
                     index=corpus.index)


def validation_sample(corpus: pd.DataFrame, prompts: pd.DataFrame, fraction: float, seed: int) -> np.ndarray:
    """Boolean mask of the validation rows: `fraction` of every stratum (at least one row of
    each stratum with two or more), drawn at random with `seed`, so every run validates on
    the same rows and every level is in them."""
    rng = np.random.default_rng([seed, 0x5A11])
    stratum = strata(corpus, prompts).to_numpy()
    mask = np.zeros(len(corpus), dtype=bool)
    for name in sorted(set(stratum)):
        rows = np.flatnonzero(stratum == name)
        n = min(max(int(round(fraction * len(rows))), 1), len(rows) - 1)
        mask[rng.choice(rows, size=n, replace=False)] = True
    return mask
