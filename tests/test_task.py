"""The creativity task: graph, prompts, corpus, tokenizer and scoring."""
import math

import numpy as np
import pandas as pd
import pytest

from creativity import compositions
from creativity.baseline import FeasibleWalks, baseline_samples
from creativity.corpus import encode_corpus
from creativity.evaluate import metrics_table, score_samples
from creativity.graph import ConceptGraph, node_names, random_graph
from creativity.length_control import score_run
from creativity.prompts import (Prompt, PromptSpec, TaskTooHardError, build_prompts, sample_walk, shortest_solution,
                                walk_tokens)
from creativity.scoring import Scorer, ScoreWeights, aggregate, mean_pairwise_distances
from creativity.task import (build_task_tables, load_graph, max_answer_hops, scorer_for, sequence_limits,
                             tokenizer_for)
from creativity.tokenizer import UNKNOWN_ID, Tokenizer

# A hand-built graph on nodes aaa..aae with labels R0..R2:
#   aaa -R0- aab -R1- aac -R0- aad,  aaa -R2- aae
# Edge shares: R0 2/4, R1 1/4, R2 1/4.
HAND_EDGES = np.array([[0, 1, 0], [1, 2, 1], [2, 3, 0], [0, 4, 2]])


@pytest.fixture
def hand_graph():
    return ConceptGraph(nodes=["aaa", "aab", "aac", "aad", "aae"], labels=["R0", "R1", "R2"], edges=HAND_EDGES)


def make_scorer(graph, demos=(), heldout=(), allow_revisits=False, copy_min_hops=2, **weights):
    return Scorer(graph, ScoreWeights(**weights), [list(d) for d in demos], np.array(heldout, dtype=np.int64),
                  allow_revisits, copy_min_hops)


def composition(graph, u, v, w):
    return int(compositions.walk_keys(graph, [graph.nodes.index(x) for x in (u, v, w)])[0])


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
        (["aaa", "R0", "aab", "R0", "aaa", "R0", "aab"], "revisit"),  # oscillates; endpoints right
        (["aab", "R0", "aaa", "R0", "aab"], "revisit"),  # revisit comes before wrong_endpoints
        (["aaa", "R0", "aab", "R0", "aaa", "R1", "aab"], "hallucinated_edge"),  # and after hallucinated_edge
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


def test_revisits_are_valid_where_the_config_allows_them(hand_graph):
    walk = ["aaa", "R0", "aab", "R0", "aaa", "R0", "aab"]
    assert score_one(make_scorer(hand_graph, allow_revisits=False), walk, "aaa", "aab").error_type == "revisit"
    r = score_one(make_scorer(hand_graph, allow_revisits=True), walk, "aaa", "aab")
    assert r.valid and r.error_type == "none" and r.hops == 3


def test_copy_rate_and_copy_share(hand_graph):
    demo = ["aae", "R2", "aaa", "R0", "aab"]
    s = make_scorer(hand_graph, demos=[demo])
    whole = score_one(s, demo, "aae", "aab")
    assert whole.copied and whole.copy_share == 1.0
    # The demonstration, then one more hop: 2 of 3 hops copied.
    longer = score_one(s, ["aae", "R2", "aaa", "R0", "aab", "R1", "aac"], "aae", "aac")
    assert longer.copied and longer.copy_share == pytest.approx(2 / 3)
    # Either direction counts.
    backwards = score_one(s, ["aac", "R1", "aab", "R0", "aaa", "R2", "aae"], "aac", "aae")
    assert backwards.copied and backwards.copy_share == pytest.approx(2 / 3)
    # Part of a demonstration is no copy.
    part = score_one(s, ["aaa", "R0", "aab", "R1", "aac", "R0", "aad"], "aaa", "aad")
    assert not part.copied and part.copy_share == 0.0
    # Invalid walks are neither copies nor have a share.
    invalid = score_one(s, demo, "aae", "aac")
    assert not invalid.copied and math.isnan(invalid.copy_share)
    # A stricter copy_min_hops ignores the 2-hop demonstration.
    assert not score_one(make_scorer(hand_graph, demos=[demo], copy_min_hops=3), demo, "aae", "aab").copied


