"""The labelled concept graph G = (V, E, Σ).

An Erdős–Rényi-like random graph: the requested number of undirected edges is
drawn uniformly from all node pairs, and each edge gets one label drawn from
Zipf-like weights p_k ∝ k^(-s), so label rarity carries signal for novelty.
"""
from __future__ import annotations

import itertools
import string
from dataclasses import dataclass

import numpy as np
import pandas as pd


NODE_SYMBOLS = string.ascii_lowercase + string.digits  # the alphabet of multi-token node names


def node_names(n: int, node_tokens: int = 1) -> list[str]:
    """Names of n concepts.

    node_tokens = 1: three-letter lowercase names, as in the paper (26^3 = 17,576), each one token.
    node_tokens = k > 1: strings of k symbols, one token per symbol, drawn from the smallest
    alphabet with at least 2n spellings, so at least half of all k-symbol spellings name no
    node and a model that spells a name symbol by symbol can hallucinate one. Which spellings
    are nodes is a fixed shuffle (not the config seed), so the names follow from (n, k) alone.
    """
    if node_tokens == 1:
        if n > 26**3:
            raise ValueError(f"graph.num_nodes={n} exceeds the 17,576 three-letter names")
        names = ("".join(t) for t in itertools.product(string.ascii_lowercase, repeat=3))
        return list(itertools.islice(names, n))
    size = next(a for a in itertools.count(2) if a**node_tokens >= 2 * n)
    if size > len(NODE_SYMBOLS):
        raise ValueError(f"graph.num_nodes={n} needs {size} symbols per node token; task.node_tokens={node_tokens} allows "
                         f"at most {len(NODE_SYMBOLS)}: raise task.node_tokens")
    chosen = np.random.default_rng(0).permutation(size**node_tokens)[:n]
    digits = (chosen[:, None] // size ** np.arange(node_tokens - 1, -1, -1)) % size
    return ["".join(NODE_SYMBOLS[d] for d in row) for row in digits]


def label_names(k: int) -> list[str]:
    """Upper-case names R0, R1, ... so labels never collide with node names."""
    return [f"R{i}" for i in range(k)]


@dataclass
class ConceptGraph:
    nodes: list[str]
    labels: list[str]
    edges: np.ndarray  # (m, 3) int64: u, v, label index; u < v; one row per undirected edge

    def __post_init__(self):
        n = len(self.nodes)
        u, v, lab = self.edges[:, 0], self.edges[:, 1], self.edges[:, 2]
        # Both directions, keyed u*n+v and sorted, so edge look-ups vectorise with searchsorted.
        keys = np.concatenate([u * n + v, v * n + u])
        labs = np.concatenate([lab, lab])
        order = np.argsort(keys, kind="stable")
        self.directed_keys = keys[order]
        self.directed_labels = labs[order]
        self.directed_edge_ids = order % max(len(self.edges), 1)  # row of `edges` each directed edge comes from
        self.directed_tails, self.directed_heads = self.directed_keys // n, self.directed_keys % n
        self.out_start = np.searchsorted(self.directed_tails, np.arange(n + 1))  # node i's out-edges start here
        self.neighbours: list[list[tuple[int, int]]] = [[] for _ in range(n)]
        for a, b, l in self.edges.tolist():
            self.neighbours[a].append((b, l))
            self.neighbours[b].append((a, l))

    @property
    def num_nodes(self) -> int:
        return len(self.nodes)

    @property
    def num_labels(self) -> int:
        return len(self.labels)

    @property
    def label_weights(self) -> np.ndarray:
        """w(l): the label's share of all edges (unused labels get share 0)."""
        counts = np.bincount(self.edges[:, 2], minlength=self.num_labels)
        return counts / max(len(self.edges), 1)

    def edge_index(self, u: np.ndarray, v: np.ndarray) -> np.ndarray:
        """Position of directed edge (u, v) in `directed_keys`, or -1 if absent."""
        keys = np.asarray(u, dtype=np.int64) * self.num_nodes + np.asarray(v, dtype=np.int64)
        pos = np.searchsorted(self.directed_keys, keys)
        pos = np.minimum(pos, len(self.directed_keys) - 1)
        found = self.directed_keys[pos] == keys
        return np.where(found, pos, -1)

    def out_edges(self, nodes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Every directed edge leaving `nodes`: (index into `nodes` it leaves, its position)."""
        nodes = np.asarray(nodes, dtype=np.int64)
        counts = self.out_start[nodes + 1] - self.out_start[nodes]
        which = np.repeat(np.arange(len(nodes)), counts)
        offset = np.arange(len(which)) - np.repeat(np.cumsum(counts) - counts, counts)
        return which, self.out_start[nodes][which] + offset

    def edge_ids(self, u, v) -> np.ndarray:
        """Row of `edges` holding the undirected edge u–v, or -1 where there is none."""
        idx = self.edge_index(u, v)
        return np.where(idx >= 0, self.directed_edge_ids[np.maximum(idx, 0)], -1)

    def edge_label(self, u, v) -> np.ndarray:
        """Label index of edge (u, v), or -1 where there is no such edge."""
        idx = self.edge_index(u, v)
        return np.where(idx >= 0, self.directed_labels[np.maximum(idx, 0)], -1)

    # --- tables ------------------------------------------------------------
    def edges_table(self) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "u": [self.nodes[i] for i in self.edges[:, 0]],
                "v": [self.nodes[i] for i in self.edges[:, 1]],
                "label": [self.labels[i] for i in self.edges[:, 2]],
            }
        )

    def labels_table(self) -> pd.DataFrame:
        return pd.DataFrame({"label": self.labels, "weight": self.label_weights})

    @classmethod
    def from_tables(cls, edges: pd.DataFrame, labels: pd.DataFrame, num_nodes: int, node_tokens: int = 1) -> "ConceptGraph":
        nodes = node_names(num_nodes, node_tokens)
        node_ix = {s: i for i, s in enumerate(nodes)}
        label_list = list(labels["label"])
        label_ix = {s: i for i, s in enumerate(label_list)}
        arr = np.array(
            [[node_ix[a], node_ix[b], label_ix[l]] for a, b, l in edges[["u", "v", "label"]].itertuples(index=False)],
            dtype=np.int64,
        ).reshape(-1, 3)
        return cls(nodes=nodes, labels=label_list, edges=arr)


def zipf_weights(num_labels: int, exponent: float) -> np.ndarray:
    w = np.arange(1, num_labels + 1, dtype=float) ** (-exponent)
    return w / w.sum()


def random_graph(num_nodes: int, num_labels: int, mean_degree: float, zipf_exponent: float, seed: int,
                 node_tokens: int = 1) -> ConceptGraph:
    """Seeded random labelled graph with round(n·deg/2) distinct undirected edges."""
    rng = np.random.default_rng(seed)
    num_pairs = num_nodes * (num_nodes - 1) // 2
    num_edges = int(round(num_nodes * mean_degree / 2))
    if not 0 < num_edges <= num_pairs:
        raise ValueError(
            f"graph.mean_degree={mean_degree} asks for {num_edges} edges; "
            f"{num_nodes} nodes allow 1..{num_pairs}"
        )
    # Rejection-sample distinct pairs: memory stays O(edges) even for the paper's 17.6k nodes.
    n = num_nodes
    keys = np.empty(0, dtype=np.int64)
    while len(keys) < num_edges:
        a = rng.integers(0, n, size=2 * (num_edges - len(keys)) + 16)
        b = rng.integers(0, n, size=len(a))
        a, b = np.minimum(a, b), np.maximum(a, b)
        new_keys = (a * n + b)[a != b]
        _, first = np.unique(new_keys, return_index=True)  # keep the draw order reproducible
        new_keys = new_keys[np.sort(first)]
        keys = np.concatenate([keys, new_keys[~np.isin(new_keys, keys)]])
    keys = np.sort(keys[:num_edges])
    u, v = keys // n, keys % n
    lab = rng.choice(num_labels, size=num_edges, p=zipf_weights(num_labels, zipf_exponent))
    edges = np.stack([u, v, lab], axis=1).astype(np.int64)
    return ConceptGraph(nodes=node_names(num_nodes, node_tokens), labels=label_names(num_labels), edges=edges)
