"""The creativity task: graph, prompts, corpus, tokenizer and scoring."""
import math

import numpy as np
import pandas as pd
import pytest

from creativity.graph import ConceptGraph, random_graph
from creativity.prompts import PromptSpec, TaskTooHardError, build_prompts
from creativity.scoring import Scorer, ScoreWeights, aggregate, mean_pairwise_distances
from creativity.task import build_task_tables, load_graph, scorer_for, tokenizer_for
from creativity.tokenizer import UNKNOWN_ID, Tokenizer

# A hand-built graph on nodes aaa..aae with labels R0..R2:
#   aaa -R0- aab -R1- aac -R0- aad,  aaa -R2- aae
# Edge shares: R0 2/4, R1 1/4, R2 1/4.
HAND_EDGES = np.array([[0, 1, 0], [1, 2, 1], [2, 3, 0], [0, 4, 2]])


@pytest.fixture
def hand_graph():
    return ConceptGraph(nodes=["aaa", "aab", "aac", "aad", "aae"], labels=["R0", "R1", "R2"], edges=HAND_EDGES)


def make_scorer(graph, demos=(), **weights):
    return Scorer(graph, tokenizer_for(graph), ScoreWeights(**weights), [list(d) for d in demos])


def score_one(scorer, walk, start, end, include=(), exclude=()):
    table = pd.DataFrame({"walk": [walk], "start": [start], "end": [end], "include": [list(include)],
                          "exclude": [list(exclude)], "prompt_id": [0]})
    return scorer.score_table(table).iloc[0]


def test_novelty_and_utility_hand_computed(hand_graph):
    s = make_scorer(hand_graph, alpha_hops=0.5, alpha_rarity=2.0, alpha_include=1.0, alpha_exclude=3.0)
    r = score_one(s, ["aaa", "R0", "aab", "R1", "aac"], "aaa", "aac", include=["R1"], exclude=["R2"])
    assert r.valid and r.error_type == "none" and r.hops == 2
    surprisal = (-math.log(0.5) - math.log(0.25)) / 2
    assert r.novelty == pytest.approx(0.5 * 2 + 2.0 * surprisal)
    assert r.utility == pytest.approx((1 + 1.0 * 1) * (1 + 3.0 * 1))
    assert r.utility_soft == 1.0
    assert r.creativity == pytest.approx(r.utility * r.novelty)


def test_gated_utility_is_zero_when_a_constraint_fails(hand_graph):
    s = make_scorer(hand_graph)
    r = score_one(s, ["aaa", "R0", "aab", "R1", "aac"], "aaa", "aac", include=["R2"], exclude=["R1"])
    assert r.valid and r.error_type == "include_violation"
    assert r.utility == 0 and r.creativity == 0
    assert r.utility_soft == 0.0  # neither the include nor the exclude is met
    r = score_one(s, ["aaa", "R0", "aab", "R1", "aac"], "aaa", "aac", include=["R0"], exclude=["R1"])
    assert r.error_type == "exclude_violation" and r.utility == 0 and r.utility_soft == 0.5


@pytest.mark.parametrize(
    "walk, expected",
    [
        (["aaa", "R0"], "parse"),  # even length
        (["aaa"], "parse"),  # no hop
        (["aaa", "aab", "aac"], "parse"),  # node in a label slot
        (["aaa", "R0", "R1"], "parse"),  # label in a node slot
        (["aaa", "BOS", "aab"], "parse"),  # special in a label slot
        (["aaa", "R0", "zzz"], "hallucinated_node"),  # not a node of G
        (["aaa", "R0", "zzz", "R9", "aab"], "parse"),  # R9 is no label: parse comes first
        (["aaa", "R1", "aab"], "hallucinated_edge"),  # wrong label
        (["aaa", "R0", "aac"], "hallucinated_edge"),  # no such edge
        (["aab", "R0", "aaa"], "wrong_endpoints"),
        (["aaa", "R0", "aab", "R1", "aac"], "none"),
    ],
)
def test_error_order(hand_graph, walk, expected):
    r = score_one(make_scorer(hand_graph), walk, "aaa", "aac" if walk[-1] == "aac" else "aab")
    assert r.error_type == expected
    assert r.valid == (expected == "none")
    assert (r.utility > 0) == (expected == "none")


