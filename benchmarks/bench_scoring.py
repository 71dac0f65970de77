"""Scoring throughput: walks scored per second on the default graph.

Walks are a realistic mix: base walks of test prompts (valid), the same walks
with one label swapped (mostly hallucinated edges) and truncated walks (parse
errors), already encoded as walk-code arrays, as the scorer holds them.
"""
import time
from pathlib import Path

import numpy as np
import yaml

from creativity.scoring import label_mask
from creativity.task import build_task_tables, load_graph, scorer_for

REPO = Path(__file__).resolve().parents[1]

N_WALKS = 200_000


def run() -> dict:
    cfg = yaml.safe_load((REPO / "config.yaml").read_text())
    t = build_task_tables(cfg["graph"], cfg["task"], cfg["corpus"], cfg["seed"])
    graph = load_graph(t["graph"], t["labels"], cfg["graph"]["num_nodes"], cfg["task"]["node_tokens"])
    scorer = scorer_for(graph, t["prompts"], cfg["scoring"], cfg["task"]["allow_revisits"], t["heldout"])
    p = t["prompts"]
    rng = np.random.default_rng(0)
    pick = rng.integers(len(p), size=N_WALKS)
    walks = [list(w) for w in p["base_walk"].to_numpy()[pick]]
    for i in range(1, N_WALKS, 3):  # corrupt a label
        if len(walks[i]) > 1:
            walks[i][1] = graph.labels[rng.integers(graph.num_labels)]
    for i in range(2, N_WALKS, 3):  # truncate
        walks[i] = walks[i][:-1]
    node_ix = {n: i for i, n in enumerate(graph.nodes)}
    label_ix = {l: i for i, l in enumerate(graph.labels)}
    ids = scorer.codes.encode(walks)
    start = p["start"].map(node_ix).to_numpy()[pick]
    end = p["end"].map(node_ix).to_numpy()[pick]
    inc = np.array([label_mask(label_ix[l] for l in ls) for ls in p["include"]])[pick]
    exc = np.array([label_mask(label_ix[l] for l in ls) for ls in p["exclude"]])[pick]
    best = np.inf
    for _ in range(3):
        t0 = time.perf_counter()
        scorer.score(ids, start, end, inc, exc)
        best = min(best, time.perf_counter() - t0)
    return {"scoring_walks_per_s": N_WALKS / best}


if __name__ == "__main__":
    print(run())