def test_combinatorial_novelty_and_held_out_compositions(hand_graph):
    demo = ["aae", "R2", "aaa", "R0", "aab"]  # shows the composition aae-aaa-aab
    heldout = [composition(hand_graph, "aab", "aac", "aad")]
    s = make_scorer(hand_graph, demos=[demo], heldout=heldout)
    assert score_one(s, demo, "aae", "aab").combinatorial_novelty == 0.0
    # aae-aaa-aab was shown, aaa-aab-aac was not: 1 of 2.
    r = score_one(s, ["aae", "R2", "aaa", "R0", "aab", "R1", "aac"], "aae", "aac")
    assert r.combinatorial_novelty == pytest.approx(0.5) and not r.uses_heldout
    # Neither aaa-aab-aac nor the held-out aab-aac-aad was shown.
    r = score_one(s, ["aaa", "R0", "aab", "R1", "aac", "R0", "aad"], "aaa", "aad")
    assert r.combinatorial_novelty == 1.0 and r.uses_heldout
    # Compositions have no direction.
    assert score_one(s, ["aad", "R0", "aac", "R1", "aab"], "aad", "aab").uses_heldout
    # A one-hop walk has no compositions: undefined, not zero; an invalid walk uses none.
    assert math.isnan(score_one(s, ["aaa", "R0", "aab"], "aaa", "aab").combinatorial_novelty)
    assert not score_one(s, ["aab", "R1", "aac", "R0", "aad"], "aab", "aac").uses_heldout


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
    samples = pd.DataFrame(
        {
            "walk": [["aaa", "R0", "aab"], ["aaa", "R1", "aab"], ["aaa", "R0", "aab", "R0", "aaa", "R0", "aab"],
                     ["aaa", "R0", "aab"]],
            "prompt_id": [0, 1, 2, 3], "run": ["r"] * 4,
        }
    )
    prompts = pd.DataFrame({"prompt_id": [0, 1, 2, 3], "split": "test", "level": 1, "start": "aaa", "end": "aab",
                            "include": [[]] * 4, "exclude": [[]] * 4})
    scored = score_run(samples, prompts, s, seed=0)
    agg = aggregate(scored, ["run"]).iloc[0]
    assert agg.validity == 0.5 and agg.correct_rate == 0.5 and agg.n_prompts == 4
    # aaa-R0-aab is the only walk of one hop: it ranks in the middle of its reference set
    assert agg.novelty_lc_valid == 0.5 and agg.creativity_lc == pytest.approx(2 * 0.5 / 4)
    assert agg.creativity == pytest.approx(2 * (1 - math.log(0.5)) / 4)
    assert agg.novelty_valid == pytest.approx(1 - math.log(0.5))
    assert agg.err_none == 0.5 and agg.err_hallucinated_edge == 0.25
    assert agg.revisit_rate == agg.err_revisit == 0.25


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
              allow_revisits=False, min_endpoint_distance=2, heldout_composition_fraction=0.25, ood_prompts=20,
              ood_max_hops=7, node_tokens=1),
    corpus=dict(edge_copies=1),
    scoring=dict(alpha_hops=1, alpha_rarity=1, alpha_include=1, alpha_exclude=1, copy_min_hops=2),
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
    s = scorer_for(g, t["prompts"], SMALL["scoring"], False, t["heldout"])
    scored = s.score_table(t["prompts"].assign(walk=t["prompts"]["base_walk"]))
    assert scored["valid"].all() and (scored["error_type"] == "none").all()
    assert (scored["utility"] > 0).all()
    lv = t["prompts"]["level"]
    assert (lv == t["prompts"]["include"].map(len) + t["prompts"]["exclude"].map(len) + 1).all()


def test_levels_are_balanced_and_constraints_disjoint(small_tables):
    p = small_tables["prompts"]
    counts = p.groupby(["split", "level"]).size()
    assert (counts["test"] == 40).all() and (counts["train"] == 120).all() and counts["ood"].sum() == 20
    assert all(not set(i) & set(x) for i, x in zip(p["include"], p["exclude"]))


def test_test_endpoint_pairs_never_appear_among_demonstrations(small_tables):
    p = small_tables["prompts"]
    pairs = lambda df: {frozenset(x) for x in zip(df["start"], df["end"])}
    assert not pairs(p[p.split != "train"]) & pairs(p[p.split == "train"])


def test_endpoints_are_never_adjacent(small_tables):
    g = load_graph(small_tables["graph"], small_tables["labels"], SMALL["graph"]["num_nodes"])
    p = small_tables["prompts"]
    ix = {n: i for i, n in enumerate(g.nodes)}
    starts, ends = p["start"].map(ix).to_numpy(), p["end"].map(ix).to_numpy()
    assert (g.edge_label(starts, ends) == -1).all() and (starts != ends).all()
    assert (p["base_walk"].map(len) >= 5).all()  # so no 1-hop base walk either


