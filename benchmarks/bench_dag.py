"""Scale of the paper-scale preset: a dry run of its DAG, and its compute.

paper_training_flops sums every grid run's budget and every tuning run's (the budgets are
measured FLOPs, so this is what training will spend). paper_sampling_flops is the analytic
inference cost of every grid run's answers under every decoding setting, an upper bound:
every prompt as long as a top-level one and every answer max_new_tokens long.
paper_gpu_hours_projected puts both onto H100s at an assumed model-FLOPs utilisation: an
analytic projection, not a measurement (decoding small batches runs below that utilisation).
The utilisation is assumed because no GPU has been lent to measure it. It assumes the
batched path: a train job stacks every seed of a grid point (paper_runs_per_train_job), so
each kernel is that many runs wide. On CPU the measured utilisation is set by model width,
not by batching (benchmarks/bench_batching.py), so 0.3 is a guess for the paper's 1-10M
parameter models at batch 256 that a GPU session should replace with a measurement.
"""
import re
import subprocess
import sys
import time
from pathlib import Path

from creativity.task import prompt_length, sequence_limits
from models.architectures import ARCHITECTURES, TPP_FAMILY
from models.decoding import DecodingSetting, decoding_settings
from models.experiment import answer_cost
from models.flops import answer_flops
from pipeline.grid import meta_model, plan_grid, planned_training, task_dimensions
from pipeline.presets import load_config

REPO = Path(__file__).resolve().parents[1]
PRESET = REPO / "workflow/presets/paper.yaml"
H100_BF16_DENSE_FLOPS = 989e12  # dense bf16 peak of an H100 SXM
ASSUMED_MFU = 0.3


def training_flops(preset=PRESET) -> float:
    cfg = load_config(preset)
    planned = planned_training(cfg, plan_grid(cfg))
    return planned["flops"] + planned["tuning_flops"]


def answers_per_prompt(family: str, decoding_cfg: dict) -> list[tuple[int, DecodingSetting]]:
    """(answers generated per prompt, the setting that prices them) for each setting, as
    models.experiment.sample_run generates them: best-of-k and the reward tilt re-rank the
    k samples drawn at tilt_temperature, generated once and shared with a sampling setting
    at that temperature."""
    settings = decoding_settings(family, decoding_cfg)
    if family != TPP_FAMILY:
        return [(s.num_samples, s) for s in settings]
    generated = [s for s in settings if s.family in ("greedy", "sample")]
    sampled = {s.temperature for s in generated}
    pools = {s.temperature: s for s in settings if s.family in ("best_of_k_ll", "reward_tilt")}
    return [(s.num_samples, s) for s in generated] + \
           [(decoding_cfg["num_samples"], s) for t, s in pools.items() if t not in sampled]


def sampling_flops_per_run(cfg: dict) -> dict[str, float]:
    """Grid point ("{arch}_{budget}_{shape}", as in run_id without the seed) -> analytic
    inference FLOPs of one seed's samples, bounded as the module docstring says."""
    task = cfg["task"]
    vocab, seq_len, _ = task_dimensions(cfg)
    prompt_len, new_tokens = prompt_length(task), sequence_limits(task)[0]
    prompts = task["levels"] * task["test_prompts_per_level"] + task["ood_prompts"]
    out = {}
    for point in plan_grid(cfg):
        model = meta_model(point["arch"], point["shape"], cfg, vocab, seq_len)
        family = ARCHITECTURES[point["arch"]].family
        per_prompt = sum(answers * answer_flops(model, prompt_len, new_tokens, **answer_cost(model, setting))
                         for answers, setting in answers_per_prompt(family, cfg["decoding"]))
        out[f"{point['arch']}_{point['budget_tag']}_{point['shape_tag']}"] = float(per_prompt * prompts)
    return out


def sampling_flops(preset=PRESET) -> float:
    cfg = load_config(preset)
    return sum(sampling_flops_per_run(cfg).values()) * len(cfg["seeds"])


def run() -> dict:
    snakemake = str(Path(sys.executable).with_name("snakemake"))
    cmd = [snakemake, "-n", "--cores", "1", "--quiet", "rules", "--configfile", str(PRESET)]
    t0 = time.perf_counter()
    out = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, check=True)
    seconds = time.perf_counter() - t0
    total = re.search(r"^total\s+(\d+)$", out.stdout + out.stderr, flags=re.M)
    train, sample = training_flops(), sampling_flops()
    return {"dag_dryrun_seconds": seconds, "dag_jobs": int(total.group(1)) if total else -1,
            "paper_training_flops": train, "paper_sampling_flops": sample,
            "paper_runs_per_train_job": len(load_config(PRESET)["seeds"]),
            "paper_gpu_mfu_assumed": ASSUMED_MFU,
            "paper_gpu_hours_projected": (train + sample) / (H100_BF16_DENSE_FLOPS * ASSUMED_MFU) / 3600}


if __name__ == "__main__":
    print(run())
