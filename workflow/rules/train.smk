# One job trains one batch: every seed of one (architecture, budget, shape), as one computation
# (models/train.py), with the architecture's tuned setting. Each run checkpoints into its own
# run directory; a rerun resumes there. The tuning stage's jobs are the same rule template.
from types import SimpleNamespace

from creativity.task import sequence_limits
from models.architectures import ARCHITECTURES
from models.train import GRID_PLANNING_KEYS
from pipeline import fingerprint

BATCH_DIR = f"{RESULTS}/runs/{{arch}}/{{budget}}/{{shape}}"


def per_seed(filename: str) -> list[str]:
    """A batch's per-run files: one per seed (the {arch}, {budget}, {shape} wildcards stay)."""
    return expand(f"{BATCH_DIR}/seed{{seed}}/{filename}", seed=SEEDS, allow_missing=True)


def batch_specs(wildcards) -> list[dict]:
    return [run_spec(SimpleNamespace(**dict(wildcards), seed=seed)) for seed in SEEDS]


def ebt_section(wildcards) -> dict:
    """An EBT key reaches only EBT jobs, so editing one retrains nothing else."""
    return config["ebt"] if ARCHITECTURES[wildcards.arch].is_ebt else {}


TRAIN_SECTION = {k: v for k, v in config["train"].items() if k not in GRID_PLANNING_KEYS}
BUDGET_RANK = {tag: i for i, tag in enumerate(sorted(grid.grid_budgets(config), key=grid.grid_budgets(config).get))}
TUNING_PRIORITY = len(BUDGET_RANK) + 1


def largest_first(wildcards) -> int:
    """A batch's scheduling priority: its budget's rank, so the longest batches start first
    and the last to finish is a short one (on two cores, a largest-budget batch started last
    added minutes to the run). The tuning batches come before all: each gates its grid."""
    return BUDGET_RANK[wildcards.budget]


rule train:
    input:
        corpus=f"{RESULTS}/task/corpus.parquet",
        labels=f"{RESULTS}/task/labels.parquet",
        tuned=f"{RESULTS}/tuning/{{arch}}/best.json",
    output:
        models=per_seed("model.pt"),
        summaries=per_seed("train_summary.parquet"),
        curves=per_seed("curve.parquet"),
    params:
        runs=batch_specs,
        num_nodes=config["graph"]["num_nodes"],
        node_tokens=config["task"]["node_tokens"],
        max_seq_len=sequence_limits(config["task"])[1],
        model=config["model"],
        train=TRAIN_SECTION,
        ebt=ebt_section,
        device=config["resources"]["device"],
        code=fingerprint.code_version("workflow/scripts/train.py"),
    log:
        f"{BATCH_DIR}/train.log",
    benchmark:
        f"{BATCH_DIR}/train.benchmark.tsv"
    threads: config["resources"]["threads_per_job"]
    priority: largest_first
    resources:  # a batch holds len(SEEDS) runs
        mem_mb=config["resources"]["train_mem_mb"] * len(SEEDS),
        runtime=config["resources"]["train_runtime_min"] * len(SEEDS),
        gpu=1 if USES_GPU else 0,
    script:
        "../scripts/train.py"