def _answers_within(graph, prompt: Prompt, limit: int) -> bool:
    """Brute force: does a walk (revisits allowed) of at most `limit` hops answer the prompt?"""
    stack = [(prompt.start, frozenset(), 0)]
    while stack:
        node, used, hops = stack.pop()
        if node == prompt.end and hops and set(prompt.include) <= used:
            return True
        if hops < limit:
            stack += [(b, used | {l}, hops + 1) for b, l in graph.neighbours[node] if l not in prompt.exclude]
    return False


def test_ood_prompts_need_walks_longer_than_any_demonstration(small_tables):
    g = load_graph(small_tables["graph"], small_tables["labels"], SMALL["graph"]["num_nodes"])
    p = small_tables["prompts"]
    longest_demo = (p.loc[p.split == "train", "base_walk"].map(len).max() - 1) // 2
    assert longest_demo == SMALL["task"]["max_hops"]
    ix, lx = {n: i for i, n in enumerate(g.nodes)}, {l: i for i, l in enumerate(g.labels)}
    ood = p[p.split == "ood"]
    for r in ood.itertuples():
        prompt = Prompt(ix[r.start], ix[r.end], tuple(lx[l] for l in r.include), tuple(lx[l] for l in r.exclude), (), ())
        assert not _answers_within(g, prompt, longest_demo)
        assert _answers_within(g, prompt, (len(r.base_walk) - 1) // 2)
    # The search agrees with brute force on the in-distribution prompts too.
    for r in p[p.split == "test"].head(40).itertuples():
        prompt = Prompt(ix[r.start], ix[r.end], tuple(lx[l] for l in r.include), tuple(lx[l] for l in r.exclude), (), ())
        hops = shortest_solution(g, prompt, longest_demo)
        assert hops is not None and _answers_within(g, prompt, hops) and not _answers_within(g, prompt, hops - 1)


def test_demonstrations_avoid_the_held_out_compositions(small_tables):
    t = small_tables
    g = load_graph(t["graph"], t["labels"], SMALL["graph"]["num_nodes"])
    heldout = compositions.from_table(g, t["heldout"])
    universe = compositions.all_keys(g, allow_revisits=False)
    assert len(heldout) == round(0.25 * len(universe)) and np.isin(heldout, universe).all()
    assert (compositions.from_table(g, compositions.to_table(g, heldout)) == heldout).all()
    s = scorer_for(g, t["prompts"], SMALL["scoring"], False, t["heldout"])
    assert not np.isin(s.demo_keys, heldout).any()
    # ...while the test prompts' base walks do use them, so the metric can see it.
    test = t["prompts"][t["prompts"].split == "test"]
    scored = s.score_table(test.assign(walk=test["base_walk"]))
    assert 0 < scored["uses_heldout"].mean() < 1
    assert 0 < scored["combinatorial_novelty"].mean() < 1


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
                      allow_revisits=False, min_endpoint_distance=2, ood_prompts=0, ood_max_hops=6, seed=0)
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


def test_multi_token_nodes_round_trip_and_can_be_hallucinated():
    names = node_names(30, node_tokens=2)
    assert len(set(names)) == 30 and all(len(n) == 2 for n in names)
    tok = Tokenizer(labels=("R0", "R1"), nodes=tuple(names), node_tokens=2)
    symbols = sorted(set("".join(names)))
    assert tok.vocab_size == 6 + 2 + len(symbols) and len(symbols) ** 2 >= 60
    seq = ["BOS", names[0], names[1], "INC", "R1", "EXC", "SEP", names[0], "R1", names[1], "EOS"]
    ids = tok.encode(seq)
    assert len(ids) == len(seq) + 4 and tok.decode(ids) == seq
    # A spelling that names no node, and a run of three symbols, decode to strings that are no node.
    ghost = next(a + b for a in symbols for b in symbols if a + b not in names)
    a, b = names[0]
    r0 = tok.encode(["R0"])[0]
    walk_ids = tok.encode([names[0], "R0"]) + tok.encode([ghost[0]]) + tok.encode([ghost[1]])
    assert tok.decode(walk_ids) == [names[0], "R0", ghost]
    assert tok.decode([*tok.encode([names[0]]), r0, *tok.encode([a]) * 3]) == [names[0], "R0", a * 3]
    assert tok.decode(tok.encode([names[0], names[1]])) == [names[0], names[1]]


