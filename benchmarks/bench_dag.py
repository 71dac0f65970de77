"""Scale of the paper-scale preset: a dry run of its DAG, and its training compute.

paper_training_flops sums every grid run's budget and every tuning run's (the budgets are
measured FLOPs, so this is what training will spend). paper_gpu_hours projects that onto
H100s at an assumed model-FLOPs utilisation: an analytic projection, not a measurement.
"""
import re
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PRESET = REPO / "workflow/presets/paper.yaml"
H100_BF16_DENSE_FLOPS = 989e12  # dense bf16 peak of an H100 SXM
ASSUMED_MFU = 0.3


def training_flops(preset=PRESET) -> float:
    from models.tuning import search_settings
    from pipeline.grid import grid_points
    from pipeline.presets import load_config

    cfg = load_config(preset)
    grid = sum(p["budget"] for p in grid_points(cfg)) * len(cfg["seeds"])
    tuning = sum(len(search_settings(cfg["tuning"]["search"][a])) for a in cfg["architectures"]) * cfg["tuning"]["budget"]
    return grid + tuning


def run() -> dict:
    snakemake = str(Path(sys.executable).with_name("snakemake"))
    cmd = [snakemake, "-n", "--cores", "1", "--quiet", "rules", "--configfile", str(PRESET)]
    t0 = time.perf_counter()
    out = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, check=True)
    seconds = time.perf_counter() - t0
    total = re.search(r"^total\s+(\d+)$", out.stdout + out.stderr, flags=re.M)
    flops = training_flops()
    return {"dag_dryrun_seconds": seconds, "dag_jobs": int(total.group(1)) if total else -1,
            "paper_training_flops": flops,
            "paper_gpu_hours_projected": flops / (H100_BF16_DENSE_FLOPS * ASSUMED_MFU) / 3600}


if __name__ == "__main__":
    print(run())
