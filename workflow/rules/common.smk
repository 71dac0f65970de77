# Helpers and config validation. Validation runs when the Snakefile is parsed,
# so a bad config fails before any job runs and before anything is written.
import sys
from pathlib import Path

sys.path.insert(0, str(Path(workflow.basedir)))

from pipeline import grid, lock, resume
from pipeline.config import ConfigError, check_config, check_device, coerce_scientific

RESULTS = "results"


def validate_config(cfg: dict, schema_path: str) -> None:
    check_config(cfg, schema_path)
    task, graph = cfg["task"], cfg["graph"]
    if task["min_hops"] > task["max_hops"]:
        raise ConfigError(f"task.min_hops={task['min_hops']} exceeds task.max_hops={task['max_hops']}")
    if graph["num_labels"] < task["levels"]:
        raise ConfigError(
            f"graph.num_labels={graph['num_labels']} is smaller than task.levels={task['levels']}: "
            f"a level-{task['levels']} prompt needs {task['levels'] - 1} constraint labels besides a label on its walk"
        )


config.update(coerce_scientific(dict(config)))
try:
    validate_config(config, str(Path(workflow.basedir) / "workflow/schemas/config.schema.yaml"))
except ConfigError as err:
    sys.exit(f"ConfigError: {err}")


# --- the training grid (planned in pipeline/grid.py) ---------------------------
BUDGETS = grid.grid_budgets(config)
GRID = grid.grid_points(config)
SHAPES = {p["shape_tag"]: p["shape"] for p in GRID}
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


def check_grid(cfg: dict) -> None:
    if not SHAPES:
        raise ConfigError("shapes: no depth x width/depth ratio lies within shapes.min_params..shapes.max_params")
    for tag, shape in SHAPES.items():
        if shape["width"] % shape["heads"]:
            raise ConfigError(
                f"shapes: width {shape['width']} is not divisible by heads {shape['heads']} ({tag})"
            )
        if (shape["width"] // shape["heads"]) % 2:
            raise ConfigError(f"shapes: head dimension {shape['width'] // shape['heads']} must be even for rotary embeddings ({tag})")
    if cfg["ebt"]["random_steps"][0] > cfg["ebt"]["random_steps"][1]:
        raise ConfigError(f"ebt.random_steps={cfg['ebt']['random_steps']}: min exceeds max")
    budgets = cfg["budgets"]
    if isinstance(budgets, dict) and budgets["min"] > budgets["max"]:
        raise ConfigError(f"budgets.min={budgets['min']:.3g} exceeds budgets.max={budgets['max']:.3g}")
    grid.check_isoflop_budget(cfg)
    grid.check_min_steps(cfg, GRID, *grid.task_dimensions(cfg))
    check_task_feasible(cfg)


def check_task_feasible(cfg: dict) -> None:
    """Build the graph and a few prompts per level now, so a too-sparse graph fails before any job."""
    from creativity.prompts import build_prompts
    from creativity.task import prompt_spec, task_graph

    t = cfg["task"]
    try:
        graph = task_graph(cfg["graph"], t, cfg["seed"])
        probe = min(10, t["test_prompts_per_level"], t["train_prompts_per_level"])
        probe_cfg = dict(t, test_prompts_per_level=probe, train_prompts_per_level=probe, ood_prompts=min(probe, t["ood_prompts"]))
        build_prompts(graph, prompt_spec(probe_cfg, cfg["seed"] + 1))
    except ValueError as err:
        raise ConfigError(str(err)) from None


try:
    check_grid(config)
except ConfigError as err:
    sys.exit(f"ConfigError: {err}")


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
