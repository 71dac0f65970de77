"""Correctness beside validity, length-controlled novelty and the length-matched null."""
import math

import numpy as np
import pandas as pd
import pytest

from creativity.baseline import FeasibleWalks, baseline_samples
from creativity.evaluate import metrics_table
from creativity.graph import ConceptGraph, node_names
from creativity.length_control import References, length_matched_null, mid_rank, score_run
from creativity.prompts import walk_tokens
from creativity.scoring import SATURATION, aggregate
from creativity.task import build_task_tables, load_graph, max_answer_hops, scorer_for
from test_task import ROUTES, SMALL, make_scorer

# ROUTES (test_task.py): 0 -[0]- 1 -[1]- 2 -[0]- 4,  0 -[1]- 3 -[0]- 2,  1 -[2]- 3,  3 -[1]- 4,  4 -[2]- 5.
# Labels 0 and 1 hold 3 of 8 edges each, label 2 holds 2: surprisal a = ln 8/3, b = ln 4.
# Simple walks 0 -> 4: two hops 0-3-4; three hops 0-1-2-4 (labels 0 1 0), 0-1-3-4 (0 2 1), 0-3-2-4 (1 0 0).
A, B = math.log(8 / 3), math.log(4)


@pytest.fixture
def routes():
    g = ConceptGraph(nodes=node_names(6), labels=["R0", "R1", "R2"], edges=ROUTES)
    return g, make_scorer(g)


def walk(graph, *nodes):
    labels = graph.edge_label(np.array(nodes[:-1]), np.array(nodes[1:])).tolist()
    return walk_tokens(graph, list(nodes), labels)


def route_prompts(graph, include=(), exclude=()):
    return pd.DataFrame({"prompt_id": [0], "split": "test", "level": 1 + len(include) + len(exclude),
                         "start": graph.nodes[0], "end": graph.nodes[4], "include": [[f"R{l}" for l in include]],
                         "exclude": [[f"R{l}" for l in exclude]]})


def score_routes(graph, scorer, walks, include=(), exclude=()):
    samples = pd.DataFrame({"prompt_id": 0, "sample_index": range(len(walks)), "walk": walks})
    return score_run(samples, route_prompts(graph, include, exclude), scorer, seed=0)


def test_a_walk_that_breaks_a_constraint_is_valid_but_not_correct(routes):
    g, s = routes
    w = walk(g, 0, 1, 3, 4)  # labels R0 R2 R1
    ok = score_routes(g, s, [w], include=[2]).iloc[0]
    assert ok.valid and ok.correct and ok.utility == 2
    broken = score_routes(g, s, [w], exclude=[2]).iloc[0]
    assert broken.valid and not broken.correct and broken.error_type == "exclude_violation"
    missing = score_routes(g, s, [walk(g, 0, 1, 2, 4)], include=[2]).iloc[0]
    assert missing.valid and not missing.correct and missing.error_type == "include_violation"


def test_novelty_lc_hand_computed(routes):
    g, s = routes
    walks = [walk(g, 0, 1, 3, 4), walk(g, 0, 1, 2, 4), walk(g, 0, 3, 2, 4), walk(g, 0, 3, 4), walk(g, 4, 3, 0)]
    r = score_routes(g, s, walks)
    # Three-hop walks: N = 3 + (2a + b)/3 for 0-1-3-4 above two tied at 3 + a. Each is ranked
    # among the other two: 0-1-3-4 above both; 0-1-2-4 below one, tied with the other.
    assert r["novelty"].iloc[0] == pytest.approx(3 + (2 * A + B) / 3)
    assert r["novelty_lc"].iloc[:3].tolist() == [1.0, 0.25, 0.25]  # mean 1/2, as for any uniform walker
    assert r["novelty_lc"].iloc[3] == 0.5  # the only two-hop walk: no alternative
    assert math.isnan(r["novelty_lc"].iloc[4]) and r["creativity_lc"].iloc[4] == 0  # wrong endpoints
    assert r["creativity_lc"].iloc[:4].tolist() == [1.0, 0.25, 0.25, 0.5]  # U = 1
    # With R2 included only 0-1-3-4 answers in three hops: no alternative, 1/2. 0-1-2-4 and 0-3-4
    # break the constraint, so they are ranked among the valid walks of their length, as above.
    r = score_routes(g, s, walks[:2] + [walks[3]], include=[2])
    assert r["correct"].tolist() == [True, False, False]
    assert r["novelty_lc"].tolist() == [0.5, 0.25, 0.5]
    assert r["creativity_lc"].tolist() == [2 * 0.5, 0, 0]  # U = 2 on the correct walk