def test_novelty_defined_for_parseable_invalid_walks(hand_graph):
    s = make_scorer(hand_graph)
    r = score_one(s, ["aaa", "R1", "aab"], "aaa", "aab")
    assert r.error_type == "hallucinated_edge" and r.novelty == pytest.approx(1 - math.log(0.25))
    assert math.isnan(score_one(s, ["aaa", "R0"], "aaa", "aab").novelty)


def test_copy_rate_and_combinatorial_novelty(hand_graph):
    demo = ["aae", "R2", "aaa", "R0", "aab"]
    s = make_scorer(hand_graph, demos=[demo])
    copied = score_one(s, demo, "aae", "aab")
    assert copied.copied and copied.combinatorial_novelty == 0.0
    # Pairs: (aaa R0 aab, aab R1 aac) is new, (aab R1 aac, aac R0 aad) is new.
    r = score_one(s, ["aae", "R2", "aaa", "R0", "aab", "R1", "aac"], "aae", "aac")
    assert not r.copied and r.combinatorial_novelty == pytest.approx(0.5)
    # A one-hop walk has no hop pairs: undefined, not zero.
    assert math.isnan(score_one(s, ["aaa", "R0", "aab"], "aaa", "aab").combinatorial_novelty)
    # The reversed demonstration is a different walk.
    assert not score_one(s, demo[::-1], "aab", "aae").copied


def test_diversity_hand_computed():
    a = ["aaa", "R0", "aab", "R1", "aac"]
    b = ["aaa", "R0", "aab", "R2", "aad"]
    jac, edit = mean_pairwise_distances([a, b])
    # edge sets {ab, bc} vs {ab, bd}: |∩|=1, |∪|=3; labels R0 R1 vs R0 R2: 1 substitution of 2.
    assert jac == pytest.approx(2 / 3) and edit == pytest.approx(0.5)
    assert mean_pairwise_distances([a, a]) == (0.0, 0.0)
    assert all(math.isnan(x) for x in mean_pairwise_distances([a]))


def test_aggregate_creativity_counts_invalid_as_zero(hand_graph):
    s = make_scorer(hand_graph)
    table = pd.DataFrame(
        {
            "walk": [["aaa", "R0", "aab"], ["aaa", "R1", "aab"]],
            "start": ["aaa", "aaa"], "end": ["aab", "aab"], "include": [[], []], "exclude": [[], []],
            "prompt_id": [0, 1], "run": ["r", "r"],
        }
    )
    scored = pd.concat([table, s.score_table(table)], axis=1)
    agg = aggregate(scored, ["run"]).iloc[0]
    assert agg.validity == 0.5 and agg.n_prompts == 2
    assert agg.creativity == pytest.approx((1 - math.log(0.5)) / 2)
    assert agg.novelty_valid == pytest.approx(1 - math.log(0.5))
    assert agg.err_none == 0.5 and agg.err_hallucinated_edge == 0.5


def test_tokenizer_round_trip():
    tok = Tokenizer(labels=("R0", "R1"), nodes=("aaa", "aab", "aac"))
    seq = ["BOS", "aaa", "aac", "INC", "R1", "EXC", "SEP", "aaa", "R1", "aac", "EOS"]
    ids = tok.encode(seq)
    assert tok.decode(ids) == seq
    assert ids[0] == tok.bos_id and ids[-1] == tok.eos_id and len(set(ids)) == len(set(seq))
    assert tok.encode(["nope"]) == [UNKNOWN_ID]
    assert tok.vocab_size == 6 + 2 + 3
    with pytest.raises(ValueError):
        Tokenizer(labels=("aaa",), nodes=("aaa",))


SMALL = dict(
    graph=dict(num_nodes=60, num_labels=8, mean_degree=4.0, zipf_exponent=1.0),
    task=dict(levels=4, test_prompts_per_level=40, train_prompts_per_level=120, min_hops=1, max_hops=5,
              allow_revisits=False),
    corpus=dict(edge_copies=1),
)


