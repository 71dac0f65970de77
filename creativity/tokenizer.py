"""Token ids of prompts and walks: specials, one token per label, and nodes.

Serialisation of a prompt and its completion:

    BOS u v INC l.. EXC l.. SEP v0 l1 v1 ... lh vh EOS

INC and EXC are always present (possibly followed by no labels), so every
prompt of utility level k has the same length, which lets generation batch
prompts of one level without padding.

With node_tokens = 1 every node is one token. With node_tokens = k > 1 a node's
name is k symbols (see graph.node_names) and each symbol is a token, so a model
can spell a name that is no node. Decoding joins each run of symbol tokens back
into names: a run whose length is a multiple of k splits into names of k symbols
(two adjacent names, a parse error for a walk); any other run stays one string,
which is no node (a hallucinated node for a walk).
"""
from __future__ import annotations

from dataclasses import dataclass

SPECIALS = ("PAD", "BOS", "INC", "EXC", "SEP", "EOS")
UNKNOWN_ID = -2  # id given to a string that is not in the vocabulary


@dataclass(frozen=True)
class Tokenizer:
    labels: tuple[str, ...]
    nodes: tuple[str, ...]
    node_tokens: int = 1

    def __post_init__(self):
        if self.node_tokens == 1:
            node_vocab = list(self.nodes)
        else:
            if any(len(n) != self.node_tokens for n in self.nodes):
                raise ValueError(f"every node name must have node_tokens={self.node_tokens} symbols")
            node_vocab = sorted({c for n in self.nodes for c in n})
        vocab = list(SPECIALS) + list(self.labels) + node_vocab
        if len(set(vocab)) != len(vocab):
            raise ValueError("token strings must be unique across specials, labels and nodes")
        object.__setattr__(self, "vocab", tuple(vocab))
        object.__setattr__(self, "_index", {tok: i for i, tok in enumerate(vocab)})
        object.__setattr__(self, "_first_symbol", len(SPECIALS) + len(self.labels))
        object.__setattr__(self, "_node_set", frozenset(self.nodes))

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

    def encode(self, tokens) -> list[int]:
        """Strings to ids; a node name becomes node_tokens ids; other unknown strings UNKNOWN_ID."""
        ids = []
        for t in tokens:
            if t in self._index:
                ids.append(self._index[t])
            elif t in self._node_set:
                ids.extend(self._index[c] for c in t)
            else:
                ids.append(UNKNOWN_ID)
        return ids

    def decode(self, ids) -> list[str]:
        if self.node_tokens == 1:
            return [self.vocab[i] for i in ids]
        out, run = [], []
        for i in [*ids, None]:
            if i is not None and i >= self._first_symbol:
                run.append(self.vocab[i])
                continue
            if run:
                size = self.node_tokens if len(run) % self.node_tokens == 0 else len(run)
                out += ["".join(run[c: c + size]) for c in range(0, len(run), size)]
                run = []
            if i is not None:
                out.append(self.vocab[i])
        return out


def prompt_tokens(start: str, end: str, include, exclude) -> list[str]:
    return ["BOS", start, end, "INC", *include, "EXC", *exclude, "SEP"]
