"""`make bench`: run every benchmark, print a table, write results/benchmarks/summary.json.

Benchmarks measure; they never assert. Goals are printed next to the figures.
"""
import argparse
import json
import platform
import sys
from pathlib import Path

GOALS = {
    "tpp_train_mfu": ">= 0.5",
    "default_train_mfu": ">= 0.4",
    "batched_train_speedup": ">= 2.5",
    "ebt_step_cost_ratio": "<= 1.2 x ebt_step_flop_ratio",
    "tpp_generate_speedup_kv": ">= 3",
    "ebt_generate_speedup_cache": ">= 3",
    "scoring_walks_per_s": ">= 100000",
    "dag_dryrun_seconds": "< 60 with dag_jobs >= 2000",
}


def main(out=Path("results/benchmarks/summary.json")) -> dict:
    import torch

    from benchmarks import bench_batching, bench_dag, bench_models, bench_scoring

    summary = {}
    for bench in (bench_models, bench_batching, bench_scoring, bench_dag):
        summary.update(bench.run())
    summary["machine"] = f"{platform.machine()} {torch.get_num_threads()} threads, torch {torch.__version__}"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(summary, indent=2))
    width = max(map(len, summary))
    for key, value in summary.items():
        shown = f"{value:,.3f}" if isinstance(value, float) else str(value)
        print(f"{key:<{width}}  {shown:>16}  {GOALS.get(key, '')}")
    print(f"\nwritten to {out}", file=sys.stderr)
    return summary


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.split("\n\n")[0],
                                     epilog="Goals: " + "; ".join(f"{k} {v}" for k, v in GOALS.items()))
    parser.add_argument("--out", type=Path, default=Path("results/benchmarks/summary.json"),
                        help="where the summary goes (default: %(default)s)")
    main(parser.parse_args().out)
