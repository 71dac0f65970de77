"""Build the task tables from the `graph`, `task` and `corpus` config sections."""
from __future__ import annotations

import numpy as np
import pandas as pd

from . import compositions
from .corpus import build_corpus, validation_sample
from .graph import ConceptGraph, node_names, random_graph
from .loss_floor import CorpusFloor, WalkPosterior, loss_floor_table
from .prompts import PromptSpec, build_prompts, demonstration_hops, prompts_table
from .scoring import Scorer, ScoreWeights
from .tokenizer import Tokenizer

# Generation may run this many hops past the longest prompt's base walk before it is cut
# off; the feasible-set baseline draws from walks of at most as many hops.
ANSWER_HOP_MARGIN = 2


def prompt_spec(task_cfg: dict, seed: int) -> PromptSpec:
    return PromptSpec(
        levels=task_cfg["levels"],
        test_per_level=task_cfg["test_prompts_per_level"],
        train_per_level=task_cfg["train_prompts_per_level"],
        min_hops=task_cfg["min_hops"],
        max_hops=task_cfg["max_hops"],
        allow_revisits=task_cfg["allow_revisits"],
        min_endpoint_distance=task_cfg["min_endpoint_distance"],
        ood_prompts=task_cfg["ood_prompts"],
        ood_max_hops=task_cfg["ood_max_hops"],
        seed=seed,
    )


def task_graph(graph_cfg: dict, task_cfg: dict, seed: int) -> ConceptGraph:
    return random_graph(
        num_nodes=graph_cfg["num_nodes"],
        num_labels=graph_cfg["num_labels"],
        mean_degree=graph_cfg["mean_degree"],
        zipf_exponent=graph_cfg["zipf_exponent"],
        seed=seed,
        node_tokens=task_cfg["node_tokens"],
    )


def build_task_tables(graph_cfg: dict, task_cfg: dict, corpus_cfg: dict, seed: int) -> dict[str, pd.DataFrame]:
    graph = task_graph(graph_cfg, task_cfg, seed)
    heldout = compositions.withhold(
        graph, task_cfg["heldout_composition_fraction"], task_cfg["allow_revisits"], np.random.default_rng(seed + 2)
    )
    prompts = prompts_table(graph, build_prompts(graph, prompt_spec(task_cfg, seed + 1), heldout))
    edges = graph.edges_table()
    return {
        "graph": edges,
        "labels": graph.labels_table(),
        "prompts": prompts,
        "heldout": compositions.to_table(graph, heldout),
        "corpus": build_corpus(edges, prompts, corpus_cfg["edge_copies"]),
    }


def build_task(graph_cfg: dict, task_cfg: dict, corpus_cfg: dict, seed: int) -> dict[str, pd.DataFrame]:
    """The task tables of `build_task_tables`, with the validation sample every run shares
    marked in the corpus (column `validation`) and the Bayes-optimal loss: per corpus row
    (`loss_tokens`, `floor_nats`: its floor summed over its loss tokens, NaN where a
    sampled estimate left it out) and per scope (table `loss_floor`: `validation`, the
    validation rows; `corpus`, every row)."""
    tables = build_task_tables(graph_cfg, task_cfg, corpus_cfg, seed)
    corpus, prompts = tables["corpus"].copy(), tables["prompts"]
    corpus["validation"] = validation_sample(corpus, prompts, corpus_cfg["validation_fraction"], seed + 3)
    graph = load_graph(tables["graph"], tables["labels"], graph_cfg["num_nodes"], task_cfg["node_tokens"])
    posterior = WalkPosterior(graph, compositions.from_table(graph, tables["heldout"]),
                              demonstration_hops(prompt_spec(task_cfg, seed + 1)), task_cfg["allow_revisits"])
    floors = CorpusFloor(posterior, corpus, prompts, tokenizer_for(graph, task_cfg["node_tokens"]))
    scopes = {"validation": floors.scope(np.flatnonzero(corpus["validation"]), seed),
              "corpus": floors.scope(np.arange(len(corpus)), seed)}
    corpus["loss_tokens"], corpus["floor_nats"] = floors.tokens, floors.nats
    return {**tables, "corpus": corpus, "loss_floor": loss_floor_table(scopes)}


