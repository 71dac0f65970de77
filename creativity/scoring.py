"""Scores of generated walks, vectorised over a batch.

A batch of walks is an int64 array (B, W) of walk codes (see WalkCodes) padded on
the right with PAD; strings that are neither node, label nor special carry UNKNOWN.
Slot j of a walk is a node slot when j is even and a label slot when j is odd.

valid    the walk parses, runs along edges of G from u to v, and (unless revisits are
         allowed) visits no node twice: walk validity, which ignores I and X.
correct  valid and it uses every label of I and none of X: it answers the prompt. The
         headline rate is the correct rate; utility U > 0 exactly on correct walks.

Error types, the first failing check in this order:
  parse               length not odd and >= 3, or a slot holds the wrong kind
                      (an unknown string in a label slot is a parse error)
  hallucinated_node   a node slot holds a string that is not a node of G
  hallucinated_edge   a hop (u, l, v) with no edge u–v, or one with another label
  revisit             a node occurs twice, where task.allow_revisits is false
  wrong_endpoints     v0 != u or vh != v
  include_violation   a label of I is missing
  exclude_violation   a label of X is used
  none

With one token per node a model can only hallucinate a node by emitting an
out-of-vocabulary string; with task.node_tokens > 1 it can spell one.

What a valid walk shares with the training demonstrations:
  copied, copy_share     whether it contains a whole demonstration walk of at least
                         scoring.copy_min_hops (default 2) hops as a contiguous sub-walk
                         (either direction), and the share of its hops inside such
                         sub-walks. A 2-hop demonstration is one composition, and the
                         demonstrations of a small graph show almost all of them, so with
                         2 a long walk is nearly always "copied"; copy_share still varies.
  combinatorial_novelty  the share of its compositions (hop pairs, compositions.py)
                         that no demonstration shows; NaN for a one-hop walk
  uses_heldout           whether it uses a composition the task withheld
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from numpy.lib.stride_tricks import sliding_window_view
from rapidfuzz.distance import Levenshtein

from . import compositions
from .graph import ConceptGraph
from .tokenizer import SPECIALS

ERROR_TYPES = (
    "parse",
    "hallucinated_node",
    "hallucinated_edge",
    "revisit",
    "wrong_endpoints",
    "include_violation",
    "exclude_violation",
    "none",
)
PAD, UNKNOWN = -1, -2
KIND_PAD, KIND_SPECIAL, KIND_LABEL, KIND_NODE, KIND_UNKNOWN = -1, 0, 1, 2, 3


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


class WalkCodes:
    """Walk strings as integer codes: node i -> i, label j -> n + j, specials after them."""

    def __init__(self, graph: ConceptGraph):
        n, L = graph.num_nodes, graph.num_labels
        self.first_label = n
        strings = [*graph.nodes, *graph.labels, *SPECIALS]
        self.code = {s: i for i, s in enumerate(strings)}
        self.kind = np.array([KIND_NODE] * n + [KIND_LABEL] * L + [KIND_SPECIAL] * len(SPECIALS), dtype=np.int8)

    def encode(self, walks: list[list[str]], width: int | None = None) -> np.ndarray:
        width = width or max((len(w) for w in walks), default=1) or 1
        out = np.full((len(walks), width), PAD, dtype=np.int64)
        for i, w in enumerate(walks):
            codes = [self.code.get(t, UNKNOWN) for t in w[:width]]
            out[i, : len(codes)] = codes
        return out

    def kinds(self, walks: np.ndarray) -> np.ndarray:
        known = self.kind[np.clip(walks, 0, len(self.kind) - 1)]
        return np.where(walks == PAD, KIND_PAD, np.where(walks == UNKNOWN, KIND_UNKNOWN, known))


class Scorer:
    """Scores walks against one graph, its training demonstrations and its held-out compositions."""

    def __init__(self, graph: ConceptGraph, weights: ScoreWeights, demo_walks: list[list[str]],
                 heldout_keys: np.ndarray, allow_revisits: bool, copy_min_hops: int):
        if graph.num_labels > 62:
            raise ValueError("label sets are int64 bitmasks: at most 62 labels")
        self.graph, self.weights, self.allow_revisits = graph, weights, allow_revisits
        self.codes = WalkCodes(graph)
        # An unused label has share 0; cap its surprisal at that of a single edge.
        shares = np.maximum(graph.label_weights, 1.0 / max(2 * len(graph.edges), 1))
        self.surprisal = -np.log(shares)
        self.heldout_keys = np.sort(np.asarray(heldout_keys, dtype=np.int64))
        self._index_demonstrations(demo_walks, copy_min_hops)

    def _index_demonstrations(self, demo_walks, copy_min_hops: int):
        s = self._structure(self.codes.encode(demo_walks) if demo_walks else np.full((0, 1), PAD))
        keys = compositions.keys_of_hops(s["edge_ids"], len(self.graph.edges))
        self.demo_keys = np.unique(keys[keys >= 0])
        # Each demonstration of h >= copy_min_hops hops, in both directions, as a row of h + 1 nodes.
        self.demo_rows: dict[int, np.ndarray] = {}
        nodes = s["nodes"][s["edges_ok"]]
        hops = s["hops"][s["edges_ok"]]
        for h in np.unique(hops[hops >= max(copy_min_hops, 2)]).tolist():
            rows = nodes[hops == h, : h + 1]
            self.demo_rows[h] = np.unique(self._window_keys(np.concatenate([rows, rows[:, ::-1]])))

    # --- the checks ---------------------------------------------------------
    def _structure(self, walks: np.ndarray) -> dict:
        """Parse, node, edge and revisit checks: everything that does not need the prompt."""
        B, W = walks.shape
        length = (walks != PAD).sum(axis=1)
        slot = np.arange(W)[None, :]
        inside = slot < length[:, None]
        kind = self.codes.kinds(walks)
        node_slot, label_slot = inside & (slot % 2 == 0), inside & (slot % 2 == 1)
        slots_ok = np.where(node_slot, (kind == KIND_NODE) | (kind == KIND_UNKNOWN), True) & np.where(
            label_slot, kind == KIND_LABEL, True
        )
        parse_ok = (length >= 3) & (length % 2 == 1) & slots_ok.all(axis=1)
        nodes_known = parse_ok & ~(node_slot & (kind == KIND_UNKNOWN)).any(axis=1)

        # Hops: u = slot 2i, l = slot 2i+1, v = slot 2i+2 (as graph indices).
        n_hops = max((W - 1) // 2, 0)
        hops = np.where(parse_ok, (length - 1) // 2, 0)
        valid_hop = (np.arange(n_hops)[None, :] < hops[:, None]) & nodes_known[:, None]
        nodes = np.where(nodes_known[:, None] & node_slot[:, 0::2], walks[:, 0::2], PAD)  # (B, n_hops + 1)
        u, v = np.where(valid_hop, nodes[:, :n_hops], 0), np.where(valid_hop, nodes[:, 1 : n_hops + 1], 0)
        l = np.where(valid_hop, walks[:, 1 : 2 * n_hops : 2] - self.codes.first_label, 0)
        edge_lab = np.where(valid_hop, self.graph.edge_label(u, v), -1)
        hop_ok = ~valid_hop | ((edge_lab >= 0) & (edge_lab == l))
        edges_ok = nodes_known & hop_ok.all(axis=1)
        edge_ids = np.where(valid_hop & edges_ok[:, None], self.graph.edge_ids(u, v), -1)

        used = np.where(valid_hop, np.left_shift(np.int64(1), l), 0)
        used_mask = np.bitwise_or.reduce(used, axis=1) if n_hops else np.zeros(B, dtype=np.int64)
        surprisal = np.where(valid_hop, self.surprisal[np.clip(l, 0, len(self.surprisal) - 1)], 0.0).sum(axis=1)
        return dict(
            parse_ok=parse_ok, nodes_known=nodes_known, edges_ok=edges_ok, revisit=_repeats(nodes), hops=hops,
            first=walks[:, 0], last=walks[np.arange(B), np.maximum(length - 1, 0)], nodes=nodes,
            used_mask=used_mask, surprisal_sum=surprisal, edge_ids=edge_ids,
        )

    def score(self, walks: np.ndarray, start: np.ndarray, end: np.ndarray, include_mask: np.ndarray,
              exclude_mask: np.ndarray) -> pd.DataFrame:
        """Per-walk scores. start/end are node indices, include/exclude label bitmasks."""
        s = self._structure(walks)
        w = self.weights
        revisit = s["revisit"] & (not self.allow_revisits)
        ends_ok = s["edges_ok"] & ~revisit & (s["first"] == start) & (s["last"] == end)
        include_ok = (s["used_mask"] & include_mask) == include_mask
        exclude_ok = (s["used_mask"] & exclude_mask) == 0
        checks = np.stack(
            [~s["parse_ok"], ~s["nodes_known"], ~s["edges_ok"], revisit, ~ends_ok, ~include_ok, ~exclude_ok], axis=1
        )
        first_fail = np.where(checks.any(axis=1), checks.argmax(axis=1), len(ERROR_TYPES) - 1)
        valid = ends_ok

        hops = s["hops"]
        novelty = np.where(s["parse_ok"], self._novelty(hops, s["surprisal_sum"]), np.nan)
        n_inc, n_exc = _popcount(include_mask), _popcount(exclude_mask)
        correct = valid & include_ok & exclude_ok
        utility = np.where(correct, (1 + w.alpha_include * n_inc) * (1 + w.alpha_exclude * n_exc), 0.0)
        n_constraints = n_inc + n_exc
        n_met = _popcount(s["used_mask"] & include_mask) + n_exc - _popcount(s["used_mask"] & exclude_mask)
        utility_soft = np.where(valid, np.where(n_constraints > 0, n_met / np.maximum(n_constraints, 1), 1.0), 0.0)
        creativity = np.where(valid, utility * np.nan_to_num(novelty), 0.0)

        covered = self._copied_hops(s["nodes"]) & valid[:, None]
        keys = compositions.keys_of_hops(s["edge_ids"], len(self.graph.edges))
        is_pair = (keys >= 0) & valid[:, None]
        new_pair = is_pair & ~np.isin(keys, self.demo_keys)
        n_pairs = is_pair.sum(axis=1)
        return pd.DataFrame(
            {
                "valid": valid,
                "correct": correct,
                "error_type": np.asarray(ERROR_TYPES, dtype=object)[first_fail],
                "hops": hops,
                "novelty": novelty,
                "utility": utility,
                "utility_soft": utility_soft,
                "creativity": creativity,
                "copied": covered.any(axis=1),
                "copy_share": np.where(valid, covered.sum(axis=1) / np.maximum(hops, 1), np.nan),
                "combinatorial_novelty": np.where(n_pairs > 0, new_pair.sum(axis=1) / np.maximum(n_pairs, 1), np.nan),
                "uses_heldout": (is_pair & np.isin(keys, self.heldout_keys)).any(axis=1),
            }
        )

    def _novelty(self, hops: np.ndarray, surprisal_sum: np.ndarray) -> np.ndarray:
        w = self.weights
        return w.alpha_hops * hops + w.alpha_rarity * surprisal_sum / np.maximum(hops, 1)

    def path_novelty(self, nodes: np.ndarray) -> np.ndarray:
        """N of walks along edges of G given as rows of node indices (no PAD), as score() gives it."""
        hops = nodes.shape[1] - 1
        labels = self.graph.edge_label(nodes[:, :-1], nodes[:, 1:])
        if (labels < 0).any():
            raise ValueError("path_novelty needs walks along edges of the graph")
        return self._novelty(np.full(len(nodes), hops), self.surprisal[labels].sum(axis=1))

    def _copied_hops(self, nodes: np.ndarray) -> np.ndarray:
        """(B, H) whether hop i lies inside an occurrence of a demonstration walk (PAD matches nothing)."""
        B, H = nodes.shape[0], max(nodes.shape[1] - 1, 0)
        starts_cover = np.zeros((B, H + 1), dtype=np.int64)  # +1 where a covering window starts, -1 after it ends
        for h, rows in self.demo_rows.items():
            if h > H:
                continue
            windows = sliding_window_view(nodes, h + 1, axis=1)  # (B, H - h + 1, h + 1)
            hit = np.isin(self._window_keys(windows.reshape(-1, h + 1)), rows).reshape(B, -1)
            starts_cover[:, : hit.shape[1]] += hit
            starts_cover[:, h : h + hit.shape[1]] -= hit
        return np.cumsum(starts_cover, axis=1)[:, :H] > 0

    def _window_keys(self, rows: np.ndarray) -> np.ndarray:
        """One exact key per row of node codes (PAD included): packed into an int64 where the
        row fits, which sorts far faster than comparing rows as bytes."""
        bits = self.graph.num_nodes.bit_length()
        if rows.shape[1] * bits > 63:
            return _row_keys(rows)
        shifts = np.arange(rows.shape[1], dtype=np.int64) * bits
        return np.bitwise_or.reduce((rows + 1) << shifts, axis=1)

    def score_table(self, samples: pd.DataFrame) -> pd.DataFrame:
        """Score a table with columns walk, start, end, include, exclude (strings)."""
        node_ix = {n: i for i, n in enumerate(self.graph.nodes)}
        label_ix = {l: i for i, l in enumerate(self.graph.labels)}
        walks = self.codes.encode([list(w) for w in samples["walk"]])
        start = samples["start"].map(node_ix).to_numpy(dtype=np.int64)
        end = samples["end"].map(node_ix).to_numpy(dtype=np.int64)
        inc = np.array([label_mask(label_ix[l] for l in ls) for ls in samples["include"]], dtype=np.int64)
        exc = np.array([label_mask(label_ix[l] for l in ls) for ls in samples["exclude"]], dtype=np.int64)
        return self.score(walks, start, end, inc, exc)


def _popcount(x: np.ndarray) -> np.ndarray:
    return np.bitwise_count(np.asarray(x, dtype=np.int64)).astype(np.int64)


def _repeats(nodes: np.ndarray) -> np.ndarray:
    """Whether a row of node codes (PAD-filled) holds some node twice."""
    if nodes.shape[1] < 2:
        return np.zeros(nodes.shape[0], dtype=bool)
    s = np.sort(nodes, axis=1)
    return ((s[:, 1:] == s[:, :-1]) & (s[:, 1:] >= 0)).any(axis=1)


def _row_keys(rows: np.ndarray) -> np.ndarray:
    """Each row as one opaque bytes value, so np.isin/np.unique compare whole rows exactly."""
    rows = np.ascontiguousarray(rows, dtype=np.int64)
    return rows.view(np.dtype((np.void, rows.dtype.itemsize * rows.shape[1]))).ravel()


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
INFERENCE_COST_COLUMNS = ["generated_tokens", "inference_flops", "inference_flops_per_token",
                          "decode_step_flops_analytic", "decode_step_flops_measured"]


SATURATION = 0.95  # a rate the length-matched null reaches is no evidence about a model


def aggregate(scored: pd.DataFrame, group_cols: list[str]) -> pd.DataFrame:
    """Means and counts per group of samples scored by length_control.score_run.

    correct_rate is the headline rate, validity the walk validity (constraints ignored).
    Creativity C = E[U·N] and creativity_lc = E[U·novelty_lc], both with outputs that are
    not correct at 0. novelty_valid, novelty_lc_valid, copy_rate, copy_share,
    combinatorial_novelty and uses_heldout_rate are means over valid walks; so are their
    *_null_lm values, over the length-matched null walks paired with them, and
    *_net = value - null value. *_saturated: the null's value is >= SATURATION, so the
    metric cannot tell a model from a uniform walker of its length (not a headline).
    revisit_rate (= err_revisit) is the share of all samples that revisit a node.
    """
    g = scored.assign(
        novelty_valid=scored["novelty"].where(scored["valid"]),
        copied_valid=scored["copied"].where(scored["valid"]).astype(float),
        heldout_valid=scored["uses_heldout"].where(scored["valid"]).astype(float),
        **{f"err_{e}": (scored["error_type"] == e).astype(float) for e in ERROR_TYPES},
    ).groupby(group_cols, sort=True)
    out = g.agg(
        n_samples=("valid", "size"),
        n_prompts=("prompt_id", "nunique"),
        correct_rate=("correct", "mean"),
        validity=("valid", "mean"),
        novelty_valid=("novelty_valid", "mean"),
        novelty_lc_valid=("novelty_lc", "mean"),
        novelty_valid_null_lm=("novelty_null_lm", "mean"),
        utility=("utility", "mean"),
        utility_soft=("utility_soft", "mean"),
        creativity=("creativity", "mean"),
        creativity_lc=("creativity_lc", "mean"),
        copy_rate=("copied_valid", "mean"),
        copy_rate_null_lm=("copied_null_lm", "mean"),
        copy_share=("copy_share", "mean"),
        combinatorial_novelty=("combinatorial_novelty", "mean"),
        combinatorial_novelty_null_lm=("combinatorial_novelty_null_lm", "mean"),
        uses_heldout_rate=("heldout_valid", "mean"),
        revisit_rate=("err_revisit", "mean"),
        **{f"err_{e}": (f"err_{e}", "mean") for e in ERROR_TYPES},
        # what the answers cost (models/flops.py); absent for the feasible-set baseline
        **{c: (c, "mean") for c in INFERENCE_COST_COLUMNS if c in scored.columns},
    )
    for metric in ("copy_rate", "combinatorial_novelty"):
        out.insert(out.columns.get_loc(f"{metric}_null_lm") + 1, f"{metric}_net", out[metric] - out[f"{metric}_null_lm"])
        out.insert(out.columns.get_loc(f"{metric}_net") + 1, f"{metric}_saturated",
                   out[f"{metric}_null_lm"] >= SATURATION)
    return out.reset_index()
