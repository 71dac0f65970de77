"""Prompts x = (u, v, I, X) built from sampled base walks.

A prompt of utility level k carries k - 1 constraints. Inclusion labels come
from the labels on its base walk and exclusion labels from labels not on it,
so the base walk satisfies the prompt: every prompt is satisfiable by
construction. Test prompts are drawn first; a demonstration is rejected when
its unordered endpoint pair {u, v} belongs to any test prompt, so the test
endpoint pairs are held out from the demonstrations.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .graph import ConceptGraph


@dataclass(frozen=True)
class PromptSpec:
    levels: int  # utility levels 1..levels
    test_per_level: int
    train_per_level: int
    min_hops: int
    max_hops: int
    allow_revisits: bool
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


def _draw(graph, spec, level, count, rng, forbidden_pairs, what) -> list[Prompt]:
    prompts: list[Prompt] = []
    max_attempts = 200 * count + 1000
    starts = np.flatnonzero([len(nb) > 0 for nb in graph.neighbours])
    for _ in range(max_attempts if len(starts) else 0):
        if len(prompts) == count:
            return prompts
        hops = int(rng.integers(spec.min_hops, spec.max_hops + 1))
        walk = sample_walk(graph, starts, hops, spec.allow_revisits, rng)
        if walk is None:
            continue
        if frozenset((walk[0][0], walk[0][-1])) in forbidden_pairs:
            continue
        prompt = constrain(walk, level, graph.num_labels, rng)
        if prompt is not None:
            prompts.append(prompt)
    raise TaskTooHardError(
        f"could only build {len(prompts)} of {count} {what} prompts at level {level} "
        f"after {max_attempts} attempts: the graph is too sparse or has too few labels for "
        f"task.min_hops={spec.min_hops}..task.max_hops={spec.max_hops} with "
        f"{level - 1} constraints (graph.mean_degree / graph.num_labels / task.levels)"
    )


def build_prompts(graph: ConceptGraph, spec: PromptSpec) -> tuple[list[Prompt], list[Prompt]]:
    """(test prompts, training demonstrations), each balanced over levels."""
    rng = np.random.default_rng(spec.seed)
    test = [p for k in range(1, spec.levels + 1) for p in _draw(graph, spec, k, spec.test_per_level, rng, set(), "test")]
    held_out = {frozenset((p.start, p.end)) for p in test}
    train = [
        p for k in range(1, spec.levels + 1)
        for p in _draw(graph, spec, k, spec.train_per_level, rng, held_out, "training")
    ]
    return test, train


def walk_tokens(graph: ConceptGraph, nodes, labels) -> list[str]:
    out = [graph.nodes[nodes[0]]]
    for l, v in zip(labels, nodes[1:]):
        out += [graph.labels[l], graph.nodes[v]]
    return out


def prompts_table(graph: ConceptGraph, test: list[Prompt], train: list[Prompt]) -> pd.DataFrame:
    rows = []
    for split, prompts in (("train", train), ("test", test)):
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