def load_graph(edges: pd.DataFrame, labels: pd.DataFrame, num_nodes: int, node_tokens: int = 1) -> ConceptGraph:
    return ConceptGraph.from_tables(edges, labels, num_nodes, node_tokens)


def tokenizer_for(graph: ConceptGraph, node_tokens: int = 1) -> Tokenizer:
    return Tokenizer(labels=tuple(graph.labels), nodes=tuple(graph.nodes), node_tokens=node_tokens)


def scorer_for(graph: ConceptGraph, prompts: pd.DataFrame, scoring_cfg: dict, allow_revisits: bool = False,
               heldout: pd.DataFrame | None = None) -> Scorer:
    """The scorer of a built task. Without the `heldout` table every walk has uses_heldout False
    (sampling's reward tilt needs only creativity)."""
    demos = [list(w) for w in prompts.loc[prompts["split"] == "train", "base_walk"]]
    weights = ScoreWeights(
        alpha_hops=scoring_cfg["alpha_hops"],
        alpha_rarity=scoring_cfg["alpha_rarity"],
        alpha_include=scoring_cfg["alpha_include"],
        alpha_exclude=scoring_cfg["alpha_exclude"],
    )
    heldout_keys = compositions.from_table(graph, heldout) if heldout is not None else np.empty(0, dtype=np.int64)
    return Scorer(graph, weights, demos, heldout_keys, allow_revisits, scoring_cfg["copy_min_hops"])


def load_task_scorer(paths, num_nodes: int, task_cfg: dict, scoring_cfg: dict) -> tuple[pd.DataFrame, Scorer]:
    """The prompts table and the full scorer, from the task's Parquet files
    (`paths` has prompts, graph, labels and heldout)."""
    prompts = pd.read_parquet(paths.prompts)
    labels = pd.read_parquet(paths.labels)
    graph = load_graph(pd.read_parquet(paths.graph), labels, num_nodes, task_cfg["node_tokens"])
    scorer = scorer_for(graph, prompts, scoring_cfg, task_cfg["allow_revisits"], pd.read_parquet(paths.heldout))
    return prompts, scorer


def tokenizer_from_tables(labels: pd.DataFrame, num_nodes: int, node_tokens: int = 1) -> Tokenizer:
    return Tokenizer(labels=tuple(labels["label"]), nodes=tuple(node_names(num_nodes, node_tokens)), node_tokens=node_tokens)


def max_answer_hops(task_cfg: dict) -> int:
    """The most hops a generated walk can have: the longest base walk plus ANSWER_HOP_MARGIN."""
    longest = max(task_cfg["max_hops"], task_cfg["ood_max_hops"] if task_cfg["ood_prompts"] else 0)
    return longest + ANSWER_HOP_MARGIN


def prompt_length(task_cfg: dict) -> int:
    """Tokens of a top-level prompt, BOS u v INC .. EXC .. SEP with levels - 1 constraint
    labels: a node takes task.node_tokens tokens, a label one."""
    return 2 * task_cfg["node_tokens"] + 3 + task_cfg["levels"]


def walk_length(hops: int, node_tokens: int) -> int:
    """Tokens of a walk of `hops` hops and its EOS: hops + 1 nodes of node_tokens tokens,
    a label per hop, and EOS."""
    return (hops + 1) * node_tokens + hops + 1


def sequence_limits(task_cfg: dict) -> tuple[int, int]:
    """(max new tokens at generation, max sequence length the models must support).

    A node takes task.node_tokens tokens, a label one. A prompt of the top level is
    BOS u v INC .. EXC .. SEP with levels - 1 constraint labels; an answer is a walk of
    up to max_answer_hops hops and EOS.
    """
    max_new_tokens = walk_length(max_answer_hops(task_cfg), task_cfg["node_tokens"])
    return max_new_tokens, prompt_length(task_cfg) + max_new_tokens
