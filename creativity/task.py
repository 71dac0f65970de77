"""Build the task tables from the `graph`, `task` and `corpus` config sections."""
from __future__ import annotations

import pandas as pd

from .corpus import build_corpus
from .graph import ConceptGraph, node_names, random_graph
from .prompts import PromptSpec, build_prompts, prompts_table
from .scoring import Scorer, ScoreWeights
from .tokenizer import Tokenizer


def build_task_tables(graph_cfg: dict, task_cfg: dict, corpus_cfg: dict, seed: int) -> dict[str, pd.DataFrame]:
    graph = random_graph(
        num_nodes=graph_cfg["num_nodes"],
        num_labels=graph_cfg["num_labels"],
        mean_degree=graph_cfg["mean_degree"],
        zipf_exponent=graph_cfg["zipf_exponent"],
        seed=seed,
    )
    spec = PromptSpec(
        levels=task_cfg["levels"],
        test_per_level=task_cfg["test_prompts_per_level"],
        train_per_level=task_cfg["train_prompts_per_level"],
        min_hops=task_cfg["min_hops"],
        max_hops=task_cfg["max_hops"],
        allow_revisits=task_cfg["allow_revisits"],
        seed=seed + 1,
    )
    test, train = build_prompts(graph, spec)
    edges = graph.edges_table()
    prompts = prompts_table(graph, test, train)
    return {
        "graph": edges,
        "labels": graph.labels_table(),
        "prompts": prompts,
        "corpus": build_corpus(edges, prompts, corpus_cfg["edge_copies"]),
    }


def load_graph(edges: pd.DataFrame, labels: pd.DataFrame, num_nodes: int) -> ConceptGraph:
    return ConceptGraph.from_tables(edges, labels, num_nodes)


def tokenizer_for(graph: ConceptGraph) -> Tokenizer:
    return Tokenizer(labels=tuple(graph.labels), nodes=tuple(graph.nodes))


def scorer_for(graph: ConceptGraph, prompts: pd.DataFrame, scoring_cfg: dict) -> Scorer:
    demos = [list(w) for w in prompts.loc[prompts["split"] == "train", "base_walk"]]
    weights = ScoreWeights(
        alpha_hops=scoring_cfg["alpha_hops"],
        alpha_rarity=scoring_cfg["alpha_rarity"],
        alpha_include=scoring_cfg["alpha_include"],
        alpha_exclude=scoring_cfg["alpha_exclude"],
    )
    return Scorer(graph, tokenizer_for(graph), weights, demos)


def tokenizer_from_tables(labels: pd.DataFrame, num_nodes: int) -> Tokenizer:
    return Tokenizer(labels=tuple(labels["label"]), nodes=tuple(node_names(num_nodes)))


def sequence_limits(task_cfg: dict) -> tuple[int, int]:
    """(max new tokens at generation, max sequence length the models must support).

    Generation may run two hops past the longest demonstration before it is cut off.
    """
    longest_prompt = 5 + task_cfg["levels"]
    max_new_tokens = 2 * (task_cfg["max_hops"] + 2) + 1 + 1  # walk + EOS
    return max_new_tokens, longest_prompt + max_new_tokens
