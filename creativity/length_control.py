"""Novelty with walk length controlled, and the length-matched null.

The paper's novelty N = alpha_hops·hops + alpha_rarity·(mean label surprisal) grows by one
unit a hop, while the surprisal part spans only a few units, so among valid walks N is
almost a hop count (corr(N, hops) is about 0.98 in a default run). Both quantities here
compare a walk with the walks that answer the same prompt in the same number of hops.

Reference set R(p, h) of prompt p = (u, v, I, X) and hop count h: the walks of exactly h
hops from u to v that use every label of I, none of X and (unless task.allow_revisits)
no node twice, i.e. the feasible walks of p with h hops. A valid walk that breaks a
constraint may have a hop count no feasible walk has; its R(p, h) is then the walks of h
hops from u to v with the constraints dropped (it holds the walk itself), and the row's
`reference_relaxed` says so. A correct walk is always in its own feasible R(p, h).
R(p, h) is exact (every walk) where at most REFERENCE_WALKS walks are counted, and
otherwise REFERENCE_WALKS uniform draws (baseline.FeasibleWalks.walks_of_hops), from a
generator seeded by (seed, prompt id, h): the same set in every run.

novelty_lc, the length-controlled novelty of a valid walk: its mid-rank among R(p, h) by N,
    P(N' < N) + ½·P(N' = N) for N' the novelty of a walk drawn uniformly from R(p, h).
    Within one (p, h) the hop term of N is a constant, so only label rarity ranks walks,
    and a uniform walk of R(p, h) has novelty_lc of mean ½ whatever h is: it cannot grow
    with length. A rank, not the difference N - mean N', because then an invalid output
    (novelty_lc 0 in creativity_lc) would tie with a walk of average rarity; on a rank,
    0 is the least novel a walk can be. NaN for an invalid walk.
creativity_lc = U·novelty_lc, 0 for a walk that is not correct (U = 0), like C = U·N.

The length-matched null: for every valid walk of a model, one walk drawn uniformly from
its R(p, h); so the null has the model's hop counts, walk for walk. `length_matched_null`
returns these walks scored like samples; `score_run` attaches the null walk's novelty,
copy flag and combinatorial novelty to each valid sample (columns *_null_lm), from which
metrics report copy_rate_null_lm, copy_rate_net = copy_rate - copy_rate_null_lm and the
same for combinatorial_novelty. Where the null's value is >= scoring.SATURATION the metric
cannot tell a model from a uniform walker of its length; the metrics flag it (*_saturated).
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from .baseline import FeasibleWalks
from .evaluate import score_samples
from .prompts import walk_tokens
from .scoring import Scorer

REFERENCE_WALKS = 128  # walks per reference set R(p, h): all of them where there are at most this many


class References:
    """The reference sets R(p, h) of one task (module docstring), built on first use."""

    def __init__(self, scorer: Scorer, prompts: pd.DataFrame, seed: int):
        self.scorer, self.seed = scorer, seed
        self.feasible = FeasibleWalks(scorer.graph, scorer.allow_revisits)
        graph = scorer.graph
        node_ix = {n: i for i, n in enumerate(graph.nodes)}
        label_ix = {l: i for i, l in enumerate(graph.labels)}
        self.prompts = {
            int(p.prompt_id): (node_ix[p.start], node_ix[p.end], [label_ix[l] for l in p.include],
                               [label_ix[l] for l in p.exclude])
            for p in prompts.itertuples(index=False)
        }
        self._sets: dict[tuple[int, int], tuple[np.ndarray, np.ndarray, bool]] = {}

    def get(self, prompt_id: int, hops: int) -> tuple[np.ndarray, np.ndarray, bool]:
        """(walks as rows of hops + 1 nodes, their novelty N, whether the constraints were dropped)."""
        key = (int(prompt_id), int(hops))
        if key not in self._sets:
            start, end, include, exclude = self.prompts[key[0]]
            rng = np.random.default_rng([self.seed, *key])
            walks, relaxed = self._draw(start, end, include, exclude, hops, rng), False
            if len(walks) == 0:
                walks, relaxed = self._draw(start, end, [], [], hops, rng), True
            self._sets[key] = (walks, self.scorer.path_novelty(walks), relaxed)
        return self._sets[key]

    def _draw(self, start, end, include, exclude, hops, rng) -> np.ndarray:
        return self.feasible.walks_of_hops(start, end, include, exclude, hops, REFERENCE_WALKS, rng,
                                           enumerate_max=REFERENCE_WALKS)[0]


def mid_rank(value: float, reference: np.ndarray) -> float:
    """P(X < value) + ½·P(X = value) over the reference values (NaN if there are none).
    Values within 1e-9 tie: the same labels summed in another order differ by rounding."""
    if len(reference) == 0:
        return np.nan
    below = (reference < value - 1e-9).mean()
    tied = (np.abs(reference - value) <= 1e-9).mean()
    return float(below + 0.5 * tied)


def length_controlled_novelty(scored: pd.DataFrame, refs: References) -> pd.DataFrame:
    """novelty_lc, creativity_lc and reference_relaxed per scored sample (module docstring)."""
    novelty_lc = np.full(len(scored), np.nan)
    relaxed = np.zeros(len(scored), dtype=bool)
    valid = scored["valid"].to_numpy()
    for i in np.flatnonzero(valid):
        _, ref_novelty, relaxed[i] = refs.get(scored["prompt_id"].iat[i], scored["hops"].iat[i])
        novelty_lc[i] = mid_rank(scored["novelty"].iat[i], ref_novelty)
    utility = scored["utility"].to_numpy()
    return pd.DataFrame({
        "novelty_lc": novelty_lc,
        "creativity_lc": np.where(utility > 0, utility * novelty_lc, 0.0),
        "reference_relaxed": relaxed,
    }, index=scored.index)


def length_matched_null(scored: pd.DataFrame, prompts: pd.DataFrame, scorer: Scorer, seed: int,
                        refs: References | None = None) -> pd.DataFrame:
    """The length-matched null of a model's scored samples: for each valid sample, one walk
    drawn uniformly from its R(p, h), scored like a sample. It keeps the sample's keys (run_id,
    decoding, prompt_id, sample_index, ...) so it pairs with it row for row, and adds
    `reference_relaxed`. Deterministic in (seed, the samples)."""
    refs = refs or References(scorer, prompts, seed)
    valid = scored[scored["valid"]]
    keys = [c for c in ("run_id", "decoding", "prompt_id", "sample_index") if c in valid.columns]
    graph = scorer.graph
    walks, relaxed = [], []
    for n, (prompt_id, hops) in enumerate(zip(valid["prompt_id"], valid["hops"])):
        ref_walks, _, was_relaxed = refs.get(prompt_id, hops)
        # A draw seeded by the sample's place among the valid ones: reproducible, and
        # independent of the order other runs ask for the same set.
        pick = np.random.default_rng([seed, int(prompt_id), int(hops), n]).integers(len(ref_walks))
        nodes = ref_walks[pick].tolist()
        walks.append(walk_tokens(graph, nodes, graph.edge_label(np.array(nodes[:-1]), np.array(nodes[1:])).tolist()))
        relaxed.append(was_relaxed)
    raw = valid[keys].reset_index(drop=True).assign(walk=walks)
    null = score_samples(raw, prompts, scorer)
    return null.assign(reference_relaxed=relaxed)


NULL_COLUMNS = {"novelty": "novelty_null_lm", "copied": "copied_null_lm",
                "combinatorial_novelty": "combinatorial_novelty_null_lm"}


def score_run(samples: pd.DataFrame, prompts: pd.DataFrame, scorer: Scorer, seed: int) -> pd.DataFrame:
    """A run's scored samples: score_samples plus novelty_lc, creativity_lc, reference_relaxed
    and, on valid samples, the matched null walk's novelty, copied and combinatorial_novelty
    (NULL_COLUMNS; NaN on invalid samples)."""
    scored = score_samples(samples, prompts, scorer)
    refs = References(scorer, prompts, seed)
    scored = pd.concat([scored, length_controlled_novelty(scored, refs)], axis=1)
    null = length_matched_null(scored, prompts, scorer, seed, refs)
    valid = np.flatnonzero(scored["valid"].to_numpy())
    for column, name in NULL_COLUMNS.items():
        values = np.full(len(scored), np.nan)
        values[valid] = null[column].to_numpy(dtype=float)
        scored[name] = values
    return scored
