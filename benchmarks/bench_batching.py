"""Training speed of default-run jobs, batched against one run at a time.

    cpu_core_matmul_gflops   fp32 1024x1024 matmul on one thread, best of several: the per-core peak
    default_train_mfu        a representative set of default-run training jobs (every architecture,
                             the smallest shared budget, the main shape, every seed: one batch per
                             architecture, as the train rule runs them), each a separate process
                             through the DAG's own code path (models.experiment.train_runs), imports
                             included: summed measured training FLOPs / summed job CPU seconds / peak
    batched_train_speedup    the same runs trained one per process, one run at a time (the old
                             layout): their summed CPU seconds / the batched jobs' summed CPU seconds,
                             at the same measured FLOPs
    one_run_train_mfu        default_train_mfu of the one-run-per-process jobs

Each job runs with one thread, as a DAG job does (resources.threads_per_job).

Run: python -m benchmarks.bench_batching [--budget-index 0]
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def cpu_core_matmul_gflops(n: int = 1024, repeats: int = 7) -> float:
    import torch

    torch.set_num_threads(1)
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t)
    return 2 * n**3 / best / 1e9


def _default_config() -> dict:
    from pipeline.config import read_config

    return read_config(yaml.safe_load((ROOT / "config.yaml").read_text()))


def _build_task(cfg: dict, where: Path) -> None:
    from creativity.io import write_parquet
    from creativity.task import build_task

    tables = build_task(cfg["graph"], cfg["task"], cfg["corpus"], cfg["seed"])
    for name in ("corpus", "labels"):
        write_parquet(tables[name], where / f"{name}.parquet")


def _job(spec: dict) -> None:
    """One training job, as workflow/scripts/train.py runs it (imports included in its time)."""
    import pandas as pd

    from creativity.task import sequence_limits, tokenizer_from_tables
    from models.experiment import train_runs

    cfg, task = spec["config"], Path(spec["task_dir"])
    results = train_runs(
        runs=spec["runs"], settings=spec["settings"], corpus=pd.read_parquet(task / "corpus.parquet"),
        tokenizer=tokenizer_from_tables(pd.read_parquet(task / "labels.parquet"), cfg["graph"]["num_nodes"],
                                        cfg["task"]["node_tokens"]),
        max_seq_len=sequence_limits(cfg["task"])[1], model_cfg=cfg["model"],
        train_cfg={k: v for k, v in cfg["train"].items() if k != "min_steps"}, ebt_cfg=cfg["ebt"],
        device="cpu", threads=1, run_dirs=spec["run_dirs"])
    Path(spec["out"]).write_text(json.dumps([s["flops_measured"] for s, _ in results]))


def _run_job(spec: dict, where: Path) -> tuple[float, float]:
    """(job CPU seconds, measured training FLOPs) of one job in its own process."""
    spec_path = where / f"job{time.monotonic_ns()}.json"
    spec["out"] = str(spec_path.with_suffix(".out"))
    spec_path.write_text(json.dumps(spec))
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run([sys.executable, "-m", "benchmarks.bench_batching", "--job", str(spec_path)], cwd=ROOT, check=True,
                   env={"OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"})
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return cpu, float(sum(json.loads(Path(spec["out"]).read_text())))


def run(budget_index: int = 0) -> dict:
    from models.tuning import search_settings

    cfg = _default_config()
    budget = sorted(cfg["budgets"])[budget_index]
    shape = cfg["shapes"][0]
    peak = cpu_core_matmul_gflops()
    batched, alone = [0.0, 0.0], [0.0, 0.0]
    with tempfile.TemporaryDirectory() as tmp:
        where = Path(tmp)
        _build_task(cfg, where)
        for arch in cfg["architectures"]:
            # The tuned setting does not change a step's cost: the sweep's first setting stands in.
            setting = search_settings(cfg["tuning"]["search"][arch])[0]
            runs = [{"run_id": f"{arch}_s{s}", "arch": arch, "budget": budget, "shape": shape, "seed": s}
                    for s in cfg["seeds"]]
            common = {"config": cfg, "task_dir": tmp}
            cpu, flops = _run_job({**common, "runs": runs, "settings": [setting] * len(runs),
                                   "run_dirs": [str(where / "batched" / r["run_id"]) for r in runs]}, where)
            batched = [batched[0] + cpu, batched[1] + flops]
            for r in runs:
                cpu, flops = _run_job({**common, "runs": [r], "settings": [setting],
                                       "run_dirs": [str(where / "alone" / r["run_id"])]}, where)
                alone = [alone[0] + cpu, alone[1] + flops]
    return {
        "cpu_core_matmul_gflops": round(peak, 1),
        "default_train_jobs": f"{len(cfg['architectures'])} batches of {len(cfg['seeds'])} runs at {budget:.2g} FLOPs, "
                              f"shape L{shape['depth']}-d{shape['width']}",
        "default_train_mfu": round(batched[1] / batched[0] / 1e9 / peak, 3),
        "one_run_train_mfu": round(alone[1] / alone[0] / 1e9 / peak, 3),
        "batched_train_speedup": round(alone[0] / batched[0] * batched[1] / alone[1], 2),
        "default_train_job_cpu_s": round(batched[0], 1),
        "one_run_train_job_cpu_s": round(alone[0], 1),
    }


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_batching", description=__doc__.split("\n\n")[0])
    parser.add_argument("--budget-index", type=int, default=0, help="which shared budget, smallest first (default 0)")
    parser.add_argument("--job", type=Path, help=argparse.SUPPRESS)  # one job, run by the benchmark itself
    args = parser.parse_args()
    if args.job:
        _job(json.loads(args.job.read_text()))
    else:
        print(json.dumps(run(args.budget_index), indent=2))
