# Helpers and config validation. Validation runs when the Snakefile is parsed,
# so a bad config fails before any job runs and before anything is written.
import sys
from pathlib import Path

sys.path.insert(0, str(Path(workflow.basedir)))

from pipeline import lock, resume
from pipeline.config import ConfigError, check_config, coerce_scientific

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


# --- the training grid -------------------------------------------------------
def budget_values(budgets) -> list[float]:
    if isinstance(budgets, dict):
        num = budgets["num"]
        if num == 1:
            return [float(budgets["min"])]
        ratio = (budgets["max"] / budgets["min"]) ** (1 / (num - 1))
        return [float(budgets["min"] * ratio**i) for i in range(num)]
    return [float(b) for b in budgets]


def budget_tag(flops: float) -> str:
    """A stable wildcard string for a FLOP count: 3 significant digits, e.g. 3.16e12."""
    mantissa, exponent = f"{flops:.2e}".split("e")
    return f"{float(mantissa):g}e{int(exponent)}"


def approx_params(shape: dict, mlp_ratio: float, vocab_size: int = 0) -> int:
    """Non-embedding parameters of the trunk (attention 4d², SwiGLU 3·d·hidden), plus d·vocab if given."""
    d = shape["width"]
    hidden = 8 * -(-mlp_ratio * d // 8)
    return int(shape["depth"] * (4 * d * d + 3 * d * hidden) + d * vocab_size)


def shape_values(shapes, mlp_ratio: float) -> list[dict]:
    if not isinstance(shapes, dict):
        return [dict(s) for s in shapes]
    hd, out = shapes["head_dim"], {}
    lo, hi = shapes.get("min_params", 0), shapes.get("max_params", float("inf"))
    for depth in shapes["depths"]:
        for ratio in shapes["width_depth_ratios"]:
            width = max(hd, hd * round(depth * ratio / hd))
            shape = {"depth": depth, "width": width, "heads": width // hd}
            if lo <= approx_params(shape, mlp_ratio) <= hi:
                out[(depth, width)] = shape
    return list(out.values())


def shape_tag(shape: dict) -> str:
    return f"L{shape['depth']}-d{shape['width']}-h{shape['heads']}"


def parse_shape_tag(tag: str) -> dict:
    depth, width, heads = (int(part[1:]) for part in tag.split("-"))
    return {"depth": depth, "width": width, "heads": heads}


def architecture_budgets(cfg: dict) -> dict[str, dict[str, float]]:
    """Budget tag -> FLOPs for each architecture: `budgets`, unless `budgets_by_architecture`
    gives that architecture its own (an EBT step costs several Transformer++ steps, so the
    two learn the task over different compute ranges)."""
    own = cfg.get("budgets_by_architecture") or {}
    return {
        arch: {budget_tag(b): b for b in budget_values(own.get(arch, cfg["budgets"]))}
        for arch in cfg["architectures"]
    }


ARCH_BUDGETS = architecture_budgets(config)
BUDGETS = {tag: b for budgets in ARCH_BUDGETS.values() for tag, b in budgets.items()}
SHAPES = {shape_tag(s): s for s in shape_values(config["shapes"], config["model"]["mlp_ratio"])}
ARCHS = list(config["architectures"])
SEEDS = [str(s) for s in config["seeds"]]
RUN_DIR = f"{RESULTS}/runs/{{arch}}/{{budget}}/{{shape}}/seed{{seed}}"


def run_dirs() -> list[str]:
    return [
        d
        for arch in ARCHS
        for d in expand(RUN_DIR, arch=arch, budget=list(ARCH_BUDGETS[arch]), shape=list(SHAPES), seed=SEEDS)
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
    named = {"budgets": cfg["budgets"]}
    for arch, budgets in (cfg.get("budgets_by_architecture") or {}).items():
        if arch not in cfg["architectures"]:
            raise ConfigError(f"budgets_by_architecture.{arch}: not one of architectures {cfg['architectures']}")
        named[f"budgets_by_architecture.{arch}"] = budgets
    for key, budgets in named.items():
        if isinstance(budgets, dict) and budgets["min"] > budgets["max"]:
            raise ConfigError(f"{key}.min={budgets['min']} exceeds {key}.max={budgets['max']}")
    check_budgets_cover_one_step(cfg)
    check_task_feasible(cfg)


def check_budgets_cover_one_step(cfg: dict) -> None:
    """A lower bound on one training step: 6·N·tokens of the cheapest model (Transformer++)."""
    vocab = 6 + cfg["graph"]["num_labels"] + cfg["graph"]["num_nodes"]
    seq_len = (5 + cfg["task"]["levels"]) + (2 * cfg["task"]["max_hops"] + 1) + 1  # longest demonstration
    tokens = cfg["train"]["batch_size"] * (seq_len - 1)
    smallest = min(BUDGETS.values())
    for tag, shape in SHAPES.items():
        params = approx_params(shape, cfg["model"]["mlp_ratio"], vocab)
        if 6 * params * tokens > smallest:
            raise ConfigError(
                f"budgets: {smallest:.3g} FLOPs is less than one training step of shape {tag} "
                f"(at least {6 * params * tokens:.3g} FLOPs at train.batch_size={cfg['train']['batch_size']})"
            )


def check_task_feasible(cfg: dict) -> None:
    """Build the graph and a few prompts per level now, so a too-sparse graph fails before any job."""
    from creativity.prompts import build_prompts
    from creativity.task import prompt_spec, task_graph

    g, t = cfg["graph"], cfg["task"]
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
        "shape": parse_shape_tag(wildcards.shape),
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
    # Record who holds the lock Snakemake has just taken, so that a later run can tell a stale lock.
    if workflow.execution_settings.lock:
        lock.record_owner(Path(".snakemake/locks"), lock.this_process())