def test_scorer_flags_spelled_ghost_nodes():
    names = node_names(5, node_tokens=2)
    g = ConceptGraph(nodes=names, labels=["R0", "R1", "R2"], edges=HAND_EDGES)
    tok = tokenizer_for(g, node_tokens=2)
    s = make_scorer(g)
    symbols = sorted(set("".join(names)))
    ghost = next(a + b for a in symbols for b in symbols if a + b not in names)
    walks = {
        "hallucinated_node": [names[0], "R0", ghost],
        "parse": [names[0], "R0", names[1], names[2]],  # two adjacent names, no label between
        "none": [names[0], "R0", names[1], "R1", names[2]],
    }
    for expected, walk in walks.items():
        decoded = tok.decode(tok.encode(walk))
        assert score_one(s, decoded, names[0], names[2]).error_type == expected


def test_corpus_loss_starts_count_token_ids():
    t = build_task_tables(SMALL["graph"], dict(SMALL["task"], node_tokens=2), SMALL["corpus"], seed=3)
    tok = Tokenizer(labels=tuple(t["labels"]["label"]), nodes=tuple(node_names(60, 2)), node_tokens=2)
    demo = t["corpus"][t["corpus"].kind == "demonstration"].iloc[:1]
    (seq,), (start,) = encode_corpus(demo, tok)
    assert seq[start - 1] == tok.sep_id and tok.decode(seq[start:]) == list(demo["tokens"].iloc[0][demo["target_start"].iloc[0]:])


@pytest.mark.parametrize("node_tokens", [1, 3])
def test_sequence_limits_fit_the_longest_prompt_and_answer(node_tokens):
    task = dict(SMALL["task"], node_tokens=node_tokens)
    names = node_names(60, node_tokens)
    tok = Tokenizer(labels=tuple(f"R{i}" for i in range(8)), nodes=tuple(names), node_tokens=node_tokens)
    hops = max_answer_hops(task)
    assert hops == 7 + 2
    walk = [names[0]] + ["R0", names[1]] * hops
    prompt = ["BOS", names[0], names[1], "INC", "R1", "R2", "EXC", "R3", "SEP"]  # a level-4 prompt
    max_new, max_len = sequence_limits(task)
    assert max_new == len(tok.encode(walk + ["EOS"]))
    assert max_len == len(tok.encode(prompt)) + max_new


# --- the feasible-set baseline ------------------------------------------------
# A small graph with several routes between 0 and 4 (labels in brackets):
#   0 -[0]- 1 -[1]- 2 -[0]- 4,  0 -[1]- 3 -[0]- 2,  1 -[2]- 3,  3 -[1]- 4,  4 -[2]- 5
ROUTES = np.array([[0, 1, 0], [1, 2, 1], [2, 4, 0], [0, 3, 1], [2, 3, 0], [1, 3, 2], [3, 4, 1], [4, 5, 2]])


def _all_walks(graph, start, end, include, exclude, max_hops, allow_revisits):
    found, stack = [], [[start]]
    while stack:
        nodes = stack.pop()
        labels = [int(graph.edge_label(a, b)) for a, b in zip(nodes[:-1], nodes[1:])]
        if nodes[-1] == end and len(nodes) > 1 and set(include) <= set(labels):
            found.append(tuple(nodes))
        if len(nodes) <= max_hops:
            stack += [nodes + [b] for b, l in graph.neighbours[nodes[-1]]
                      if l not in exclude and (allow_revisits or b not in nodes)]
    return found


@pytest.mark.parametrize("allow_revisits, include, exclude", [(False, [1], []), (False, [0], [2]), (True, [2], [])])
def test_baseline_samples_uniformly_from_the_feasible_set(allow_revisits, include, exclude):
    g = ConceptGraph(nodes=node_names(6), labels=["R0", "R1", "R2"], edges=ROUTES)
    expected = _all_walks(g, 0, 4, include, exclude, 4, allow_revisits)
    assert len(expected) >= 3
    draws = FeasibleWalks(g, allow_revisits).sample(0, 4, include, exclude, 4, 300 * len(expected),
                                                     np.random.default_rng(0))
    counts = pd.Series([tuple(w) for w in draws]).value_counts()
    assert set(counts.index) == set(expected)
    mean = 300
    assert (abs(counts - mean) < 5 * math.sqrt(mean)).all()  # a binomial count stays within 5 sd


