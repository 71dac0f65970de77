"""Do both architectures learn the task? (issue: ~1M-parameter models, ~2 minutes of CPU.)

Trains a Transformer++ and an EBT (System 1) of the same shape (depth 5, width 128,
about 1M non-embedding parameters) on the default task to the same FLOP budget, then
reports greedy validity on the level-1 test prompts (EBT: argmax after the training
step count). Not part of `make bench` (it takes several minutes):

    python -m benchmarks.bench_learning [budget_flops]
"""
import json
import sys
import tempfile
import time
from pathlib import Path

import torch
import yaml

from creativity.evaluate import score_samples
from creativity.task import build_task_tables, load_graph, scorer_for, sequence_limits, tokenizer_from_tables
from models.experiment import sample_run, train_run

REPO = Path(__file__).resolve().parents[1]
SHAPE = {"depth": 5, "width": 128, "heads": 4}


def run(budget: float = 6e12) -> dict:
    cfg = yaml.safe_load((REPO / "config.yaml").read_text())
    t = build_task_tables(cfg["graph"], cfg["task"], cfg["corpus"], cfg["seed"])
    tok = tokenizer_from_tables(t["labels"], cfg["graph"]["num_nodes"])
    graph = load_graph(t["graph"], t["labels"], cfg["graph"]["num_nodes"])
    scorer = scorer_for(graph, t["prompts"], cfg["scoring"])
    level1 = t["prompts"][t["prompts"].level == 1]  # sample_run keeps the test split
    max_new, max_len = sequence_limits(cfg["task"])
    threads = torch.get_num_threads()
    out = {}
    for arch in ("tpp", "ebt_system1"):
        run_spec = {"run_id": arch, "arch": arch, "budget": budget, "shape": SHAPE, "seed": 0}
        with tempfile.TemporaryDirectory() as run_dir:
            t0 = time.perf_counter()
            summary, _ = train_run(run_spec, t["corpus"], tok, max_len, cfg["model"], cfg["train"], cfg["ebt"],
                                   "cpu", threads, run_dir)
            seconds = time.perf_counter() - t0
            decoding = {**cfg["decoding"], "tpp": {"temperatures": [], "tilt_betas": [], "tilt_temperature": 1.0},
                        "ebt": {"steps_multipliers": [1], "verify_candidates": [], "langevin_sigmas": []}}
            samples = sample_run(run_spec, summary["status"], Path(run_dir) / "model.pt", level1, tok, decoding,
                                 scorer, max_new, "cpu", threads)
        scored = score_samples(samples, level1, scorer)
        out[arch] = {
            "params": summary["params"],
            "steps": summary["steps"],
            "train_seconds": round(seconds, 1),
            "val_loss": round(summary["val_loss"], 3),
            "level1_validity": round(float(scored["valid"].mean()), 3),
            "level1_prompts": int(scored["prompt_id"].nunique()),
        }
    return out


if __name__ == "__main__":
    print(json.dumps(run(*(float(a) for a in sys.argv[1:])), indent=2))
