"""The feasible-set null: walks drawn uniformly from those that answer a prompt.

For a prompt (u, v, I, X) the feasible set is every walk from u to v of at most
`max_hops` hops that uses every label of I, none of X, and (where revisits are
forbidden) no node twice. Scored like a model's samples, it shows what the prompt
generator alone does to novelty as the utility level rises.

Sampling is exact, not enumerated. A dynamic programme over (directed edge just
walked, included labels seen so far) counts, for every remaining hop count, the
walks that finish feasibly; drawing each next edge in proportion to those counts
gives every counted walk the same probability. The counted walks never step
straight back along the edge they came by. Where revisits are forbidden, the walks
that still revisit a node (around a cycle) are rejected, which leaves the draw
uniform over the simple ones; where revisits are allowed, stepping back is counted too.

The walks are capped at `max_hops` = task.max_answer_hops (ANSWER_HOP_MARGIN past the
longest base walk: 10 hops by default), the most a generated walk can have. Most
feasible walks are long, so most of the null's walks sit at the cap (about 70% at 10
hops by default, where models walk about 4): the metrics table records the cap in its
`hop_cap` column. The length-matched null (length_control.py) draws walks of one exact
hop count from the same counts (`FeasibleWalks.walks_of_hops`).
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import sparse

from .graph import ConceptGraph
from .prompts import walk_tokens

RUN_ID, DECODING = "feasible_baseline", "uniform_feasible"
REJECTION_ROUNDS = 50  # batches of draws walks_of_hops makes before it settles for fewer simple walks


class FeasibleWalks:
    """The transition structure between directed edges of one graph, shared by all prompts."""

    def __init__(self, graph: ConceptGraph, allow_revisits: bool):
        self.graph, self.allow_revisits = graph, allow_revisits
        n, keys = graph.num_nodes, graph.directed_keys
        self.head, self.label = graph.directed_heads, graph.directed_labels
        reverse = np.searchsorted(keys, self.head * n + graph.directed_tails)
        rows, cols = graph.out_edges(self.head)  # edge rows[i] may be followed by edge cols[i]
        if not allow_revisits:
            rows, cols = rows[cols != reverse[rows]], cols[cols != reverse[rows]]
        self.step = sparse.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(len(keys), len(keys)))
        # next_edges[e]: the edges that may follow e, padded with -1, so a batch of walks steps at once
        degree = np.diff(self.step.indptr)
        self.next_edges = np.full((len(keys), max(degree.max(initial=0), 1)), -1, dtype=np.int64)
        self.next_edges[np.repeat(np.arange(len(keys)), degree), np.arange(len(rows)) - np.repeat(
            self.step.indptr[:-1], degree)] = self.step.indices

    def _counts(self, end: int, include, exclude, max_hops: int):
        """counts[r][e, mask]: walks of r more hops after edge e that end at `end` feasibly."""
        bit = np.zeros(len(self.label), dtype=np.int64)
        for i, l in enumerate(include):
            bit[self.label == l] = 1 << i
        allowed = ~np.isin(self.label, list(exclude))
        full, masks = (1 << len(include)) - 1, np.arange(1 << len(include))
        n = np.zeros((len(self.label), len(masks)))
        n[self.head == end, full] = 1.0
        counts = [n]
        for _ in range(max_hops - 1):
            gathered = counts[-1][np.arange(len(bit))[:, None], masks[None, :] | bit[:, None]] * allowed[:, None]
            counts.append(np.asarray(self.step @ gathered))
        return counts, bit, allowed

    def sample(self, start: int, end: int, include, exclude, max_hops: int, k: int, rng: np.random.Generator):
        """k walks, each a node list, drawn uniformly from the feasible set."""
        counts, bit, allowed = self._counts(end, include, exclude, max_hops)
        first = self.graph.out_edges(np.array([start]))[1]
        first = first[allowed[first]]
        # by_hops[h - 1, i]: feasible walks of h hops whose first edge is first[i]
        by_hops = np.array([c[first, bit[first]] for c in counts]).reshape(max_hops, len(first))
        if by_hops.sum() == 0:
            raise ValueError(f"no walk of at most {max_hops} hops answers the prompt from node {start} to {end}")
        flat = by_hops.ravel() / by_hops.sum()
        walks = []
        for _ in range(1000 * k):
            if len(walks) == k:
                return walks
            more, i = divmod(int(rng.choice(len(flat), p=flat)), len(first))  # hops after the first
            edge, mask = first[i], bit[first[i]]
            nodes = [start, self.head[edge]]
            for remaining in range(more - 1, -1, -1):
                nxt = self.step.indices[self.step.indptr[edge]: self.step.indptr[edge + 1]]
                weight = counts[remaining][nxt, mask | bit[nxt]] * allowed[nxt]
                edge = nxt[rng.choice(len(nxt), p=weight / weight.sum())]
                mask |= bit[edge]
                nodes.append(self.head[edge])
            if self.allow_revisits or len(set(nodes)) == len(nodes):
                walks.append([int(x) for x in nodes])
        if len(walks) < k:
            raise ValueError(f"drew {len(walks)} of {k} walks from node {start} to {end} without a revisit "
                             f"in {1000 * k} tries: almost every counted walk revisits a node")
        return walks

    def walks_of_hops(self, start: int, end: int, include, exclude, hops: int, k: int, rng: np.random.Generator,
                      enumerate_max: int) -> tuple[np.ndarray, bool]:
        """Walks of exactly `hops` hops that answer (start, end, include, exclude), as rows of
        hops + 1 node indices, and whether the rows are the whole set.

        Where at most `enumerate_max` walks are counted, every one of them (exact). Otherwise
        up to k drawn uniformly with replacement: batches of k are drawn and those that revisit
        a node are rejected, for at most REJECTION_ROUNDS batches. Empty where none exists."""
        counts, bit, allowed = self._counts(end, include, exclude, hops)
        first = self.graph.out_edges(np.array([start]))[1]
        first = first[allowed[first]]
        weight = counts[hops - 1][first, bit[first]]
        if weight.sum() <= enumerate_max:
            nodes = self._enumerate(start, first[weight > 0], counts, bit, allowed)
            return nodes, True
        found, size = [], 0
        for _ in range(REJECTION_ROUNDS):
            edge = first[rng.choice(len(first), size=k, p=weight / weight.sum())]
            nodes = self._extend(start, edge, counts, bit, allowed, rng)
            found.append(nodes)
            size += len(nodes)
            if size >= k:
                break
        return np.concatenate(found)[:k], False

    def _successors(self, edge, mask, remaining, counts, bit, allowed):
        """(B, D) the edges that may follow each `edge` and the feasible completions of each."""
        nxt = self.next_edges[edge]
        safe = np.maximum(nxt, 0)
        weight = counts[remaining][safe, mask[:, None] | bit[safe]] * allowed[safe] * (nxt >= 0)
        return nxt, weight

    def _extend(self, start, edge, counts, bit, allowed, rng) -> np.ndarray:
        """Complete walks whose first edges are `edge`, each next edge drawn in proportion to its
        completions (uniform over counted walks); drop those that revisit a node."""
        mask, nodes = bit[edge], [np.full(len(edge), start), self.head[edge]]
        for remaining in range(len(counts) - 2, -1, -1):
            nxt, weight = self._successors(edge, mask, remaining, counts, bit, allowed)
            cum = np.cumsum(weight, axis=1)
            pick = (cum <= rng.random(len(edge))[:, None] * cum[:, -1:]).sum(axis=1)  # first cum above the draw
            edge = nxt[np.arange(len(edge)), pick]
            mask = mask | bit[edge]
            nodes.append(self.head[edge])
        return self._simple(np.stack(nodes, axis=1))

    def _enumerate(self, start, first, counts, bit, allowed) -> np.ndarray:
        """Every counted walk with one of the first edges `first`, as rows of nodes; drop revisits."""
        edge, mask, nodes = first, bit[first], np.stack([np.full(len(first), start), self.head[first]], axis=1)
        for remaining in range(len(counts) - 2, -1, -1):
            nxt, weight = self._successors(edge, mask, remaining, counts, bit, allowed)
            row, col = np.nonzero(weight > 0)
            edge, mask = nxt[row, col], mask[row] | bit[nxt[row, col]]
            nodes = np.concatenate([nodes[row], self.head[edge][:, None]], axis=1)
        return self._simple(nodes)

    def _simple(self, nodes: np.ndarray) -> np.ndarray:
        if self.allow_revisits or nodes.shape[1] < 2:
            return nodes
        s = np.sort(nodes, axis=1)
        return nodes[~(s[:, 1:] == s[:, :-1]).any(axis=1)]


def baseline_samples(graph: ConceptGraph, prompts: pd.DataFrame, max_hops: int, allow_revisits: bool, k: int,
                     seed: int) -> pd.DataFrame:
    """k uniform feasible walks for every prompt outside the training split, in columns of a
    run's raw samples (models/experiment.py SAMPLE_COLUMNS; the rule fills the rest with NaN)."""
    rng = np.random.default_rng(seed)
    feasible = FeasibleWalks(graph, allow_revisits)
    node_ix = {n: i for i, n in enumerate(graph.nodes)}
    label_ix = {l: i for i, l in enumerate(graph.labels)}
    rows = []
    for p in prompts[prompts["split"] != "train"].itertuples(index=False):
        walks = feasible.sample(node_ix[p.start], node_ix[p.end], [label_ix[l] for l in p.include],
                                [label_ix[l] for l in p.exclude], max_hops, k, rng)
        for i, nodes in enumerate(walks):
            labels = graph.edge_label(np.array(nodes[:-1]), np.array(nodes[1:])).tolist()
            rows.append({
                "run_id": RUN_ID, "decoding": DECODING, "prompt_id": int(p.prompt_id), "sample_index": i,
                "walk": walk_tokens(graph, nodes, labels), "mean_logprob": np.nan, "mean_energy": np.nan,
                "energy_by_step": [],
            })
    return pd.DataFrame(rows)
