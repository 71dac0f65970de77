"""The training corpus: the graph's edges plus demonstrations.

- edges: `BOS u l v EOS` for every edge in both directions, so the graph is
  stored in the weights; the loss covers l, v and EOS.
- demonstrations: a training prompt followed by its base walk; the loss covers
  the completion only.

`target_start` is the index of the first token string the loss is taken on;
`encode_corpus` turns it into an index of token ids (a node may take several).
"""
from __future__ import annotations

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
