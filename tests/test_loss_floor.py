"""The Bayes-optimal loss and the validation sample every run shares."""
import itertools
import math

import numpy as np
import pytest

from creativity import compositions
from creativity.graph import ConceptGraph, label_names, random_graph
from creativity.loss_floor import CorpusFloor, WalkPosterior, edge_nats, monte_carlo_floor
from creativity.prompts import Prompt, near
from creativity.task import build_task, load_graph, tokenizer_for
from creativity.corpus import encode_corpus, strata
from models.data import RunData

SMALL = dict(
    graph=dict(num_nodes=40, num_labels=6, mean_degree=3.0, zipf_exponent=1.0),
    task=dict(levels=4, test_prompts_per_level=10, train_prompts_per_level=60, min_hops=2, max_hops=4,
              allow_revisits=False, min_endpoint_distance=2, heldout_composition_fraction=0.25, ood_prompts=0,
              ood_max_hops=6, node_tokens=1),
    corpus=dict(edge_copies=2),
)


@pytest.fixture(scope="module")
def small():
    return build_task(SMALL["graph"], SMALL["task"], {**SMALL["corpus"], "validation_fraction": 0.1}, seed=5)


def square(num_labels=3):
    """a-b-c-d-a with labels R0, R1, R0, R0 (R2 unused): two 2-hop walks from a to c."""
    edges = np.array([[0, 1, 0], [1, 2, 1], [2, 3, 0], [0, 3, 0]])
    return ConceptGraph(nodes=["a", "b", "c", "d"], labels=label_names(num_labels), edges=edges)


def test_square_floor_by_hand():
    post = WalkPosterior(square(), np.empty(0, dtype=np.int64), hops=(2, 2), allow_revisits=False)
    via_b = Prompt(0, 2, (0,), (), (0, 1, 2), (0, 1))
    via_d = Prompt(0, 2, (0,), (), (0, 3, 2), (0, 0))
    # Both walks have q = 1/2. Given I = {R0} at level 2, the walk with labels {R0, R1} (one
    # label off it) draws one include w.p. 1/2, then R0 of its two labels w.p. 1/2: 1/4; the
    # walk with labels {R0} (two off it) draws one include w.p. 1/2, then R0 surely: 1/2.
    # So the posterior is 1/3 against 2/3.
    assert post.nats([via_b, via_d]) == pytest.approx([math.log(3), math.log(1.5)])
    level1 = [Prompt(0, 2, (), (), p.walk_nodes, p.walk_labels) for p in (via_b, via_d)]
    assert post.nats(level1) == pytest.approx([math.log(2)] * 2)
    # Excluding R1 leaves one walk: its completion is certain.
    assert post.nats([Prompt(0, 2, (), (1,), (0, 3, 2), (0, 0))]) == pytest.approx([0.0])
    # Withholding the composition a-d-c leaves a-b-c alone.
    g = square()
    withheld = np.array([min(3, 2) * 4 + max(3, 2)])  # edge rows 3 (a-d) and 2 (c-d)
    post = WalkPosterior(g, withheld, hops=(2, 2), allow_revisits=False)
    assert post.nats([level1[0]]) == pytest.approx([0.0])
    assert edge_nats(g, np.array([0, 1])) == pytest.approx([math.log(2)] * 2)


def brute_force(graph, heldout, hops, allow_revisits, level):
    """Every (prompt, walk) the generator can emit at `level`, with its probability up to a
    constant, by following every branch of prompts.sample_walk and prompts.constrain."""
    heldout, out = set(heldout.tolist()), {}
    starts = [v for v in range(graph.num_nodes) if graph.neighbours[v]]

    def branches(nodes, labels, p, h):
        if len(labels) == h:
            yield nodes, labels, p
            return
        options = [(b, l) for b, l in graph.neighbours[nodes[-1]] if allow_revisits or b not in nodes]
        for b, l in options:
            yield from branches(nodes + [b], labels + [l], p / len(options), h)

    for h in range(hops[0], hops[1] + 1):
        for s in starts:
            for nodes, labels, p in branches([s], [], 1.0, h):
                if nodes[-1] == nodes[0] or near(graph, nodes[0], nodes[-1], 2):
                    continue
                if heldout & set(compositions.walk_keys(graph, nodes).tolist()):
                    continue
                on = sorted(set(labels))
                off = [l for l in range(graph.num_labels) if l not in on]
                lo, hi = max(0, level - 1 - len(off)), min(level - 1, len(on))
                for k in range(lo, hi + 1):
                    for inc in itertools.combinations(on, k):
                        for exc in itertools.combinations(off, level - 1 - k):
                            q = p / (hi - lo + 1) / math.comb(len(on), k) / math.comb(len(off), level - 1 - k)
                            walks = out.setdefault((nodes[0], nodes[-1], inc, exc), {})
                            key = (tuple(nodes), tuple(labels))
                            walks[key] = walks.get(key, 0.0) + q
    return out


@pytest.mark.parametrize("allow_revisits", [False, True])
def test_floor_matches_brute_force_on_a_tiny_graph(allow_revisits):
    graph = random_graph(8, 3, 2.5, 1.0, seed=2)
    heldout = compositions.withhold(graph, 0.3, allow_revisits, np.random.default_rng(0))
    post = WalkPosterior(graph, heldout, hops=(2, 3), allow_revisits=allow_revisits)
    checked = 0
    for level in (1, 2, 3):
        for (u, v, inc, exc), walks in brute_force(graph, heldout, (2, 3), allow_revisits, level).items():
            total = sum(walks.values())
            prompts = [Prompt(u, v, inc, exc, n, l) for n, l in walks]
            expected = [-math.log(p / total) for p in walks.values()]
            assert post.nats(prompts) == pytest.approx(expected, abs=1e-9)
            checked += len(prompts)
    assert checked > 100


