"""Novelty with walk length controlled, and the length-matched null.

The paper's novelty N = alpha_hops·hops + alpha_rarity·(mean label surprisal) grows by one
unit a hop, while the surprisal part spans only a few units, so among valid walks N is
almost a hop count (corr(N, hops) 0.96-0.98 among a default run's valid walks). Both
quantities here compare a walk with walks of the same prompt and the same hop count.

Reference set R(p, h) of a valid walk of h hops for prompt p = (u, v, I, X): the walks of
exactly h hops from u to v with no node twice (unless task.allow_revisits) that belong to
the walk's own class. For a correct walk, the correct ones: those that also use every
label of I and none of X (the feasible walks of p with h hops; the walk is one of them).
For a walk that is valid but not correct, the valid ones: I and X dropped, since an
answer that breaks a constraint would otherwise be ranked against walks that keep it
(and for many hop counts no walk keeps it). R(p, h) is exact (every walk) where at most
REFERENCE_WALKS walks are counted, and otherwise REFERENCE_WALKS uniform draws
(baseline.FeasibleWalks.walks_of_hops) from a generator seeded by (seed, prompt id, h,
class): the same set in every run. It holds the walk itself, so it is never empty when
exact; a sampled set could come back empty only if rejection found no walk without a
revisit in baseline.REJECTION_ROUNDS batches, and then the walk stands in for it.

novelty_lc, the length-controlled novelty of a valid walk: its mid-rank by N among the
    other walks of R(p, h), P(N' < N) + ½·P(N' = N) for N' the novelty of a walk drawn
    uniformly from R(p, h) without the walk itself; ½ where R(p, h) holds no other walk
    (with no alternative of its length, a walk is neither more nor less novel).
    Within one (p, h) the hop term of N is a constant, so only label rarity ranks walks,
    and a uniform walk of R(p, h) has novelty_lc of mean ½ whatever h is: it cannot grow
    with length. Among the others, not among all of R(p, h): with n walks the mid-rank
    among all of them spans only [1/2n, 1 - 1/2n], so a model that always takes the
    commonest labels would score higher on short walks (small sets) than on long ones,
    a length effect again; among the others it spans [0, 1] at every n >= 2.
    A rank, not the difference N - mean N', because then an invalid output (0 in
    creativity_lc) would tie with a walk of average rarity; on a rank, 0 is the least
    novel a walk can be. NaN for an invalid walk.
creativity_lc = U·novelty_lc, 0 for a walk that is not correct (U = 0), like C = U·N.

The length-matched null: for every valid walk of a model, one walk drawn uniformly from
its R(p, h); so the null has the model's hop counts walk for walk, and is correct
wherever the model's walk is. `length_matched_null` returns these walks scored like
samples; `score_run` attaches the null walk's novelty,
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
        self._sets: dict[tuple[int, int, bool], tuple[np.ndarray, np.ndarray]] = {}

    def get(self, prompt_id: int, hops: int, correct: bool) -> tuple[np.ndarray, np.ndarray]:
        """R(p, h) of a correct walk (correct=True) or of a valid one that is not: (walks as
        rows of hops + 1 nodes, their novelty N)."""
        key = (int(prompt_id), int(hops), bool(correct))
        if key not in self._sets:
            start, end, include, exclude = self.prompts[key[0]]
            if not correct:
                include, exclude = [], []
            walks = self.feasible.walks_of_hops(start, end, include, exclude, hops, REFERENCE_WALKS,
                                                np.random.default_rng([self.seed, *key]),
                                                enumerate_max=REFERENCE_WALKS)[0]
            self._sets[key] = (walks, self.scorer.path_novelty(walks))
        return self._sets[key]


def mid_rank(value: float, reference: np.ndarray) -> float:
    """P(X < value) + ½·P(X = value) over the reference values (NaN if there are none).
    Values within 1e-9 tie: the same labels summed in another order differ by rounding."""
    if len(reference) == 0:
        return np.nan
    below = (reference < value - 1e-9).mean()
    tied = (np.abs(reference - value) <= 1e-9).mean()
    return float(below + 0.5 * tied)


def length_controlled_novelty(scored: pd.DataFrame, refs: References) -> pd.DataFrame:
    """novelty_lc and creativity_lc per scored sample (module docstring)."""
    novelty_lc = np.full(len(scored), np.nan)
    node_ix = {n: i for i, n in enumerate(refs.scorer.graph.nodes)}
    rows = np.flatnonzero(scored["valid"].to_numpy())
    columns = [scored[c].to_numpy()[rows] for c in ("prompt_id", "hops", "correct", "walk", "novelty")]
    for i, prompt_id, hops, correct, walk, novelty in zip(rows, *columns):
        ref_walks, ref_novelty = refs.get(prompt_id, hops, correct)
        nodes = np.array([node_ix[n] for n in walk[0::2]])
        others = ~(ref_walks == nodes).all(axis=1)
        novelty_lc[i] = mid_rank(novelty, ref_novelty[others]) if others.any() else 0.5
    utility = scored["utility"].to_numpy()
    return pd.DataFrame({
        "novelty_lc": novelty_lc,
        "creativity_lc": np.where(utility > 0, utility * novelty_lc, 0.0),
    }, index=scored.index)


def length_matched_null(scored: pd.DataFrame, prompts: pd.DataFrame, scorer: Scorer, seed: int,
                        refs: References | None = None) -> pd.DataFrame:
    """The length-matched null of a model's scored samples: for each valid sample, one walk
    drawn uniformly from its R(p, h), scored like a sample. It keeps the sample's keys (run_id,
    decoding, prompt_id, sample_index, ...) so it pairs with it row for row. Deterministic in
    (seed, the samples)."""
    refs = refs or References(scorer, prompts, seed)
    valid = scored[scored["valid"]]
    keys = [c for c in ("run_id", "decoding", "prompt_id", "sample_index") if c in valid.columns]
    graph = scorer.graph
    walks = []
    for n, (prompt_id, hops, correct, walk) in enumerate(zip(valid["prompt_id"], valid["hops"], valid["correct"],
                                                             valid["walk"])):
        ref_walks, _ = refs.get(prompt_id, hops, correct)
        if len(ref_walks) == 0:  # rejection sampling found no walk without a revisit: the walk stands in
            walks.append(list(walk))
            continue
        # A draw seeded by the sample's place among the valid ones: reproducible, and
        # independent of the order other runs ask for the same set.
        pick = np.random.default_rng([seed, int(prompt_id), int(hops), n]).integers(len(ref_walks))
        nodes = ref_walks[pick].tolist()
        walks.append(walk_tokens(graph, nodes, graph.edge_label(np.array(nodes[:-1]), np.array(nodes[1:])).tolist()))
    raw = valid[keys].reset_index(drop=True).assign(walk=walks)
    return score_samples(raw, prompts, scorer)


NULL_COLUMNS = {"novelty": "novelty_null_lm", "copied": "copied_null_lm",
                "combinatorial_novelty": "combinatorial_novelty_null_lm"}


def score_run(samples: pd.DataFrame, prompts: pd.DataFrame, scorer: Scorer, seed: int) -> pd.DataFrame:
    """A run's scored samples: score_samples plus novelty_lc, creativity_lc and, on valid samples, the matched null walk's novelty, copied and combinatorial_novelty
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