def test_mid_rank_counts_ties_half():
    assert mid_rank(2.0, np.array([1.0, 2.0, 2.0 + 1e-12, 3.0])) == pytest.approx(0.25 + 0.5 * 0.5)
    assert math.isnan(mid_rank(1.0, np.array([])))


def test_walks_of_hops_enumerates_small_sets_and_samples_large_ones_uniformly(routes):
    g, _ = routes
    fw = FeasibleWalks(g, allow_revisits=False)
    exact, whole = fw.walks_of_hops(0, 4, [], [], 3, 10, np.random.default_rng(0), enumerate_max=100)
    assert whole and sorted(map(tuple, exact.tolist())) == [(0, 1, 2, 4), (0, 1, 3, 4), (0, 3, 2, 4)]
    assert len(fw.walks_of_hops(0, 4, [2], [], 2, 10, np.random.default_rng(0), 100)[0]) == 0
    drawn, whole = fw.walks_of_hops(0, 4, [], [], 3, 3000, np.random.default_rng(0), enumerate_max=0)
    counts = pd.Series(list(map(tuple, drawn.tolist()))).value_counts()
    assert not whole and len(drawn) == 3000 and set(counts.index) == set(map(tuple, exact.tolist()))
    assert (abs(counts - 1000) < 5 * math.sqrt(1000 * 2 / 3)).all()  # a binomial count within 5 sd


@pytest.fixture(scope="module")
def small():
    t = build_task_tables(SMALL["graph"], SMALL["task"], SMALL["corpus"], seed=3)
    g = load_graph(t["graph"], t["labels"], SMALL["graph"]["num_nodes"])
    return t["prompts"], scorer_for(g, t["prompts"], SMALL["scoring"], False, t["heldout"])


@pytest.fixture(scope="module")
def model_like(small):
    """Samples shaped like a model's: mostly short walks from u to v that ignore the constraints
    (valid, often not correct), some uniform feasible walks and some with the wrong end."""
    prompts, scorer = small
    g, rng = scorer.graph, np.random.default_rng(1)
    fw, rows = FeasibleWalks(g, False), []
    node_ix = {n: i for i, n in enumerate(g.nodes)}
    answered = prompts[prompts["split"] != "train"]
    for p in answered.itertuples(index=False):
        for i, hops in enumerate((2, 3, 3, 4)):
            nodes = fw.walks_of_hops(node_ix[p.start], node_ix[p.end], [], [], hops, 1, rng, 0)[0]
            if len(nodes):
                rows.append((p.prompt_id, i, walk(g, *nodes[0].tolist())))
        rows.append((p.prompt_id, 4, walk(g, *fw.sample(node_ix[p.start], node_ix[p.end], [], [], 5, 1, rng)[0])))
        rows.append((p.prompt_id, 5, [p.start, "R0", p.start]))
    samples = pd.DataFrame(rows, columns=["prompt_id", "sample_index", "walk"]).assign(run_id="r", decoding="d")
    return score_run(samples, prompts, scorer, seed=0)


def test_the_length_matched_null_has_the_models_hops_walk_for_walk(small, model_like):
    prompts, scorer = small
    null = length_matched_null(model_like, prompts, scorer, seed=0)
    valid = model_like[model_like["valid"]].reset_index(drop=True)
    assert len(null) == len(valid) and null["valid"].all()
    assert (null["hops"] == valid["hops"]).all() and (null["prompt_id"] == valid["prompt_id"]).all()
    assert (null["sample_index"] == valid["sample_index"]).all() and (null["run_id"] == "r").all()
    # A correct walk's null walk is correct too; another valid walk's is drawn from all valid ones.
    assert null.loc[valid["correct"], "correct"].all()
    assert null["correct"].mean() > valid["correct"].mean()  # some valid-only draws keep I and X by chance
    # score_run attaches the same null walks' values to the valid samples.
    assert np.allclose(valid["novelty_null_lm"], null["novelty"])
    assert np.allclose(valid["copied_null_lm"], null["copied"].astype(float))
    again = length_matched_null(model_like, prompts, scorer, seed=0)
    assert again["walk"].map(tuple).equals(null["walk"].map(tuple))