def test_baseline_samples_are_valid_and_shaped_like_a_run(small_tables):
    from models.experiment import SAMPLE_COLUMNS

    t = small_tables
    g = load_graph(t["graph"], t["labels"], SMALL["graph"]["num_nodes"])
    raw = baseline_samples(g, t["prompts"], max_answer_hops(SMALL["task"]), False, 3, seed=0)
    assert set(raw.columns) <= set(SAMPLE_COLUMNS)  # the rest (inference FLOPs, ...) are NaN in the rule's output
    scorer = scorer_for(g, t["prompts"], SMALL["scoring"], False, t["heldout"])
    scored = score_samples(raw, t["prompts"], scorer)
    assert (scored["error_type"] == "none").all()
    assert scored.groupby("prompt_id").size().eq(3).all() and set(scored["split"]) == {"test", "ood"}
    assert scored["hops"].max() <= max_answer_hops(SMALL["task"])
    # The metrics vary across walks of the null, so they can vary across a model's.
    for col in ["combinatorial_novelty", "copy_share"]:
        assert 0 < scored[col].mean() < 1
    assert scored["uses_heldout"].nunique() == 2 and scored["copied"].nunique() == 2
    again = baseline_samples(g, t["prompts"], max_answer_hops(SMALL["task"]), False, 3, seed=0)
    assert again["walk"].map(tuple).equals(raw["walk"].map(tuple))


def test_metrics_keep_test_and_ood_apart(small_tables):
    t = small_tables
    g = load_graph(t["graph"], t["labels"], SMALL["graph"]["num_nodes"])
    scorer = scorer_for(g, t["prompts"], SMALL["scoring"], False, t["heldout"])
    raw = baseline_samples(g, t["prompts"], max_answer_hops(SMALL["task"]), False, 2, seed=0)
    m = metrics_table(score_run(raw, t["prompts"], scorer, seed=0), ["run_id", "decoding"])
    pooled = m[m.level == 0].set_index("split")
    assert set(pooled.index) == {"test", "ood"}
    assert pooled.loc["test", "n_prompts"] == 160 and pooled.loc["ood", "n_prompts"] == 20
    by_level = m[(m.level > 0) & (m.split == "test")]
    assert by_level["n_samples"].sum() == pooled.loc["test", "n_samples"]
    for col in ["copy_rate", "copy_share", "combinatorial_novelty", "uses_heldout_rate", "revisit_rate",
                "correct_rate", "creativity_lc", "copy_rate_null_lm", "copy_rate_net", "copy_rate_saturated",
                "combinatorial_novelty_null_lm", "combinatorial_novelty_net", "combinatorial_novelty_saturated"]:
        assert col in m.columns


def test_copies_are_found_on_a_graph_too_large_to_pack_windows_into_integers():
    g = random_graph(9000, 4, 3.0, 1.0, seed=0)  # 14 bits a node: a 5-node window needs 70 > 63 bits
    rng = np.random.default_rng(0)
    walk = None
    while walk is None:
        walk = sample_walk(g, np.arange(9000), 5, False, rng)
    nodes, labels = walk
    demo = walk_tokens(g, nodes[:5], labels[:4])  # 4 hops
    s = make_scorer(g, demos=[demo])
    full = walk_tokens(g, nodes, labels)
    r = score_one(s, full, full[0], full[-1])
    assert r.copied and r.copy_share == pytest.approx(4 / 5)
    r = score_one(s, full[::-1], full[-1], full[0])
    assert r.copied and r.copy_share == pytest.approx(4 / 5)
    assert not score_one(s, full[2:], full[2], full[-1]).copied


def test_baseline_refuses_a_prompt_only_walks_with_revisits_answer():
    # 0 -[0]- 1 -[1]- 2 and a triangle 2-3-4 labelled 2: from 0 to 2 with R2 needs the triangle,
    # whose only walks back to 2 revisit it.
    g = ConceptGraph(nodes=node_names(5), labels=["R0", "R1", "R2"],
                     edges=np.array([[0, 1, 0], [1, 2, 1], [2, 3, 2], [2, 4, 2], [3, 4, 2]]))
    with pytest.raises(ValueError, match="revisit"):
        FeasibleWalks(g, allow_revisits=False).sample(0, 2, [2], [], 5, 2, np.random.default_rng(0))
    walks = FeasibleWalks(g, allow_revisits=True).sample(0, 2, [2], [], 5, 2, np.random.default_rng(0))
    assert all(w[-1] == 2 and len(set(w)) < len(w) for w in walks)