def test_monte_carlo_interval_covers_the_exact_floor(small):
    corpus, prompts = small["corpus"], small["prompts"]
    graph = load_graph(small["graph"], small["labels"], SMALL["graph"]["num_nodes"])
    post = WalkPosterior(graph, compositions.from_table(graph, small["heldout"]), (2, 4), False)
    exact = CorpusFloor(post, corpus, prompts, tokenizer_for(graph))
    rows = np.arange(len(corpus))
    truth = exact.scope(rows, seed=0)
    assert truth.method == "exact" and truth.floor == pytest.approx(small["loss_floor"].set_index("scope").floor["corpus"])
    sampled = CorpusFloor(post, corpus, prompts, tokenizer_for(graph), walk_limit=exact.cost(rows) / 3)
    mc = sampled.scope(rows, seed=0)
    assert mc.method == "monte_carlo" and mc.ci_low < truth.floor < mc.ci_high and mc.ci_low < mc.ci_high
    assert 2 < np.isfinite(sampled.nats[corpus.kind == "demonstration"]).sum() < (corpus.kind == "demonstration").sum()
    # A corpus with more demonstrations than the exact limit is sampled too, at most that many.
    capped = CorpusFloor(post, corpus, prompts, tokenizer_for(graph), demonstration_limit=30)
    mc = capped.scope(rows, seed=0)
    assert mc.method == "monte_carlo" and mc.ci_low < truth.floor < mc.ci_high
    assert np.isfinite(capped.nats[corpus.kind == "demonstration"]).sum() == 30
    # The interval keeps its coverage over many sample draws of 40 demonstrations.
    demo = exact.nats[(corpus.kind == "demonstration").to_numpy()]
    edges_nats, n_tok = exact.nats[(corpus.kind == "edge").to_numpy()].sum(), int(exact.tokens.sum())
    covered = []
    for seed in range(400):
        draw = np.random.default_rng(seed).choice(demo, size=40, replace=False)
        f = monte_carlo_floor(edges_nats, draw, len(demo), n_tok, len(corpus))
        covered.append(f.ci_low <= truth.floor <= f.ci_high)
    assert 0.9 <= np.mean(covered) <= 0.99


def test_validation_sample_holds_every_stratum_and_is_shared_by_runs(small):
    corpus, prompts = small["corpus"], small["prompts"]
    val = corpus["validation"].to_numpy()
    kinds = strata(corpus, prompts)
    assert sorted(set(kinds[val])) == ["edge", "level 1", "level 2", "level 3", "level 4"]
    for name in set(kinds):  # a tenth of each stratum
        assert val[kinds == name].sum() == round(0.1 * (kinds == name).sum())
    seqs, starts = encode_corpus(corpus, tokenizer_for(load_graph(small["graph"], small["labels"], 40)))
    runs = [RunData(seqs, starts, 0, 8, None, None, seed, False, val_indices=np.flatnonzero(val)) for seed in (0, 1)]
    assert runs[0].val_idx == runs[1].val_idx == np.flatnonzero(val).tolist()
    assert all((a.idx == b.idx).all() for a, b in zip(runs[0].val_batches, runs[1].val_batches))
    assert not set(runs[0].train_idx) & set(runs[0].val_idx) and len(runs[0].train_idx) + val.sum() == len(corpus)
    # A cap on the validation batches keeps every stratum, where the old prefix dropped the last.
    capped = RunData(seqs, starts, 0, 8, None, 2, 0, False, val_indices=np.flatnonzero(val))
    assert len(capped.val_idx) == 16 and set(kinds[capped.val_idx]) == set(kinds[val])
    old = RunData(seqs, starts, 0, 8, 0.1, 2, 0, False)
    assert "level 4" not in set(kinds[old.val_idx])


def test_validation_floor_is_over_exactly_the_validation_tokens(small):
    corpus, floors = small["corpus"], small["loss_floor"].set_index("scope")
    seqs, starts = encode_corpus(corpus, tokenizer_for(load_graph(small["graph"], small["labels"], 40)))
    data = RunData(seqs, starts, 0, 8, None, None, 0, False, val_indices=np.flatnonzero(corpus["validation"]))
    evaluated = sum(int(b.mask.sum()) for b in data.val_batches)
    val = corpus[corpus["validation"]]
    assert floors.n_tokens["validation"] == evaluated == val["loss_tokens"].sum()
    assert floors.n_sequences["validation"] == len(val) == len(data.val_idx)
    assert floors.floor["validation"] == pytest.approx(val["floor_nats"].sum() / evaluated)
    assert floors.floor["corpus"] == pytest.approx(corpus["floor_nats"].sum() / corpus["loss_tokens"].sum())
    assert floors.n_tokens["corpus"] == sum(len(s) - t for s, t in zip(seqs, starts))
    assert (floors.method == "exact").all() and (floors.ci_low == floors.floor).all()
    # A demonstration's floor is positive where its prompt admits another walk; an edge
    # line costs ln deg(u) over its three loss tokens (label, v, EOS).
    demo, edge = corpus[corpus.kind == "demonstration"], corpus[corpus.kind == "edge"]
    assert (demo.floor_nats >= -1e-12).all() and (demo.floor_nats > 0).mean() > 0.3
    degree = small["graph"][["u", "v"]].stack().value_counts()
    assert edge.floor_nats.to_numpy() == pytest.approx(np.log(edge.tokens.str[1].map(degree).to_numpy()))
    assert (edge.loss_tokens == 3).all()
