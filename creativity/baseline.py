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
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import sparse

from .graph import ConceptGraph
from .prompts import walk_tokens

RUN_ID, DECODING = "feasible_baseline", "uniform_feasible"


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
