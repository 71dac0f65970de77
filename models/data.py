"""Padded training batches from token-id sequences, in a seeded, resumable order.

A sequence of length n gives inputs tokens[0..n-2] and targets tokens[1..n-1]; the loss
covers target token t (logits at position t-1) for every t >= target_start. Every batch is
right-padded to the same length (the longest sequence of the whole data set), so every
training step costs the same FLOPs and the step budget is exact.

The order is a function of (seed, step) alone: the stream of sequence indices is the
concatenation of one permutation per epoch, each drawn from (seed, epoch). A resumed run
therefore sees exactly the batches an uninterrupted run would.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch


@dataclass
class Batch:
    idx: torch.Tensor  # [B, S] input tokens (right-padded)
    targets: torch.Tensor  # [B, S] next tokens
    mask: torch.Tensor  # [B, S] bool: True where the target counts in the loss
    # EBT prediction-stream queries per row: the most loss positions of any sequence in the
    # corpus, fixed per run so every step costs the same (None: all S positions).
    n_queries: int | None = None

    def to(self, device):
        return Batch(self.idx.to(device), self.targets.to(device), self.mask.to(device), self.n_queries)


def split_train_val(n: int, val_fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """Seeded split of sequence indices 0..n-1 into (train, val); val gets at least one if
    val_fraction > 0 and n > 1."""
    perm = np.random.default_rng([seed, 0xDA7A]).permutation(n)
    n_val = int(round(val_fraction * n))
    if val_fraction > 0 and n > 1:
        n_val = min(max(n_val, 1), n - 1)
    return sorted(perm[n_val:].tolist()), sorted(perm[:n_val].tolist())


@lru_cache(maxsize=4)
def _epoch_permutation(n: int, seed: int, epoch: int) -> np.ndarray:
    return np.random.default_rng([seed, epoch]).permutation(n)


def batch_positions(n: int, batch_size: int, step: int, seed: int) -> list[int]:
    """Positions (into a list of n items) of the batch used at training step `step`."""
    out = []
    for p in range(step * batch_size, (step + 1) * batch_size):
        out.append(int(_epoch_permutation(n, seed, p // n)[p % n]))
    return out


def loss_queries(sequences, target_starts) -> int:
    """Most loss positions in any one sequence: the EBT's prediction-stream width."""
    return max(len(s) - start for s, start in zip(sequences, target_starts))


def make_batch(sequences, target_starts, indices, pad_id: int, length: int, n_queries: int | None = None) -> Batch:
    """Batch of sequences[indices], each right-padded to `length` tokens (inputs and targets
    are then length-1 long)."""
    B, S = len(indices), length - 1
    idx = torch.full((B, S), pad_id, dtype=torch.long)
    targets = torch.full((B, S), pad_id, dtype=torch.long)
    mask = torch.zeros((B, S), dtype=torch.bool)
    for row, i in enumerate(indices):
        seq, start = sequences[i], target_starts[i]
        if not 1 <= start < len(seq) or len(seq) > length:
            raise ValueError(f"sequence {i}: length {len(seq)}, target_start {start}, pad length {length}")
        n = len(seq) - 1
        idx[row, :n] = torch.tensor(seq[:-1])
        targets[row, :n] = torch.tensor(seq[1:])
        mask[row, start - 1 : n] = True
    return Batch(idx, targets, mask, n_queries)


def spread_subset(indices, size: int | None) -> list[int]:
    """`size` of the sorted `indices`, evenly spaced (all if size is None or enough). The task's
    corpus is in stratum order (edges, then demonstrations level by level), so an evenly
    spaced subset keeps every stratum in proportion where a prefix would drop the last."""
    indices = sorted(indices)
    if size is None or size >= len(indices):
        return indices
    return [indices[i] for i in np.linspace(0, len(indices) - 1, size).round().astype(int)]


def eval_batches(sequences, target_starts, indices, pad_id: int, length: int, batch_size: int, max_batches: int,
                 n_queries: int | None = None):
    """Fixed validation batches (in index order) covering up to max_batches * batch_size items."""
    indices = list(indices)[: batch_size * max_batches]
    return [
        make_batch(sequences, target_starts, indices[i : i + batch_size], pad_id, length, n_queries)
        for i in range(0, len(indices), batch_size)
    ]


class RunData:
    """One run's view of the corpus: a train/val split, one padded length for every
    batch (so every step costs the same), the training batch of any step, and fixed
    validation batches, all held on `device`. With ebt_queries, batches carry the EBT's
    prediction-stream width.

    val_indices: the task's validation rows (corpus column `validation`), the same for
    every run; all of them are evaluated unless eval_max_batches (None: no cap) cuts them to
    an evenly spaced subset (`spread_subset`), and `val_idx` holds the rows evaluated. Left
    None, the split is drawn from `seed` with val_fraction and the first eval_max_batches
    batches are evaluated (the old behaviour, which can miss whole strata)."""

    def __init__(self, sequences, target_starts, pad_id: int, batch_size: int, val_fraction: float | None,
                 eval_max_batches: int | None, seed: int, ebt_queries: bool, device="cpu", val_indices=None):
        self.batch_size, self.seed = batch_size, seed
        if val_indices is None:
            self.train_idx, val_idx = split_train_val(len(sequences), val_fraction, seed)
            val_idx = val_idx[: batch_size * eval_max_batches]
        else:
            held = set(int(i) for i in val_indices)
            self.train_idx = [i for i in range(len(sequences)) if i not in held]
            cap = None if eval_max_batches is None else batch_size * eval_max_batches
            val_idx = spread_subset(held, cap)
        self.val_idx = val_idx
        self.length = max(len(s) for s in sequences)
        self.n_queries = loss_queries(sequences, target_starts) if ebt_queries else None
        self.val_batches = [b.to(device) for b in eval_batches(sequences, target_starts, val_idx, pad_id, self.length,
                                                               batch_size, -(-len(val_idx) // batch_size), self.n_queries)]
        # Every sequence padded once and moved to the device once, so a training batch is a
        # row gather there (building 32 rows from lists each step cost about a tenth of a
        # small Transformer++ step).
        self._padded = make_batch(sequences, target_starts, self.train_idx, pad_id, self.length,
                                  self.n_queries).to(device)

    @property
    def tokens_per_step(self) -> int:
        return self.batch_size * (self.length - 1)

    def train_batch(self, step: int) -> Batch:
        padded = self._padded
        pos = torch.tensor(batch_positions(len(self.train_idx), self.batch_size, step, self.seed),
                           device=padded.idx.device)
        return Batch(padded.idx[pos], padded.targets[pos], padded.mask[pos], self.n_queries)
