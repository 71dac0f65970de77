"""Pilot: where does each arm become competent? Not part of the default run or `make bench`.

For each arm, task size and width, trains runs at a ladder of training-FLOP budgets (the
pipeline's own training code: models.experiment.train_runs, batched), with a small
learning-rate (and, for the EBTs, alpha) sweep at every budget, and reports for the
setting with the lowest validation loss:

- the level-1 greedy correct rate on the test prompts (EBT: its default thinking, think_x1),
- the excess loss: validation loss minus the task's Bayes-optimal floor on the same rows,
- steps and epochs.

Every row of every setting goes to results/benchmarks/pilot.parquet; the printed table keeps
each cell's best setting. The default run's design (config.yaml) comes from this table:

    python -m benchmarks.pilot --arms tpp ebt_system1 --widths 32 64 --tasks default small \
        --budgets 1e11 3e11 1e12
"""
from __future__ import annotations

import argparse
import copy
import itertools
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import yaml

from creativity.evaluate import score_samples
from creativity.task import build_task, load_graph, scorer_for, sequence_limits, tokenizer_from_tables
from creativity.tokenizer import prompt_tokens
from models.architectures import ARCHITECTURES
from models.experiment import train_runs
from models.generate import generate_ebt, generate_tpp
from models.model import load_model

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "results" / "benchmarks" / "pilot.parquet"

# Task sizes: overrides of config.yaml's graph and task sections. "default" is config.yaml's
# (32 nodes, walks of 2-4 hops); "n48" and "n120" are larger graphs with walks of 2-6 hops
# (n120 was the default before the pilot).
TASKS = {
    "default": {},
    "n48": {"graph": {"num_nodes": 48, "num_labels": 8}, "task": {"max_hops": 6}},
    "n120": {"graph": {"num_nodes": 120, "num_labels": 12}, "task": {"max_hops": 6}},
}
# Each cell's sweep: config.yaml's tuning.search, its learning rates scaled by sqrt(32/width)
# away from width 32 (a first guess that the sweep corrects); --lrs and --alphas replace it.
SEARCH = yaml.safe_load((REPO / "config.yaml").read_text())["tuning"]["search"]


def sweep(arch: str, width: int, lrs_at_32: list[float] | None = None, alphas: list[float] | None = None) -> list[dict]:
    lrs = [round(lr * (32 / width) ** 0.5, 6) for lr in lrs_at_32 or SEARCH[arch]["lr"]]
    if not ARCHITECTURES[arch].is_ebt:
        return [{"lr": lr} for lr in lrs]
    return [{"lr": lr, "alpha": a} for lr, a in itertools.product(lrs, alphas or SEARCH[arch]["alpha"])]


def task_config(name: str, overrides: dict | None = None) -> dict:
    cfg = yaml.safe_load((REPO / "config.yaml").read_text())
    for changes in (TASKS[name], overrides or {}):
        for section, values in changes.items():
            cfg[section] = {**cfg[section], **values}
    return cfg


def greedy_correct(arch: str, model_path, level1: pd.DataFrame, tok, scorer, max_new: int) -> float:
    model = load_model(model_path)
    ids = [tok.encode(prompt_tokens(r.start, r.end, r.include, r.exclude)) for r in level1.itertuples(index=False)]
    common = dict(max_new_tokens=max_new, eos_id=tok.eos_id)
    out = generate_ebt(model, ids, **common) if ARCHITECTURES[arch].is_ebt else generate_tpp(model, ids, **common)
    walks = pd.DataFrame({"prompt_id": level1["prompt_id"].to_numpy(),
                          "walk": [tok.decode(s[0].tokens) for s in out]})
    return float(score_samples(walks, level1, scorer)["correct"].mean())


