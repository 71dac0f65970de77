"""Scores of generated walks, vectorised over a batch.

A batch of walks is an int64 array (B, W) of tokenizer ids padded on the right
with PAD_WALK; strings outside the vocabulary carry UNKNOWN_ID. Slot j of a
walk is a node slot when j is even and a label slot when j is odd.

Error types, the first failing check in this order:
  parse               length not odd and >= 3, or a slot holds the wrong kind
                      (an unknown string in a label slot is a parse error)
  hallucinated_node   a node slot holds a string that is not a node of G
  hallucinated_edge   a hop (u, l, v) with no edge u–v, or one with another label
  wrong_endpoints     v0 != u or vh != v
  include_violation   a label of I is missing
  exclude_violation   a label of X is used
  none

With one token per node, a model can only hallucinate a node by emitting an
out-of-vocabulary string, so that error shows up mainly for external walks.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from rapidfuzz.distance import Levenshtein

from .graph import ConceptGraph
from .tokenizer import KIND_LABEL, KIND_NODE, KIND_UNKNOWN, PAD_WALK, UNKNOWN_ID, Tokenizer

ERROR_TYPES = (
    "parse",
    "hallucinated_node",
    "hallucinated_edge",
    "wrong_endpoints",
    "include_violation",
    "exclude_violation",
    "none",
)
KIND_PAD = -1


@dataclass(frozen=True)
class ScoreWeights:
    alpha_hops: float = 1.0
    alpha_rarity: float = 1.0
    alpha_include: float = 1.0
    alpha_exclude: float = 1.0


def label_mask(label_indices) -> int:
    mask = 0
    for l in label_indices:
        mask |= 1 << int(l)
    return mask


class Scorer:
    """Scores walks against one graph and one set of training demonstrations."""

    def __init__(self, graph: ConceptGraph, tokenizer: Tokenizer, weights: ScoreWeights, demo_walks: list[list[str]]):
        if graph.num_labels > 62:
            raise ValueError("label sets are int64 bitmasks: at most 62 labels")
        self.graph, self.tokenizer, self.weights = graph, tokenizer, weights
        self.kind_of_id = tokenizer.kinds()
        # An unused label has share 0; cap its surprisal at that of a single edge.
        shares = np.maximum(graph.label_weights, 1.0 / max(2 * len(graph.edges), 1))
        self.surprisal = -np.log(shares)
        self._index_demonstrations(demo_walks)

    # --- encoding -----------------------------------------------------------
    def encode_walks(self, walks: list[list[str]], width: int | None = None) -> np.ndarray:
        width = width or max((len(w) for w in walks), default=1) or 1
        out = np.full((len(walks), width), PAD_WALK, dtype=np.int64)
        for i, w in enumerate(walks):
            ids = self.tokenizer.encode(w[:width])
            out[i, : len(ids)] = ids
        return out

    def _index_demonstrations(self, demo_walks):
        encoded = self.encode_walks(demo_walks) if demo_walks else np.full((0, 1), PAD_WALK)
        self._demo_width = encoded.shape[1]
        self._demo_rows = np.unique(_row_keys(encoded))
        scored = self._structure(encoded)
        pairs = _hop_pair_codes(scored["edge_idx"], scored["valid_hop"], self._num_directed)
        self._demo_hop_pairs = np.unique(pairs[pairs >= 0])

    @property
    def _num_directed(self) -> int:
        return len(self.graph.directed_keys)

    # --- the checks ---------------------------------------------------------
    def _structure(self, walks: np.ndarray) -> dict:
        """Parse, node and edge checks; everything that does not need the prompt."""
        B, W = walks.shape
        length = (walks != PAD_WALK).sum(axis=1)
        slot = np.arange(W)[None, :]
        inside = slot < length[:, None]
        kind = np.where(
            walks == PAD_WALK, KIND_PAD, np.where(walks == UNKNOWN_ID, KIND_UNKNOWN, self.kind_of_id[np.clip(walks, 0, None)])
        )
        node_slot, label_slot = inside & (slot % 2 == 0), inside & (slot % 2 == 1)
        slots_ok = np.where(node_slot, (kind == KIND_NODE) | (kind == KIND_UNKNOWN), True) & np.where(
            label_slot, kind == KIND_LABEL, True
        )
        parse_ok = (length >= 3) & (length % 2 == 1) & slots_ok.all(axis=1)
        nodes_known = parse_ok & ~(node_slot & (kind == KIND_UNKNOWN)).any(axis=1)

        # Hops: u = slot 2i, l = slot 2i+1, v = slot 2i+2 (as graph indices).
        n_hops = max((W - 1) // 2, 0)
        u = walks[:, 0 : 2 * n_hops : 2] - self.tokenizer.first_node_id
        l = walks[:, 1 : 2 * n_hops : 2] - self.tokenizer.first_label_id
        v = walks[:, 2 : 2 * n_hops + 1 : 2] - self.tokenizer.first_node_id
        hops = np.where(parse_ok, (length - 1) // 2, 0)
        valid_hop = (np.arange(n_hops)[None, :] < hops[:, None]) & nodes_known[:, None]
        safe_u, safe_v = np.where(valid_hop, u, 0), np.where(valid_hop, v, 0)
        edge_idx = np.where(valid_hop, self.graph.edge_index(safe_u, safe_v), -1)
        edge_lab = np.where(edge_idx >= 0, self.graph.directed_labels[np.maximum(edge_idx, 0)], -1)
        hop_ok = ~valid_hop | ((edge_idx >= 0) & (edge_lab == l))
        edges_ok = nodes_known & hop_ok.all(axis=1)

        safe_l = np.where(valid_hop, l, 0)
        used = np.where(valid_hop, np.left_shift(np.int64(1), safe_l), 0)
        used_mask = np.bitwise_or.reduce(used, axis=1) if n_hops else np.zeros(B, dtype=np.int64)
        surprisal = np.where(valid_hop, self.surprisal[np.clip(safe_l, 0, len(self.surprisal) - 1)], 0.0).sum(axis=1)
        first = walks[:, 0] - self.tokenizer.first_node_id
        last = walks[np.arange(B), np.maximum(length - 1, 0)] - self.tokenizer.first_node_id
        return dict(
            parse_ok=parse_ok, nodes_known=nodes_known, edges_ok=edges_ok, hops=hops, first=first, last=last,
            used_mask=used_mask, surprisal_sum=surprisal, edge_idx=edge_idx, valid_hop=valid_hop, length=length,
        )

    def score(self, walks: np.ndarray, start: np.ndarray, end: np.ndarray, include_mask: np.ndarray,
              exclude_mask: np.ndarray) -> pd.DataFrame:
        """Per-walk scores. start/end are node indices, include/exclude label bitmasks."""
        s = self._structure(walks)
        w = self.weights
        ends_ok = s["edges_ok"] & (s["first"] == start) & (s["last"] == end)
        include_ok = (s["used_mask"] & include_mask) == include_mask
        exclude_ok = (s["used_mask"] & exclude_mask) == 0
        checks = np.stack(
            [~s["parse_ok"], ~s["nodes_known"], ~s["edges_ok"], ~ends_ok, ~include_ok, ~exclude_ok], axis=1
        )
        first_fail = np.where(checks.any(axis=1), checks.argmax(axis=1), len(ERROR_TYPES) - 1)
        valid = ends_ok

        hops = s["hops"]
        novelty = np.where(
            s["parse_ok"], w.alpha_hops * hops + w.alpha_rarity * s["surprisal_sum"] / np.maximum(hops, 1), np.nan
        )
        n_inc, n_exc = _popcount(include_mask), _popcount(exclude_mask)
        satisfied = valid & include_ok & exclude_ok
        utility = np.where(satisfied, (1 + w.alpha_include * n_inc) * (1 + w.alpha_exclude * n_exc), 0.0)
        n_constraints = n_inc + n_exc
        n_met = _popcount(s["used_mask"] & include_mask) + n_exc - _popcount(s["used_mask"] & exclude_mask)
        utility_soft = np.where(valid, np.where(n_constraints > 0, n_met / np.maximum(n_constraints, 1), 1.0), 0.0)
        creativity = np.where(valid, utility * np.nan_to_num(novelty), 0.0)

        copied = valid & np.isin(_row_keys(_fit_width(walks, self._demo_width)), self._demo_rows) & (
            s["length"] <= self._demo_width
        )
        pairs = _hop_pair_codes(s["edge_idx"], s["valid_hop"], self._num_directed)
        is_pair = pairs >= 0
        new_pair = is_pair & ~np.isin(pairs, self._demo_hop_pairs)
        n_pairs = is_pair.sum(axis=1)
        comb = np.where(valid & (n_pairs > 0), new_pair.sum(axis=1) / np.maximum(n_pairs, 1), np.nan)
        return pd.DataFrame(
            {
                "valid": valid,
                "error_type": np.asarray(ERROR_TYPES, dtype=object)[first_fail],
                "hops": hops,
                "novelty": novelty,
                "utility": utility,
                "utility_soft": utility_soft,
                "creativity": creativity,
                "copied": copied,
                "combinatorial_novelty": comb,
            }
        )

    def score_table(self, samples: pd.DataFrame) -> pd.DataFrame:
        """Score a table with columns walk, start, end, include, exclude (strings)."""
        node_ix = {n: i for i, n in enumerate(self.graph.nodes)}
        label_ix = {l: i for i, l in enumerate(self.graph.labels)}
        walks = self.encode_walks([list(w) for w in samples["walk"]])
        start = samples["start"].map(node_ix).to_numpy(dtype=np.int64)
        end = samples["end"].map(node_ix).to_numpy(dtype=np.int64)
        inc = np.array([label_mask(label_ix[l] for l in ls) for ls in samples["include"]], dtype=np.int64)
        exc = np.array([label_mask(label_ix[l] for l in ls) for ls in samples["exclude"]], dtype=np.int64)
        return self.score(walks, start, end, inc, exc)


def _popcount(x: np.ndarray) -> np.ndarray:
    return np.bitwise_count(np.asarray(x, dtype=np.int64)).astype(np.int64)


def _fit_width(walks: np.ndarray, width: int) -> np.ndarray:
    if walks.shape[1] >= width:
        return walks[:, :width]
    pad = np.full((walks.shape[0], width - walks.shape[1]), PAD_WALK, dtype=walks.dtype)
    return np.concatenate([walks, pad], axis=1)


def _row_keys(rows: np.ndarray) -> np.ndarray:
    """Each row as one opaque bytes value, so np.isin/np.unique compare whole rows exactly."""
    rows = np.ascontiguousarray(rows, dtype=np.int64)
    return rows.view(np.dtype((np.void, rows.dtype.itemsize * rows.shape[1]))).ravel()


def _hop_pair_codes(edge_idx: np.ndarray, valid_hop: np.ndarray, num_directed: int) -> np.ndarray:
    """Code of each consecutive hop pair (v_{i-1}, l_i, v_i, l_{i+1}, v_{i+1}), -1 where none.

    A directed edge index fixes (u, l, v) in a simple graph, so a pair of them
    fixes the five-tuple.
    """
    if edge_idx.shape[1] < 2:
        return np.full((edge_idx.shape[0], 0), -1, dtype=np.int64)
    a, b = edge_idx[:, :-1], edge_idx[:, 1:]
    ok = valid_hop[:, :-1] & valid_hop[:, 1:] & (a >= 0) & (b >= 0)
    return np.where(ok, a * num_directed + b, -1)


# --- diversity over the k samples of one prompt ------------------------------
def edge_set(walk) -> frozenset:
    nodes = walk[0::2]
    return frozenset(frozenset(p) for p in zip(nodes[:-1], nodes[1:]))


def mean_pairwise_distances(walks: list[list[str]]) -> tuple[float, float]:
    """(mean Jaccard distance of edge sets, mean normalised edit distance of label sequences)."""
    if len(walks) < 2:
        return np.nan, np.nan
    sets = [edge_set(w) for w in walks]
    labels = [list(w[1::2]) for w in walks]
    jac, edit = [], []
    for i in range(len(walks)):
        for j in range(i + 1, len(walks)):
            union = len(sets[i] | sets[j])
            jac.append(1.0 - len(sets[i] & sets[j]) / union if union else 0.0)
            edit.append(Levenshtein.normalized_distance(labels[i], labels[j]))
    return float(np.mean(jac)), float(np.mean(edit))


def diversity(samples: pd.DataFrame, group_cols: list[str]) -> pd.DataFrame:
    """Per-group diversity over valid walks; NaN where a group has fewer than two."""
    valid = samples[samples["valid"]]
    rows = []
    for key, group in valid.groupby(group_cols, sort=True):
        jac, edit = mean_pairwise_distances([list(w) for w in group["walk"]])
        rows.append((*(key if isinstance(key, tuple) else (key,)), jac, edit))
    return pd.DataFrame(rows, columns=[*group_cols, "diversity_jaccard", "diversity_edit"])


# --- aggregation ---------------------------------------------------------------
def aggregate(scored: pd.DataFrame, group_cols: list[str]) -> pd.DataFrame:
    """Means and counts per group; creativity C = E[U·N] with invalid outputs at 0."""
    g = scored.assign(
        novelty_valid=scored["novelty"].where(scored["valid"]),
        copied_valid=scored["copied"].where(scored["valid"]).astype(float),
        **{f"err_{e}": (scored["error_type"] == e).astype(float) for e in ERROR_TYPES},
    ).groupby(group_cols, sort=True)
    out = g.agg(
        n_samples=("valid", "size"),
        n_prompts=("prompt_id", "nunique"),
        validity=("valid", "mean"),
        novelty_valid=("novelty_valid", "mean"),
        utility=("utility", "mean"),
        utility_soft=("utility_soft", "mean"),
        creativity=("creativity", "mean"),
        copy_rate=("copied_valid", "mean"),
        combinatorial_novelty=("combinatorial_novelty", "mean"),
        **{f"err_{e}": (f"err_{e}", "mean") for e in ERROR_TYPES},
    )
    return out.reset_index()
