"""Compositions: two edges that share a node, walked one after the other.

A composition is a hop pair (v_{i-1}, l_i, v_i, l_{i+1}, v_{i+1}). In a simple graph the
two undirected edges fix it up to direction, so its key is min(e, f)·m + max(e, f) for edge
rows e, f of `ConceptGraph.edges` (m edges). A walk and its reverse use the same keys, so
a demonstration that shows a composition one way shows it both ways.

The task withholds a random share of all compositions from every demonstration
(`task.heldout_composition_fraction`). A walk that uses one composes edges in a way
training never showed, which is what combinatorial novelty counts: without withholding,
the demonstrations of a small graph cover almost every hop pair and the metric is 0.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from .graph import ConceptGraph

COLUMNS = ["u", "l1", "v", "l2", "w"]


def keys_of_hops(edge_ids: np.ndarray, num_edges: int) -> np.ndarray:
    """Keys of consecutive hop pairs of (B, H) edge rows (-1 = no hop); -1 where no pair."""
    if edge_ids.shape[1] < 2:
        return np.full((edge_ids.shape[0], 0), -1, dtype=np.int64)
    a, b = edge_ids[:, :-1], edge_ids[:, 1:]
    ok = (a >= 0) & (b >= 0)
    return np.where(ok, np.minimum(a, b) * num_edges + np.maximum(a, b), -1)


def walk_keys(graph: ConceptGraph, nodes) -> np.ndarray:
    """Composition keys of one walk given as node indices."""
    nodes = np.asarray(nodes, dtype=np.int64)
    return keys_of_hops(graph.edge_ids(nodes[:-1], nodes[1:])[None, :], len(graph.edges))[0]


def all_keys(graph: ConceptGraph, allow_revisits: bool) -> np.ndarray:
    """Every composition a walk can use; stepping back along the same edge only with revisits."""
    m = len(graph.edges)
    at_node = [[] for _ in range(graph.num_nodes)]
    for e, (u, v, _) in enumerate(graph.edges.tolist()):
        at_node[u].append(e)
        at_node[v].append(e)
    keys = [a * m + b for edges in at_node for i, a in enumerate(edges) for b in edges[i + 1:]]
    if allow_revisits:
        keys += [e * m + e for e in range(m)]
    return np.unique(np.asarray(keys, dtype=np.int64))


def withhold(graph: ConceptGraph, fraction: float, allow_revisits: bool, rng: np.random.Generator) -> np.ndarray:
    """A random `fraction` of all compositions, as sorted keys."""
    keys = all_keys(graph, allow_revisits)
    return np.sort(rng.choice(keys, size=int(round(fraction * len(keys))), replace=False))


def to_table(graph: ConceptGraph, keys: np.ndarray) -> pd.DataFrame:
    """One row (u, l1, v, l2, w) per composition, in one of its two directions."""
    m = len(graph.edges)
    rows = []
    for e, f in zip((keys // m).tolist(), (keys % m).tolist()):
        (a, b, l1), (c, d, l2) = graph.edges[e].tolist(), graph.edges[f].tolist()
        middle = b if b in (c, d) else a
        u, w = a + b - middle, c + d - middle
        rows.append([graph.nodes[u], graph.labels[l1], graph.nodes[middle], graph.labels[l2], graph.nodes[w]])
    return pd.DataFrame(rows, columns=COLUMNS)


def from_table(graph: ConceptGraph, table: pd.DataFrame) -> np.ndarray:
    index = {name: i for i, name in enumerate(graph.nodes)}
    u, v, w = (table[c].map(index).to_numpy(dtype=np.int64) for c in ("u", "v", "w"))
    e, f = graph.edge_ids(u, v), graph.edge_ids(v, w)
    if len(table) and ((e < 0) | (f < 0)).any():
        raise ValueError("the held-out compositions table names a hop that is not an edge of the graph")
    return np.sort(np.minimum(e, f) * len(graph.edges) + np.maximum(e, f))
