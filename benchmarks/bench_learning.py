"""Do the three arms learn the task, at matched training FLOPs and at matched optimiser steps?

Trains the Transformer++, EBT System 1 and EBT System 2 on one shape of the default task,
each with its tuned setting (results/tuning/{arch}/best.json from the pipeline's tuning
stage; the config's values where none exists), twice:

* matched FLOPs: every arm gets the same measured training FLOPs (`--flops`);
* matched steps: every arm gets the same number of optimiser steps (`--steps`).

It reports val loss and greedy validity on the level-1 test prompts (EBT: its default
thinking, think_x1). Not part of `make bench` (it takes several minutes):

    python -m benchmarks.bench_learning [--flops 1.2e12] [--steps 600] [--depth 2 --width 64 --heads 4]
"""
import argparse
import json
import tempfile
import time
from pathlib import Path

import torch
import yaml

from creativity.evaluate import score_samples
from creativity.task import build_task_tables, load_graph, scorer_for, sequence_limits, tokenizer_from_tables
from models.architectures import ARCHITECTURES
from models.experiment import sample_run, train_run

REPO = Path(__file__).resolve().parents[1]
ARMS = tuple(ARCHITECTURES)


def tuned_setting(arch: str) -> dict:
    best = REPO / "results" / "tuning" / arch / "best.json"
    return json.loads(best.read_text())["setting"] if best.exists() else {}


def train_and_score(arch, budget, shape, cfg, task, setting) -> dict:
    node_tokens, revisits = cfg["task"]["node_tokens"], cfg["task"]["allow_revisits"]
    tok = tokenizer_from_tables(task["labels"], cfg["graph"]["num_nodes"], node_tokens)
    graph = load_graph(task["graph"], task["labels"], cfg["graph"]["num_nodes"], node_tokens)
    prompts = task["prompts"]
    scorer = scorer_for(graph, prompts, cfg["scoring"], revisits, task["heldout"])
    level1 = prompts[(prompts.level == 1) & (prompts.split == "test")]
    max_new, max_len = sequence_limits(cfg["task"])
    threads = torch.get_num_threads()
    run_spec = {"run_id": arch, "arch": arch, "budget": budget, "shape": shape, "seed": 0}
    decoding = {**cfg["decoding"], "tpp": {"temperatures": [], "tilt_betas": [], "tilt_temperature": 1.0},
                "ebt": {"steps_multipliers": [1], "verify_candidates": [], "langevin_sigmas": []}}
    with tempfile.TemporaryDirectory() as run_dir:
        t0 = time.perf_counter()
        summary, _ = train_run(run_spec, task["corpus"], tok, max_len, cfg["model"], cfg["train"], cfg["ebt"],
                               setting, "cpu", threads, run_dir)
        seconds = time.perf_counter() - t0
        samples = sample_run(run_spec, summary["status"], Path(run_dir) / "model.pt", level1, tok, decoding,
                             scorer, max_new, "cpu", threads)
    scored = score_samples(samples, level1, scorer)
    return {"setting": setting, "steps": summary["steps"], "flops": summary["flops_measured"],
            "train_seconds": round(seconds, 1), "val_loss": round(summary["val_loss"], 3),
            "level1_validity": round(float(scored["valid"].mean()), 3), "level1_prompts": len(level1)}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--flops", type=float, default=1.2e12)
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--depth", type=int, default=2)
    parser.add_argument("--width", type=int, default=64)
    parser.add_argument("--heads", type=int, default=4)
    args = parser.parse_args()
    cfg = yaml.safe_load((REPO / "config.yaml").read_text())
    task = build_task_tables(cfg["graph"], cfg["task"], cfg["corpus"], cfg["seed"])
    shape = {"depth": args.depth, "width": args.width, "heads": args.heads}
    out = {"shape": shape, "matched_flops": {}, "matched_steps": {}}
    for arch in ARMS:
        setting = tuned_setting(arch)
        out["matched_flops"][arch] = train_and_score(arch, args.flops, shape, cfg, task, setting)
        per_step = out["matched_flops"][arch]["flops"] / max(out["matched_flops"][arch]["steps"], 1)
        out["matched_steps"][arch] = train_and_score(arch, per_step * (args.steps + 0.5), shape, cfg, task, setting)
        print(json.dumps({arch: {m: out[m][arch] for m in ("matched_flops", "matched_steps")}}), flush=True)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
