"""The Bayes-optimal loss of the corpus: what a model that knew the generator would score.

The loss covers the completion of each corpus sequence. The best any model can do on a
loss token is the generator's own conditional probability of it given its prefix, so a
sequence's floor is -ln of the probability the generator gives its completion given its
prompt (the per-token conditionals multiply to it, however many tokens a node takes):

- edge line `BOS u l v EOS`: every directed edge appears edge_copies times, so given u the
  line is uniform over u's edges and costs ln deg(u) nats (EOS is then certain).
- demonstration: the generator draws a hop count h uniformly, a start, h uniform steps
  among the allowed neighbours, rejects walks that use a held-out composition, then draws
  the constraints (I, X) from the walk's labels (`prompts.constrain`). Given the prompt
  (u, v, I, X), a walk's posterior is therefore proportional to
      q(walk) · [no held-out composition] · P(I, X | the walk's labels),
  with q the product of 1/(number of allowed steps), over every walk from u to v of an
  allowed hop count. The floor is -ln of that posterior (v0 = u and EOS after v are free).
  The endpoint checks (min_endpoint_distance, withheld endpoint pairs) depend only on (u, v)
  and cancel.

The posterior's normaliser sums over every walk from u: exact by enumerating them, which is
cheap on the default graph. Where the walks to enumerate exceed EXACT_WALK_LIMIT (the
paper's graph), or the demonstrations EXACT_DEMONSTRATION_LIMIT (a large corpus), a scope's
floor is estimated from a seeded simple random sample of its demonstrations, each computed
exactly, with a 95% interval for the sampling error; edge lines are always exact.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .graph import ConceptGraph
from .prompts import Prompt

# Most walks (a bound; about 40 s of enumeration) a scope may enumerate before it is sampled instead.
EXACT_WALK_LIMIT = 100_000_000
# Most demonstrations a scope computes one by one (about 0.3 ms each) before it is sampled instead.
EXACT_DEMONSTRATION_LIMIT = 20_000
# Most partial walks held in memory at once while enumerating.
CHUNK_WALKS = 2_000_000
Z95 = 1.959963984540054

COLUMNS = ["scope", "floor", "ci_low", "ci_high", "method", "n_tokens", "n_sequences"]


class WalkPosterior:
    """The generator's distribution of a demonstration's walk given its prompt."""

    def __init__(self, graph: ConceptGraph, heldout_keys: np.ndarray, hops: tuple[int, int], allow_revisits: bool):
        if graph.num_labels > 62:
            raise ValueError(f"{graph.num_labels} labels do not fit the 63-bit label sets the floor uses")
        self.graph, self.hops, self.allow_revisits = graph, hops, allow_revisits
        self.heldout = np.sort(np.asarray(heldout_keys, dtype=np.int64))

    # --- walks one at a time ----------------------------------------------------------
    def _withheld(self, keys: np.ndarray) -> np.ndarray:
        pos = np.minimum(np.searchsorted(self.heldout, keys), max(len(self.heldout) - 1, 0))
        return (self.heldout[pos] == keys) if len(self.heldout) else np.zeros(len(keys), dtype=bool)

    def walk_log_q(self, nodes) -> float:
        """ln q(walk): the chance of its steps given its start and hop count; -inf if it
        uses a held-out composition or a step the generator cannot take."""
        g, total = self.graph, 0.0
        for t in range(len(nodes) - 1):
            options = [b for b, _ in g.neighbours[nodes[t]] if self.allow_revisits or b not in nodes[: t + 1]]
            if nodes[t + 1] not in options:
                return -math.inf
            total -= math.log(len(options))
        edges = g.edge_ids(np.asarray(nodes[:-1]), np.asarray(nodes[1:]))
        keys = np.minimum(edges[:-1], edges[1:]) * len(g.edges) + np.maximum(edges[:-1], edges[1:])
        return -math.inf if self._withheld(keys).any() else total

    def log_constraints(self, n_on: np.ndarray, prompt: Prompt) -> np.ndarray:
        """ln P(I, X | a walk with n_on distinct labels) under `prompts.constrain`, for walks
        whose labels contain I and avoid X (-inf where no such walk has n_on labels)."""
        n_c, n_inc, n_exc, L = prompt.level - 1, len(prompt.include), len(prompt.exclude), self.graph.num_labels
        table = np.full(L + 1, -np.inf)
        for on in range(L + 1):
            lo, hi = max(0, n_c - (L - on)), min(n_c, on)
            ways = (hi - lo + 1) * math.comb(on, n_inc) * math.comb(L - on, n_exc)
            if lo <= hi and ways:
                table[on] = -math.log(ways)
        return table[n_on]

    # --- every walk from a start --------------------------------------------------------
    def enumerate_walks(self, starts: np.ndarray) -> pd.DataFrame:
        """Every walk the generator can draw from `starts` with an allowed hop count and no
        held-out composition: start, end, labels (bit set) and ln q."""
        g, m = self.graph, len(self.graph.edges)
        nodes = np.asarray(starts, dtype=np.int64)[:, None]
        last_edge = np.full(len(nodes), -1)
        log_q, labels = np.zeros(len(nodes)), np.zeros(len(nodes), dtype=np.int64)
        found = []
        for hops in range(1, self.hops[1] + 1):
            which, pos = g.out_edges(nodes[:, -1])
            heads = g.directed_heads[pos]
            if not self.allow_revisits:
                fresh = ~(nodes[which] == heads[:, None]).any(axis=1)
                which, pos, heads = which[fresh], pos[fresh], heads[fresh]
            options = np.bincount(which, minlength=len(nodes))
            edge = g.directed_edge_ids[pos]
            # A first hop's key is negative (last_edge -1), so it never matches a held-out one.
            keep = ~self._withheld(np.minimum(last_edge[which], edge) * m + np.maximum(last_edge[which], edge))
            which, pos, heads, edge = which[keep], pos[keep], heads[keep], edge[keep]
            nodes = np.concatenate([nodes[which], heads[:, None]], axis=1)
            log_q = log_q[which] - np.log(options[which])
            labels = labels[which] | (np.int64(1) << g.directed_labels[pos])
            last_edge = edge
            if hops >= self.hops[0]:
                ends_away = nodes[:, 0] != heads
                found.append(pd.DataFrame({"start": nodes[ends_away, 0], "end": heads[ends_away],
                                           "labels": labels[ends_away], "log_q": log_q[ends_away]}))
        return pd.concat(found, ignore_index=True) if found else pd.DataFrame(columns=["start", "end", "labels", "log_q"])

    def walk_bound(self) -> np.ndarray:
        """Per start node, a bound on the walks `enumerate_walks` visits: walks that may
        revisit, or without revisits those that never step straight back."""
        g = self.graph
        if self.allow_revisits:
            count, total = np.ones(g.num_nodes), np.zeros(g.num_nodes)
            for _ in range(self.hops[1]):
                count = np.bincount(g.directed_tails, weights=count[g.directed_heads], minlength=g.num_nodes)
                total += count
            return total
        # Non-backtracking walks, counted per directed edge: the continuations of a -> b are
        # those of every edge leaving b except b -> a.
        back = g.edge_index(g.directed_heads, g.directed_tails)
        count, total = np.ones(len(back)), np.ones(len(back))
        for _ in range(self.hops[1] - 1):
            leaving = np.bincount(g.directed_tails, weights=count, minlength=g.num_nodes)
            count = leaving[g.directed_heads] - count[back]
            total += count
        return np.bincount(g.directed_tails, weights=total, minlength=g.num_nodes)

    # --- the floor of demonstrations ------------------------------------------------------
    def nats(self, prompts: list[Prompt]) -> np.ndarray:
        """-ln P(walk | prompt) for each demonstration (prompt with its base walk)."""
        starts = np.unique([p.start for p in prompts])
        bound = self.walk_bound()[starts]
        chunks = np.split(starts, np.flatnonzero(np.diff(np.cumsum(bound) // CHUNK_WALKS)) + 1)
        walks = pd.concat([self.enumerate_walks(c) for c in chunks if len(c)], ignore_index=True)
        walks = walks.sort_values(["start", "end"], kind="stable").reset_index(drop=True)
        key = walks["start"].to_numpy() * self.graph.num_nodes + walks["end"].to_numpy()
        labels, log_q = walks["labels"].to_numpy(), walks["log_q"].to_numpy()
        out = np.empty(len(prompts))
        for i, p in enumerate(prompts):
            lo, hi = np.searchsorted(key, p.start * self.graph.num_nodes + np.array([p.end, p.end + 1]))
            log_w = self._log_weights(labels[lo:hi], log_q[lo:hi], p)
            own = self._log_weights(np.array([_label_set(p.walk_labels)]), np.array([self.walk_log_q(p.walk_nodes)]), p)[0]
            if not np.isfinite(own) or not self.hops[0] <= len(p.walk_labels) <= self.hops[1]:
                raise ValueError(f"demonstration {p} is not a walk the generator can draw")
            out[i] = _logsumexp(log_w) - own
        return out

    def _log_weights(self, labels: np.ndarray, log_q: np.ndarray, prompt: Prompt) -> np.ndarray:
        inc, exc = _label_set(prompt.include), _label_set(prompt.exclude)
        fits = ((labels & inc) == inc) & ((labels & exc) == 0)
        return np.where(fits, log_q + self.log_constraints(np.bitwise_count(labels), prompt), -np.inf)


def _label_set(labels) -> np.int64:
    out = 0
    for l in labels:
        out |= 1 << int(l)
    return np.int64(out)


def _logsumexp(x: np.ndarray) -> float:
    top = x.max()
    return float(top + np.log(np.exp(x - top).sum()))


def edge_nats(graph: ConceptGraph, first_nodes: np.ndarray) -> np.ndarray:
    """Floor of an edge line given its first node: ln deg(u)."""
    return np.log(np.bincount(graph.directed_tails, minlength=graph.num_nodes)[np.asarray(first_nodes)])


# --- the corpus -------------------------------------------------------------------------
def loss_tokens(corpus: pd.DataFrame, tokenizer) -> np.ndarray:
    """Loss-bearing tokens of each row (a node may take several)."""
    return np.array([len(tokenizer.encode(t)) - len(tokenizer.encode(t[:s]))
                     for t, s in zip(corpus["tokens"], corpus["target_start"])], dtype=np.int64)


@dataclass(frozen=True)
class Floor:
    floor: float  # nats per loss token
    ci_low: float
    ci_high: float
    method: str  # exact | monte_carlo
    n_tokens: int
    n_sequences: int


class CorpusFloor:
    """Per-row floors of one built corpus (`nats`, NaN until computed), exact or from a
    seeded sample of demonstrations."""

    def __init__(self, posterior: WalkPosterior, corpus: pd.DataFrame, prompts: pd.DataFrame, tokenizer,
                 walk_limit: int = EXACT_WALK_LIMIT, demonstration_limit: int = EXACT_DEMONSTRATION_LIMIT):
        graph = posterior.graph
        self.posterior, self.walk_limit, self.demonstration_limit = posterior, walk_limit, demonstration_limit
        self._node = {name: i for i, name in enumerate(graph.nodes)}
        self._label = {name: i for i, name in enumerate(graph.labels)}
        self._prompts = prompts.set_index("prompt_id")
        # Row access by prompt id, without a pandas lookup per demonstration (the corpus has 1e5+).
        self._prompt_rows = dict(zip(prompts["prompt_id"], prompts[["start", "end", "include", "exclude",
                                                                      "base_walk"]].itertuples(index=False)))
        self.prompt_id = corpus["prompt_id"].to_numpy()
        self.is_demo = self.prompt_id >= 0
        # Each row's first node: an edge line's u, a demonstration's start.
        first = corpus["tokens"].str[1].where(~self.is_demo, corpus["prompt_id"].map(self._prompts["start"]))
        self.start = first.map(self._node).to_numpy()
        self.tokens = loss_tokens(corpus, tokenizer)
        self.nats = np.where(self.is_demo, np.nan, edge_nats(graph, self.start))
        self._bound = posterior.walk_bound()

    def prompt(self, row: int) -> Prompt:
        """Row `row`'s demonstration as a Prompt with its walk."""
        p = self._prompt_rows[self.prompt_id[row]]
        walk, node, label = list(p.base_walk), self._node, self._label
        return Prompt(node[p.start], node[p.end], tuple(label[l] for l in p.include),
                      tuple(label[l] for l in p.exclude), tuple(node[v] for v in walk[0::2]),
                      tuple(label[l] for l in walk[1::2]))

    def cost(self, rows) -> float:
        """Walks (a bound) that enumerating the demonstrations among `rows` visits."""
        rows = np.asarray(rows, dtype=np.int64)
        return float(self._bound[np.unique(self.start[rows[self.is_demo[rows]]])].sum())

    def compute(self, rows) -> None:
        """Fill in the exact floor of the demonstrations among `rows`."""
        rows = [int(r) for r in rows if self.is_demo[r] and np.isnan(self.nats[r])]
        if rows:
            self.nats[rows] = self.posterior.nats([self.prompt(r) for r in rows])

    def scope(self, rows, seed: int) -> Floor:
        """The floor of `rows` in nats per loss token: exact when enumerating them is cheap,
        else a seeded simple random sample of their demonstrations (edge lines exact) with
        a 95% interval from the sample's variance."""
        rows = np.asarray(rows, dtype=np.int64)
        n_tokens = int(self.tokens[rows].sum())
        if self.cost(rows) <= self.walk_limit and self.is_demo[rows].sum() <= self.demonstration_limit:
            self.compute(rows)
            floor = float(self.nats[rows].sum() / n_tokens)
            return Floor(floor, floor, floor, "exact", n_tokens, len(rows))
        demos, edges = rows[self.is_demo[rows]], rows[~self.is_demo[rows]]
        order = np.random.default_rng([seed, 0xF100]).permutation(demos)
        spent = np.cumsum(self._bound[self.start[order]])  # a start counted once per draw: a bound
        size = min(int(np.searchsorted(spent, self.walk_limit, side="right")), self.demonstration_limit)
        sample = order[: max(2, size)]
        self.compute(sample)
        return monte_carlo_floor(self.nats[edges].sum(), self.nats[sample], len(demos), n_tokens, len(rows))


def monte_carlo_floor(exact_nats: float, sample_nats: np.ndarray, population: int, n_tokens: int,
                      n_sequences: int) -> Floor:
    """Floor from exactly known nats plus a simple random sample (without replacement) of
    `population` demonstrations' nats; the interval is the estimator's normal 95% interval
    with the finite-population correction."""
    n = len(sample_nats)
    total = exact_nats + population * sample_nats.mean()
    var = population**2 * (1 - n / population) * sample_nats.var(ddof=1) / n
    half = Z95 * math.sqrt(var) / n_tokens
    floor = total / n_tokens
    return Floor(floor, floor - half, floor + half, "monte_carlo", n_tokens, n_sequences)


def loss_floor_table(floors: dict[str, Floor]) -> pd.DataFrame:
    return pd.DataFrame([{"scope": scope, **vars(f)} for scope, f in floors.items()], columns=COLUMNS)