def test_new_quantities_vary(model_like):
    s = model_like
    assert s["correct"].nunique() == 2 and s["valid"].sum() > s["correct"].sum() > 0
    for col in ["novelty_lc", "creativity_lc", "novelty_null_lm", "copied_null_lm", "combinatorial_novelty_null_lm"]:
        assert s[col].nunique() > 1, col
    m = metrics_table(s, ["run_id", "decoding"])
    for col in ["correct_rate", "creativity_lc", "novelty_lc_valid", "copy_rate_null_lm", "copy_rate_net",
                "combinatorial_novelty_null_lm", "combinatorial_novelty_net"]:
        assert m[col].nunique() > 1, col
    assert (m["correct_rate"] <= m["validity"]).all()
    constrained = m[m["level"] > 1]  # level 1 has no constraint, so there correct = valid
    assert (constrained["correct_rate"] < constrained["validity"]).all()


def test_novelty_lc_does_not_grow_with_hops_on_uniform_feasible_walks(small):
    prompts, scorer = small
    raw = baseline_samples(scorer.graph, prompts, max_answer_hops(SMALL["task"]), False, 8, seed=0)
    s = score_run(raw, prompts, scorer, seed=0)
    assert s["hops"].nunique() >= 5
    assert np.corrcoef(s["novelty"], s["hops"])[0, 1] > 0.8  # the paper's N is mostly hop count
    assert abs(np.corrcoef(s["novelty_lc"], s["hops"])[0, 1]) < 0.1
    assert s["novelty_lc"].mean() == pytest.approx(0.5, abs=0.03)
    # Under its own length-matched null the feasible walker gains nothing (pooled over levels;
    # with these seeds both nets are below 0.02, where a null of other hop counts is far off).
    m = metrics_table(s, ["run_id", "decoding"])
    pooled = m[m["level"] == 0]
    assert (pooled["copy_rate_net"].abs() < 0.05).all() and (pooled["combinatorial_novelty_net"].abs() < 0.05).all()


def test_reference_sets_do_not_depend_on_which_samples_ask(small, model_like):
    prompts, scorer = small
    half = model_like[model_like["prompt_id"] % 2 == 0]
    again = score_run(half[["run_id", "decoding", "prompt_id", "sample_index", "walk"]], prompts, scorer, seed=0)
    assert np.array_equal(again["novelty_lc"].to_numpy(), half["novelty_lc"].to_numpy(), equal_nan=True)
    refs = References(scorer, prompts, seed=0)
    pid = int(prompts.loc[prompts["split"] == "test", "prompt_id"].iloc[0])
    walks, novelty = refs.get(pid, 4, correct=True)
    assert np.array_equal(References(scorer, prompts, seed=0).get(pid, 4, correct=True)[0], walks)
    assert np.allclose(novelty, scorer.path_novelty(walks))


def test_saturated_metrics_are_flagged():
    s = pd.DataFrame({
        "run": ["a"] * 4 + ["b"] * 4, "prompt_id": range(8), "valid": True, "correct": True,
        "error_type": "none", "novelty": 3.0, "novelty_lc": 0.5, "novelty_null_lm": 3.0, "utility": 1.0,
        "utility_soft": 1.0, "creativity": 3.0, "creativity_lc": 0.5, "copied": [True, True, False, False] * 2,
        "copied_null_lm": [1.0, 1.0, 1.0, 1.0, 1.0, 0.0, 1.0, 0.0], "copy_share": 0.5, "uses_heldout": False,
        "combinatorial_novelty": 0.5, "combinatorial_novelty_null_lm": 0.25,
    })
    m = aggregate(s, ["run"]).set_index("run")
    assert m.loc["a", "copy_rate_null_lm"] == 1.0 >= SATURATION and m.loc["a", "copy_rate_saturated"]
    assert m.loc["b", "copy_rate_null_lm"] == 0.5 and not m.loc["b", "copy_rate_saturated"]
    assert m.loc["a", "copy_rate_net"] == -0.5 and m.loc["b", "copy_rate_net"] == 0.0
    assert (m["combinatorial_novelty_net"] == 0.25).all() and not m["combinatorial_novelty_saturated"].any()
