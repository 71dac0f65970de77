"""Prompts x = (u, v, I, X) built from sampled base walks.

A prompt of utility level k carries k - 1 constraints. Inclusion labels come
from the labels on its base walk and exclusion labels from labels not on it,
so the base walk satisfies the prompt: every prompt is satisfiable by
construction. Every prompt's endpoints lie at least `min_endpoint_distance`
hops apart, so a single edge never answers one.

Three splits, drawn in this order:
- test: base walks of min_hops..max_hops hops, `test_per_level` per level;
- ood: base walks of max_hops+1..ood_max_hops hops whose *shortest* solution is
  longer than max_hops, the longest demonstration; levels as they come;
- train (demonstrations): like test, but rejected when the endpoint pair {u, v}
  belongs to a test or ood prompt, or when the walk uses a held-out composition.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .compositions import walk_keys
from .graph import ConceptGraph


@dataclass(frozen=True)
class PromptSpec:
    levels: int  # utility levels 1..levels
    test_per_level: int
    train_per_level: int
    min_hops: int
    max_hops: int
    allow_revisits: bool
    min_endpoint_distance: int
    ood_prompts: int
    ood_max_hops: int
    seed: int


@dataclass(frozen=True)
class Prompt:
    start: int
    end: int
    include: tuple[int, ...]
    exclude: tuple[int, ...]
    walk_nodes: tuple[int, ...]  # v0 .. vh
    walk_labels: tuple[int, ...]  # l1 .. lh

    @property
    def level(self) -> int:
        return len(self.include) + len(self.exclude) + 1


class TaskTooHardError(ValueError):
    """The graph cannot supply the requested prompts (too sparse, too few labels)."""


def sample_walk(graph: ConceptGraph, starts: np.ndarray, hops: int, allow_revisits: bool, rng: np.random.Generator):
    """A random walk of exactly `hops` hops from one of `starts`, ending away from its start, or None."""
    node = int(starts[rng.integers(len(starts))])
    nodes, labels = [node], []
    for _ in range(hops):
        options = graph.neighbours[node]
        if not allow_revisits:
            options = [(b, l) for b, l in options if b not in nodes]
        if not options:
            return None
        node, label = options[rng.integers(len(options))]
        nodes.append(node)
        labels.append(label)
    if nodes[-1] == nodes[0]:
        return None
    return tuple(nodes), tuple(labels)


def constrain(walk, level: int, num_labels: int, rng: np.random.Generator) -> Prompt | None:
    """Attach level-1 constraints to a base walk, or None if it cannot carry them."""
    nodes, labels = walk
    on_walk = sorted(set(labels))
    off_walk = [l for l in range(num_labels) if l not in set(labels)]
    n_constraints = level - 1
    lo, hi = max(0, n_constraints - len(off_walk)), min(n_constraints, len(on_walk))
    if lo > hi:
        return None
    n_include = int(rng.integers(lo, hi + 1))
    include = tuple(sorted(rng.choice(on_walk, size=n_include, replace=False).tolist()))
    exclude = tuple(sorted(rng.choice(off_walk, size=n_constraints - n_include, replace=False).tolist()))
    return Prompt(nodes[0], nodes[-1], include, exclude, nodes, labels)


def near(graph: ConceptGraph, u: int, v: int, distance: int) -> bool:
    """Whether v lies fewer than `distance` hops from u."""
    ball, frontier = {u}, {u}
    for _ in range(distance - 1):
        frontier = {b for a in frontier for b, _ in graph.neighbours[a]} - ball
        ball |= frontier
    return v in ball


def shortest_solution(graph: ConceptGraph, prompt: Prompt, limit: int) -> int | None:
    """Fewest hops of a walk that answers `prompt`, or None if more than `limit`.

    A breadth-first search over (node, included labels seen) that ignores revisits:
    it relaxes the task, so None proves that no answer has `limit` hops or fewer.
    """
    masks = 1 << len(prompt.include)
    bit = np.zeros(graph.num_labels, dtype=np.int64)
    bit[list(prompt.include)] = 1 << np.arange(len(prompt.include))
    usable = ~np.isin(graph.directed_labels, list(prompt.exclude))
    seen = np.zeros(graph.num_nodes * masks, dtype=bool)
    frontier = np.array([prompt.start * masks])  # state code: node * masks + included labels seen
    seen[frontier] = True
    goal = prompt.end * masks + masks - 1
    for hops in range(1, limit + 1):
        which, edge = graph.out_edges(frontier // masks)
        keep = usable[edge]
        states = graph.directed_heads[edge] * masks + (frontier[which] % masks | bit[graph.directed_labels[edge]])
        frontier = np.unique(states[keep])
        frontier = frontier[~seen[frontier]]
        seen[frontier] = True
        if seen[goal]:
            return hops
    return None


def demonstration_hops(spec: PromptSpec) -> tuple[int, int]:
    """Fewest and most hops of a test prompt's or a demonstration's base walk (drawn uniformly)."""
    return max(spec.min_hops, spec.min_endpoint_distance), spec.max_hops


def _draw(graph, spec, levels, count, hops_range, rng, what, keep_walk=None, keep_prompt=None) -> list[Prompt]:
    """`count` prompts, each at a level drawn from `levels`, built from walks that `keep_walk`
    keeps, kept where `keep_prompt` keeps them."""
    prompts: list[Prompt] = []
    max_attempts = 200 * count + 1000
    starts = np.flatnonzero([len(nb) > 0 for nb in graph.neighbours])
    for _ in range(max_attempts if len(starts) and count else 0):
        if len(prompts) == count:
            return prompts
        hops = int(rng.integers(hops_range[0], hops_range[1] + 1))
        walk = sample_walk(graph, starts, hops, spec.allow_revisits, rng)
        if walk is None or near(graph, walk[0][0], walk[0][-1], spec.min_endpoint_distance):
            continue
        if keep_walk and not keep_walk(walk):
            continue
        prompt = constrain(walk, levels[rng.integers(len(levels))], graph.num_labels, rng)
        if prompt is not None and (keep_prompt is None or keep_prompt(prompt)):
            prompts.append(prompt)
    if len(prompts) == count:
        return prompts
    raise TaskTooHardError(
        f"could only build {len(prompts)} of {count} {what} prompts at levels {levels} "
        f"after {max_attempts} attempts: the graph is too sparse or has too few labels for "
        f"hops {hops_range[0]}..{hops_range[1]} (task.min_hops={spec.min_hops}, task.max_hops={spec.max_hops}, "
        f"task.ood_max_hops={spec.ood_max_hops}) with endpoints task.min_endpoint_distance={spec.min_endpoint_distance} "
        f"apart (graph.mean_degree / graph.num_labels / task.levels)"
    )


@dataclass(frozen=True)
class PromptSets:
    test: list[Prompt]
    ood: list[Prompt]
    train: list[Prompt]


def build_prompts(graph: ConceptGraph, spec: PromptSpec, heldout=np.empty(0, dtype=np.int64)) -> PromptSets:
    """Test prompts balanced over levels, ood prompts, and demonstrations balanced over levels
    that avoid the test and ood endpoint pairs and the `heldout` composition keys."""
    rng = np.random.default_rng(spec.seed)
    hops = demonstration_hops(spec)
    if hops[0] > hops[1]:
        raise TaskTooHardError(f"task.min_endpoint_distance={spec.min_endpoint_distance} exceeds task.max_hops={spec.max_hops}")
    if spec.ood_prompts and spec.ood_max_hops <= spec.max_hops:
        raise TaskTooHardError(f"task.ood_max_hops={spec.ood_max_hops} must exceed task.max_hops={spec.max_hops}")
    levels = list(range(1, spec.levels + 1))
    test = [p for k in levels for p in _draw(graph, spec, [k], spec.test_per_level, hops, rng, "test")]
    ood = _draw(graph, spec, levels, spec.ood_prompts, (spec.max_hops + 1, spec.ood_max_hops), rng, "ood",
                keep_prompt=lambda p: shortest_solution(graph, p, spec.max_hops) is None)
    taken = {frozenset((p.start, p.end)) for p in test + ood}
    withheld = set(np.asarray(heldout).tolist())

    def demonstrable(walk):
        nodes = walk[0]
        return frozenset((nodes[0], nodes[-1])) not in taken and withheld.isdisjoint(walk_keys(graph, nodes).tolist())

    train = [p for k in levels for p in _draw(graph, spec, [k], spec.train_per_level, hops, rng, "training",
                                              keep_walk=demonstrable)]
    return PromptSets(test, ood, train)


def walk_tokens(graph: ConceptGraph, nodes, labels) -> list[str]:
    out = [graph.nodes[nodes[0]]]
    for l, v in zip(labels, nodes[1:]):
        out += [graph.labels[l], graph.nodes[v]]
    return out


def prompts_table(graph: ConceptGraph, sets: PromptSets) -> pd.DataFrame:
    rows = []
    for split, prompts in (("train", sets.train), ("test", sets.test), ("ood", sets.ood)):
        for p in prompts:
            rows.append(
                {
                    "prompt_id": len(rows),
                    "split": split,
                    "start": graph.nodes[p.start],
                    "end": graph.nodes[p.end],
                    "include": [graph.labels[l] for l in p.include],
                    "exclude": [graph.labels[l] for l in p.exclude],
                    "level": p.level,
                    "base_walk": walk_tokens(graph, p.walk_nodes, p.walk_labels),
                }
            )
    return pd.DataFrame(rows)
