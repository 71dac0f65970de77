# Config validation and glue. Validation (pipeline/config.py, pipeline/grid.py) runs when
# the Snakefile is parsed, so a bad config fails before any job runs and before anything is written.
import sys
from pathlib import Path

sys.path.insert(0, str(Path(workflow.basedir)))

from pipeline import grid, lock, resume
from pipeline.config import ConfigError, check_config, check_device, coerce_scientific

RESULTS = "results"


config.update(coerce_scientific(dict(config)))
try:
    check_config(config, str(Path(workflow.basedir) / "workflow/schemas/config.schema.yaml"))
    GRID = grid.plan_grid(config)
except ConfigError as err:
    sys.exit(f"ConfigError: {err}")


# --- the training grid (planned in pipeline/grid.py) ---------------------------
BUDGETS = grid.grid_budgets(config)
ARCHS = list(config["architectures"])
SEEDS = [str(s) for s in config["seeds"]]
RUN_DIR = f"{RESULTS}/runs/{{arch}}/{{budget}}/{{shape}}/seed{{seed}}"


def run_dirs() -> list[str]:
    return [
        RUN_DIR.format(arch=p["arch"], budget=p["budget_tag"], shape=p["shape_tag"], seed=seed)
        for p in GRID
        for seed in SEEDS
    ]


wildcard_constraints:
    arch="|".join(ARCHS),
    budget="[0-9.]+e[0-9]+",
    shape=r"L\d+-d\d+-h\d+",
    seed=r"\d+",


def run_id(wildcards) -> str:
    return f"{wildcards.arch}_{wildcards.budget}_{wildcards.shape}_s{wildcards.seed}"


def run_spec(wildcards) -> dict:
    """Everything one training run needs to know about itself."""
    return {
        "run_id": run_id(wildcards),
        "arch": wildcards.arch,
        "budget": BUDGETS[wildcards.budget],
        "shape": grid.parse_shape_tag(wildcards.shape),
        "seed": int(wildcards.seed),
    }


def per_run(filename: str) -> list[str]:
    return [f"{d}/{filename}" for d in run_dirs()]


USES_GPU = config["resources"]["device"] == "cuda"


# --- taking up after a killed run ----------------------------------------------
def resume_after_kill() -> None:
    """Remove a killed run's lock, and make this run redo what the kill interrupted (pipeline.lock,
    pipeline.resume). Nothing is touched while another run may hold the directory."""
    locks = Path(".snakemake/locks")
    try:
        note = lock.release_if_stale(locks, lock.this_process())
    except lock.LockHeld as held:
        print(f"{held}", file=sys.stderr)  # Snakemake then refuses to run (a dry run only warns)
        return
    if note:
        print(note, file=sys.stderr)
    for path in resume.leftover_temporaries(Path(RESULTS)):
        path.unlink()
    for path, why in resume.damaged_tables(Path(RESULTS)):
        path.unlink()
        print(f"{path}: damaged ({why}); removed, so its rule rebuilds it.", file=sys.stderr)
    killed = resume.restore_killed_outputs(Path(".snakemake"))  # after the above: these are empty
    if killed:
        listed = "\n  ".join(map(str, killed[:10])) + ("\n  ..." if len(killed) > 10 else "")
        print(f"{len(killed)} outputs of jobs killed in an earlier run are redone, with everything built from them:\n  {listed}",
              file=sys.stderr)


# Job processes parse the Snakefile too, under their parent's lock; --unlock only removes locks.
if workflow.is_main_process and "--unlock" not in sys.argv:
    resume_after_kill()


onstart:
    # Before the first job, and never in a dry run: a machine without CUDA may plan a GPU grid.
    try:
        check_device(config)
    except ConfigError as err:
        sys.exit(f"ConfigError: {err}")
    # Record who holds the lock Snakemake has just taken, so that a later run can tell a stale lock.
    if workflow.execution_settings.lock:
        lock.record_owner(Path(".snakemake/locks"), lock.this_process())