def pilot_cell(arch: str, task_name: str, cfg: dict, task: dict, width: int, budget: float,
               seeds: list[int], settings: list[dict]) -> list[dict]:
    """Every sweep setting × seed of one (arch, task, width, budget), trained as batches."""
    shape = {"depth": 2, "width": width, "heads": max(1, width // 16)}
    tok = tokenizer_from_tables(task["labels"], cfg["graph"]["num_nodes"], cfg["task"]["node_tokens"])
    graph = load_graph(task["graph"], task["labels"], cfg["graph"]["num_nodes"], cfg["task"]["node_tokens"])
    prompts = task["prompts"]
    scorer = scorer_for(graph, prompts, cfg["scoring"], cfg["task"]["allow_revisits"], task["heldout"])
    level1 = prompts[(prompts.level == 1) & (prompts.split == "test")].reset_index(drop=True)
    max_new, max_len = sequence_limits(cfg["task"])
    floor = float(task["loss_floor"].set_index("scope").loc["validation", "floor"])
    settings = [s for s in settings for _ in seeds]
    runs = [{"run_id": f"{arch}_{i}", "arch": arch, "budget": budget, "shape": shape, "seed": seed}
            for i, seed in enumerate(seeds * (len(settings) // len(seeds)))]
    with tempfile.TemporaryDirectory() as tmp:
        dirs = [Path(tmp) / r["run_id"] for r in runs]
        t0 = time.process_time()
        results = train_runs(runs, settings, task["corpus"], tok, max_len, cfg["model"], cfg["train"], cfg["ebt"],
                             "cpu", 1, dirs)
        train_cpu = time.process_time() - t0
        rows = []
        for run, setting, d, (summary, _) in zip(runs, settings, dirs, results):
            ok = summary["status"] == "ok"
            rows.append({
                "arch": arch, "task": task_name, "num_nodes": cfg["graph"]["num_nodes"],
                "train_prompts_per_level": cfg["task"]["train_prompts_per_level"], "width": width,
                "batch_size": cfg["train"]["batch_size"],
                "budget": budget, "seed": run["seed"], "setting": json.dumps(setting, sort_keys=True),
                "steps": summary["steps"], "epochs": summary["epochs"], "flops": summary["flops_measured"],
                "val_loss": summary["val_loss"], "floor": floor, "excess_loss": summary["val_loss"] - floor,
                "status": summary["status"], "train_cpu_s_per_run": train_cpu / len(runs),
                "level1_correct": greedy_correct(arch, d / "model.pt", level1, tok, scorer, max_new) if ok else 0.0,
                "level1_prompts": len(level1),
            })
    return rows


def best_settings(rows: pd.DataFrame) -> pd.DataFrame:
    """Per cell, the setting with the lowest mean validation loss over seeds (as the tuning stage picks)."""
    keys = ["num_nodes", "train_prompts_per_level", "arch", "batch_size", "width", "budget"]
    by_setting = rows.groupby([*keys, "setting"], as_index=False).agg(
        val_loss=("val_loss", "mean"), excess_loss=("excess_loss", "mean"), level1_correct=("level1_correct", "mean"),
        steps=("steps", "first"), epochs=("epochs", "max"), train_cpu_s=("train_cpu_s_per_run", "mean"))
    by_setting["val_loss"] = by_setting["val_loss"].fillna(np.inf)
    return by_setting.loc[by_setting.groupby(keys)["val_loss"].idxmin()].reset_index(drop=True)


def markdown_table(best: pd.DataFrame) -> str:
    """One row per (task, arm, batch size, width), one column per budget: level-1 correct
    rate / excess loss of the best setting, which is named below the table."""
    lines, settings = [], []
    best = best.sort_values(["num_nodes", "train_prompts_per_level", "arch", "batch_size", "width", "budget"])
    best = best.assign(budget=best["budget"].map(lambda b: float(f"{b:.2g}")))  # 8.44e11 and 8.4e11: one column
    budgets = sorted(best["budget"].unique())
    lines.append("| nodes | demos/level | arm | batch | width | " + " | ".join(f"{b:.2g}" for b in budgets) + " |")
    lines.append("|---" * (5 + len(budgets)) + "|")
    keys = ["num_nodes", "train_prompts_per_level", "arch", "batch_size", "width"]
    for (nodes, demos, arch, batch, width), grp in best.groupby(keys, sort=False):
        cells = grp.set_index("budget")
        row = [f"{cells.loc[b, 'level1_correct']:.2f} / {cells.loc[b, 'excess_loss']:.2f}" if b in cells.index else ""
               for b in budgets]
        lines.append(f"| {nodes} | {demos:,} | {ARCHITECTURES[arch].display} | {int(batch)} | {width} | "
                     + " | ".join(row) + " |")
        settings.append(f"n{nodes} {demos:,}/level {arch} b{int(batch)} w{width}: " + ", ".join(
            f"{b:.2g} {json.loads(s)}" for b, s in zip(grp["budget"], grp["setting"])))
    return "\n".join(lines + ["", "Best setting per cell (lowest validation loss):"] + [f"- {s}" for s in settings])


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--arms", nargs="+", default=list(ARCHITECTURES))
    parser.add_argument("--widths", nargs="+", type=int, default=[32, 64, 128])
    parser.add_argument("--tasks", nargs="+", default=list(TASKS))
    parser.add_argument("--budgets", nargs="+", type=float, default=[1e11, 3e11, 1e12])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument("--train-prompts-per-level", type=int, default=None,
                        help="demonstrations per level (default: config.yaml's)")
    parser.add_argument("--lrs", nargs="+", type=float, default=None,
                        help="learning rates at width 32, scaled by sqrt(32/width) (default: tuning.search's)")
    parser.add_argument("--alphas", nargs="+", type=float, default=None, help="EBT alphas (default: tuning.search's)")
    parser.add_argument("--batch-size", type=int, default=None, help="train.batch_size (default: config.yaml's)")
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--show", action="store_true", help="print the table of --out as Markdown; train nothing")
    args = parser.parse_args()
    if args.show:
        print(markdown_table(best_settings(pd.read_parquet(args.out))))
        return
    torch.set_num_threads(1)
    rows = pd.read_parquet(args.out).to_dict("records") if args.out.exists() else []
    overrides = {"task": {"train_prompts_per_level": args.train_prompts_per_level}} if args.train_prompts_per_level else {}
    if args.batch_size:
        overrides["train"] = {"batch_size": args.batch_size}
    for task_name in args.tasks:
        cfg = task_config(task_name, copy.deepcopy(overrides))
        task = build_task(cfg["graph"], cfg["task"], cfg["corpus"], cfg["seed"])
        for arch, width, budget in itertools.product(args.arms, args.widths, args.budgets):
            settings = sweep(arch, width, args.lrs, args.alphas)
            new = pilot_cell(arch, task_name, cfg, task, width, budget, args.seeds, settings)
            rows = [r for r in rows if not _same_cell(r, new[0])] + new
            pd.DataFrame(rows).to_parquet(args.out)
            print(best_settings(pd.DataFrame(new)).to_string(index=False, header=True), flush=True)
    print(best_settings(pd.DataFrame(rows)).to_string(index=False))


def _same_cell(a: dict, b: dict) -> bool:
    keys = ("arch", "num_nodes", "width", "budget", "train_prompts_per_level", "batch_size")
    return all(a[k] == b[k] for k in keys)


if __name__ == "__main__":
    main()