@pytest.fixture(scope="module")
def small_tables():
    return build_task_tables(SMALL["graph"], SMALL["task"], SMALL["corpus"], seed=3)


def test_random_graph_matches_its_config():
    g = random_graph(200, 10, 5.0, 1.2, seed=1)
    assert len(g.edges) == 500
    assert (g.edges[:, 0] < g.edges[:, 1]).all()  # simple graph, each edge once
    assert len({(u, v) for u, v, _ in g.edges.tolist()}) == 500
    w = g.label_weights
    assert w.sum() == pytest.approx(1.0) and w[0] > w[-1]  # Zipf: label 0 most common
    assert (random_graph(200, 10, 5.0, 1.2, seed=1).edges == g.edges).all()


def test_every_prompt_is_satisfied_by_its_base_walk(small_tables):
    t = small_tables
    g = load_graph(t["graph"], t["labels"], SMALL["graph"]["num_nodes"])
    s = scorer_for(g, t["prompts"], dict(alpha_hops=1, alpha_rarity=1, alpha_include=1, alpha_exclude=1))
    scored = s.score_table(t["prompts"].assign(walk=t["prompts"]["base_walk"]))
    assert scored["valid"].all() and (scored["error_type"] == "none").all()
    assert (scored["utility"] > 0).all()
    lv = t["prompts"]["level"]
    assert (lv == t["prompts"]["include"].map(len) + t["prompts"]["exclude"].map(len) + 1).all()


def test_levels_are_balanced_and_constraints_disjoint(small_tables):
    p = small_tables["prompts"]
    counts = p.groupby(["split", "level"]).size()
    assert (counts["test"] == 40).all() and (counts["train"] == 120).all()
    assert all(not set(i) & set(x) for i, x in zip(p["include"], p["exclude"]))


def test_test_endpoint_pairs_never_appear_among_demonstrations(small_tables):
    p = small_tables["prompts"]
    pairs = lambda df: {frozenset(x) for x in zip(df["start"], df["end"])}
    assert not pairs(p[p.split == "test"]) & pairs(p[p.split == "train"])


def test_corpus_holds_both_edge_directions_and_every_demo(small_tables):
    c, g, p = small_tables["corpus"], small_tables["graph"], small_tables["prompts"]
    edges = c[c.kind == "edge"]
    assert len(edges) == 2 * len(g)
    triples = {tuple(t[1:4]) for t in edges["tokens"]}
    for u, v, l in g.itertuples(index=False):
        assert (u, l, v) in triples and (v, l, u) in triples
    demos = c[c.kind == "demonstration"]
    assert len(demos) == (p.split == "train").sum()
    for tokens, start in zip(demos["tokens"], demos["target_start"]):
        assert tokens[start - 1] == "SEP" and tokens[-1] == "EOS"


def test_too_sparse_graph_is_refused_with_the_keys_named():
    g = random_graph(10, 4, 0.4, 1.0, seed=0)  # two edges: no 5-hop walk exists
    spec = PromptSpec(levels=1, test_per_level=5, train_per_level=5, min_hops=5, max_hops=5,
                      allow_revisits=False, seed=0)
    with pytest.raises(TaskTooHardError, match="graph.mean_degree"):
        build_prompts(g, spec)


def test_same_seed_gives_identical_parquet(tmp_path, small_tables):
    again = build_task_tables(SMALL["graph"], SMALL["task"], SMALL["corpus"], seed=3)
    other = build_task_tables(SMALL["graph"], SMALL["task"], SMALL["corpus"], seed=4)
    for name in small_tables:
        a, b = tmp_path / f"{name}_a.parquet", tmp_path / f"{name}_b.parquet"
        small_tables[name].to_parquet(a, index=False)
        again[name].to_parquet(b, index=False)
        assert a.read_bytes() == b.read_bytes(), name
    assert not other["graph"].equals(small_tables["graph"])
