"""One token per node, one per label, and six specials.

Serialisation of a prompt and its completion:

    BOS u v INC l.. EXC l.. SEP v0 l1 v1 ... lh vh EOS

INC and EXC are always present (possibly followed by no labels), so every
prompt of utility level k has the same length, 5 + k, which lets generation
batch prompts of one level without padding.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SPECIALS = ("PAD", "BOS", "INC", "EXC", "SEP", "EOS")

# Token kinds, used by the vectorised scorer.
KIND_SPECIAL, KIND_LABEL, KIND_NODE, KIND_UNKNOWN = 0, 1, 2, 3
UNKNOWN_ID = -2  # id given to a string that is not in the vocabulary
PAD_WALK = -1  # fill value of padded walk arrays


@dataclass(frozen=True)
class Tokenizer:
    labels: tuple[str, ...]
    nodes: tuple[str, ...]

    def __post_init__(self):
        vocab = list(SPECIALS) + list(self.labels) + list(self.nodes)
        if len(set(vocab)) != len(vocab):
            raise ValueError("token strings must be unique across specials, labels and nodes")
        object.__setattr__(self, "vocab", tuple(vocab))
        object.__setattr__(self, "_index", {tok: i for i, tok in enumerate(vocab)})

    # --- ids of the specials -------------------------------------------------
    pad_id = property(lambda self: 0)
    bos_id = property(lambda self: 1)
    inc_id = property(lambda self: 2)
    exc_id = property(lambda self: 3)
    sep_id = property(lambda self: 4)
    eos_id = property(lambda self: 5)

    @property
    def vocab_size(self) -> int:
        return len(self.vocab)

    @property
    def first_label_id(self) -> int:
        return len(SPECIALS)

    @property
    def first_node_id(self) -> int:
        return len(SPECIALS) + len(self.labels)

    def label_id(self, label_index: int) -> int:
        return self.first_label_id + label_index

    def node_id(self, node_index: int) -> int:
        return self.first_node_id + node_index

    def encode(self, tokens) -> list[int]:
        """Strings to ids; strings outside the vocabulary map to UNKNOWN_ID."""
        return [self._index.get(t, UNKNOWN_ID) for t in tokens]

    def decode(self, ids) -> list[str]:
        return [self.vocab[i] for i in ids]

    def kinds(self) -> np.ndarray:
        """Kind of every id, indexable by id (UNKNOWN_ID indexes the last cell)."""
        kinds = np.full(self.vocab_size + 2, KIND_UNKNOWN, dtype=np.int8)
        kinds[: len(SPECIALS)] = KIND_SPECIAL
        kinds[self.first_label_id : self.first_node_id] = KIND_LABEL
        kinds[self.first_node_id : self.vocab_size] = KIND_NODE
        return kinds


def prompt_tokens(start: str, end: str, include, exclude) -> list[str]:
    return ["BOS", start, end, "INC", *include, "EXC", *exclude, "SEP"]
