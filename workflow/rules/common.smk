# Config validation and glue. Validation (pipeline/config.py, pipeline/grid.py) runs when
# the Snakefile is parsed, so a bad config fails before any job runs and before anything is written.
import functools
import re
import sys
from pathlib import Path

from pipeline import fingerprint, grid, lock, resume
from pipeline.config import ConfigError, check_config, check_device, exit_on_yaml_error, read_config
from pipeline.presets import results_dir

# results/ for config.yaml, results-<preset>/ for --configfile PRESET: presets never mix.
RESULTS = results_dir(workflow.config_settings.configfiles)


exit_on_yaml_error(*workflow.config_settings.configfiles)  # the presets: an alias, named by line
try:
    config.update(read_config(dict(config)))
    check_config(config, str(Path(workflow.basedir) / "workflow/schemas/config.schema.yaml"))
    GRID = grid.plan_grid(config)
except ConfigError as err:
    sys.exit(f"ConfigError: {err}")
if workflow.is_main_process:  # a job's own parse of the Snakefile would repeat it in every log
    print(grid.planned_training_line(config, GRID), file=sys.stderr)


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


# Only the planned values: a file of another grid (an earlier config's budget, shape or seed)
# matches no rule, so pipeline.resume never takes it for one of this run's outputs.
wildcard_constraints:
    arch="|".join(ARCHS),
    budget="|".join(map(re.escape, BUDGETS)),
    shape="|".join(sorted({re.escape(p["shape_tag"]) for p in GRID})),
    seed="|".join(SEEDS),


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


# --- taking up after a kill, a deletion or damage -------------------------------
# Commands that run no job and must change nothing (besides -n / --dry-run).
INSPECTING = ("touch", "report", "lint", "list_rules", "list_target_rules", "dag", "rulegraph", "filegraph",
              "d3dag", "summary", "detailed_summary", "archive", "cleanup_metadata", "list_changes",
              "list_input_changes", "list_params_changes", "list_untracked", "delete_all_output",
              "delete_temp_output", "generate_unit_tests", "containerize", "print_compilation")


@functools.cache
def command_line():
    """What the snakemake command line asks for (its own parser: -np is -n -p)."""
    from snakemake.cli import get_argument_parser

    return get_argument_parser().parse_known_args(sys.argv[1:])[0]


def refuse_a_report_without_its_run() -> None:
    """A report over a directory without a finished run of this config would describe this
    config's grid beside whatever figures lie there; say where the runs are instead."""
    if not command_line().report or Path(RESULTS, "tables/fits.parquet").exists():
        return
    others = sorted(str(p) for p in Path(".").glob("results*/tables/fits.parquet"))
    sys.exit(f"--report: {RESULTS}/ holds no finished run of this config ({RESULTS}/tables/fits.parquet is missing)."
             + (f" Finished runs: {', '.join(others)}; a run with --configfile PRESET keeps its results in "
                "results-PRESET/, so pass the same --configfile to --report." if others else " Run the workflow first."))


def resume_after_kill(is_output) -> None:
    """Remove a killed run's lock, and make this run redo what a kill interrupted or a user
    deleted or damaged (pipeline.lock, pipeline.resume), with everything built from it. A dry
    run says what a real run would do and changes nothing. Nothing is touched while another
    run may hold the directory; --unlock refuses while the lock's owner provably runs."""
    locks, meta, here = Path(".snakemake/locks"), Path(".snakemake"), lock.this_process()
    args = command_line()
    if args.unlock:
        try:
            lock.refuse_unlock_if_alive(locks, here)
        except lock.LockHeld as held:
            sys.exit(str(held))
        return
    if args.dryrun or any(getattr(args, name, None) for name in INSPECTING):
        if lock.read_owner(locks) and any(locks.glob("*.lock")):
            print("Dry run: the directory is locked; a real run decides whether the lock is stale.", file=sys.stderr)
        redo = resume.files_to_redo(Path(RESULTS), meta, is_output)
        if redo:
            listed = "\n  ".join(f"{path}: {why}" for path, why in redo)
            print(f"Dry run: a real run rebuilds these {len(redo)} outputs, with everything built from them "
                  f"(not shown in the job list below):\n  {listed}", file=sys.stderr)
        return
    try:
        note = lock.release_if_stale(locks, here)
    except lock.LockHeld as held:
        print(f"{held}", file=sys.stderr)  # Snakemake then refuses to run
        return
    if note:
        print(note, file=sys.stderr)
    for path in resume.leftover_temporaries(Path(RESULTS)):
        path.unlink()
    redo = resume.files_to_redo(Path(RESULTS), meta, is_output)
    resume.mark_for_rerun(meta, [path for path, _ in redo])
    if redo:
        listed = "\n  ".join(f"{path}: {why}" for path, why in redo[:10]) + ("\n  ..." if len(redo) > 10 else "")
        print(f"{len(redo)} outputs are rebuilt, with everything built from them:\n  {listed}", file=sys.stderr)


onstart:
    # Before the first job, and never in a dry run: a machine without CUDA may plan a GPU grid.
    try:
        check_device(config)
    except ConfigError as err:
        sys.exit(f"ConfigError: {err}")
    # Record who holds the lock Snakemake has just taken, so that a later run can tell a stale lock.
    if workflow.execution_settings.lock:
        lock.record_owner(Path(".snakemake/locks"), lock.this_process())
