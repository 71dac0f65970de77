"""The training grid, planned when the workflow is read.

The grid is architectures x budgets x shapes x seeds, plus the `isoflop` shapes trained at
one of those budgets (every architecture and seed), so that one budget has enough shapes
for an IsoFLOP parabola whose vertex gets a confidence interval. Budgets are training FLOPs measured
on a real step, so a budget buys each (architecture, shape) its own number of optimiser
steps; plan_steps estimates that number from the analytic step cost (models/flops.py,
within a few percent of the measured one) so that a budget too small for a run to learn
anything is refused before any job starts, naming the shape and the step count.
"""
from __future__ import annotations

import math

import torch

from models.architectures import ARCHITECTURES
from models.experiment import ebt_config
from models.flops import analytic_flops
from models.model import EBTConfig, ModelConfig, build_model
from models.tuning import apply_setting, search_settings
from creativity.graph import label_names, node_names
from creativity.task import prompt_length, walk_length
from creativity.tokenizer import Tokenizer
from pipeline.config import ConfigError


def budget_values(budgets) -> list[float]:
    """A list of FLOP counts, or {min, max, num}: num log-spaced values from min to max."""
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


def approx_params(shape: dict, mlp_ratio: float) -> int:
    """Non-embedding parameters of the trunk: attention 4d², SwiGLU 3·d·hidden per layer."""
    d = shape["width"]
    hidden = 8 * -(-mlp_ratio * d // 8)
    return int(shape["depth"] * (4 * d * d + 3 * d * hidden))


def shape_values(shapes, mlp_ratio: float) -> list[dict]:
    """A list of {depth, width, heads}, or depths x width/depth ratios at a fixed head size,
    kept where the parameter count lies within [min_params, max_params]."""
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


def grid_budgets(cfg: dict) -> dict[str, float]:
    """Budget tag -> FLOPs. Every architecture trains on the same budgets, so each budget is
    a paired comparison of the arms (analysis/paired.py)."""
    return {budget_tag(b): b for b in budget_values(cfg["budgets"])}


def task_dimensions(cfg: dict) -> tuple[int, int, int]:
    """(vocabulary size, padded training length, loss positions per row) of the configured
    task. Training pads every batch to the longest demonstration: the top-level prompt
    (BOS u v INC .. EXC .. SEP, levels - 1 constraint labels) and a walk of task.max_hops
    hops with its EOS, which carries the loss."""
    g, t = cfg["graph"], cfg["task"]
    k = t["node_tokens"]
    vocab = Tokenizer(tuple(label_names(g["num_labels"])), tuple(node_names(g["num_nodes"], k)), k).vocab_size
    completion = walk_length(t["max_hops"], k)
    return vocab, prompt_length(t) + completion - 1, completion


# The measured step cost exceeds the analytic one by up to this factor (dense attention
# kernels; models/flops.py), so step estimates use it to err on the side of fewer steps.
MEASURED_OVER_ANALYTIC = 1.1


def planning_ebt_config(arch: str, cfg: dict) -> EBTConfig | None:
    """The EBTConfig the grid is planned with: the ebt section with the first setting of the
    architecture's tuning sweep put in (alpha lives only there). No key a sweep may set
    changes what a step costs, so any setting plans the same."""
    first = search_settings(cfg["tuning"]["search"][arch])[0]
    return ebt_config(arch, apply_setting(first, cfg["train"], cfg["ebt"])[1])


def meta_model(arch: str, shape: dict, cfg: dict, vocab_size: int, seq_len: int):
    """The model of this architecture and shape on the meta device: its analytic FLOP counts
    cost no memory, even for paper-scale shapes."""
    model_cfg = ModelConfig(vocab_size=vocab_size, max_seq_len=seq_len + 1, mlp_ratio=cfg["model"]["mlp_ratio"], **shape)
    with torch.device("meta"):
        return build_model(ARCHITECTURES[arch].family, model_cfg, planning_ebt_config(arch, cfg))


def largest_batch(arch: str, cfg: dict) -> int:
    """The largest batch a run of `arch` may train with: the tuning sweep's batch sizes, of
    which the grid takes the best, else train.batch_size. It buys the fewest steps."""
    return max(cfg["tuning"]["search"].get(arch, {}).get("batch_size", [cfg["train"]["batch_size"]]))


def step_flops(arch: str, shape: dict, cfg: dict, vocab_size: int, seq_len: int, loss_positions: int) -> float:
    """FLOPs of one training step of this architecture and shape at its largest batch, an
    upper estimate: the analytic count (the mean over a System-2 EBT's possible thinking step
    counts) times MEASURED_OVER_ANALYTIC."""
    model = meta_model(arch, shape, cfg, vocab_size, seq_len)
    counts = model.thinking_step_counts()
    batch, n_queries = largest_batch(arch, cfg), loss_positions if ARCHITECTURES[arch].is_ebt else None
    analytic = sum(analytic_flops(model, batch, seq_len, k, n_queries)["flops_analytic"] for k in counts) / len(counts)
    return MEASURED_OVER_ANALYTIC * analytic


def grid_points(cfg: dict) -> list[dict]:
    """Every (architecture, budget, shape) of the grid, each with its tags; seeds multiply it."""
    mlp_ratio = cfg["model"]["mlp_ratio"]
    main = shape_values(cfg["shapes"], mlp_ratio)
    extra = shape_values(cfg["isoflop"]["shapes"], mlp_ratio)
    points = {}
    for arch in cfg["architectures"]:
        for tag, flops in grid_budgets(cfg).items():
            shapes = main + (extra if tag == budget_tag(cfg["isoflop"]["budget"]) else [])
            for shape in shapes:
                points[(arch, tag, shape_tag(shape))] = {"arch": arch, "budget_tag": tag, "budget": flops,
                                                         "shape_tag": shape_tag(shape), "shape": shape}
    return list(points.values())


def tuning_points(cfg: dict) -> list[dict]:
    """The tuning sweep's (architecture, budget, shape), one per architecture, in grid_points' form."""
    t = cfg["tuning"]
    return [{"arch": arch, "budget_tag": budget_tag(t["budget"]), "budget": float(t["budget"]),
             "shape_tag": shape_tag(t["shape"]), "shape": dict(t["shape"])} for arch in cfg["architectures"]]


def check_shapes(points: list[dict], key: str = "shapes") -> None:
    shapes = {p["shape_tag"]: p["shape"] for p in points}
    if not shapes:
        raise ConfigError("shapes: no depth x width/depth ratio lies within shapes.min_params..shapes.max_params")
    for tag, shape in shapes.items():
        if shape["width"] % shape["heads"]:
            raise ConfigError(f"{key}: width {shape['width']} is not divisible by heads {shape['heads']} ({tag})")
        if (shape["width"] // shape["heads"]) % 2:
            raise ConfigError(f"{key}: head dimension {shape['width'] // shape['heads']} must be even "
                              f"for rotary embeddings ({tag})")


def check_budget_range(cfg: dict) -> None:
    budgets = cfg["budgets"]
    if isinstance(budgets, dict) and budgets["min"] > budgets["max"]:
        raise ConfigError(f"budgets.min={budgets['min']:.3g} exceeds budgets.max={budgets['max']:.3g}")


def check_isoflop_budget(cfg: dict) -> None:
    budgets = grid_budgets(cfg)
    if budget_tag(cfg["isoflop"]["budget"]) not in budgets:
        raise ConfigError(f"isoflop.budget: {cfg['isoflop']['budget']:.3g} is not one of the budgets "
                          f"({', '.join(budgets)})")


def check_min_steps(cfg: dict, points: list[dict], vocab_size: int, seq_len: int, loss_positions: int,
                    key: str = "budgets", per_step: dict | None = None) -> None:
    """Refuse a budget (config `key`) that gives some run fewer than train.min_steps optimiser steps.
    `per_step` caches step_flops by (arch, shape tag) across calls: it depends on nothing else, and builds a model."""
    need = cfg["train"]["min_steps"]
    per_step = {} if per_step is None else per_step
    for p in sorted(points, key=lambda p: p["budget"]):
        run = (p["arch"], p["shape_tag"])
        if run not in per_step:
            per_step[run] = step_flops(p["arch"], p["shape"], cfg, vocab_size, seq_len, loss_positions)
        steps = int(p["budget"] // per_step[run])
        if steps < need:
            raise ConfigError(
                f"{key}: {p['budget']:.3g} FLOPs gives {p['arch']} at shape {p['shape_tag']} about {steps} "
                f"optimiser steps, fewer than train.min_steps={need} (batch_size {largest_batch(p['arch'], cfg)}); "
                "raise that budget or drop that shape"
            )


def training_sequences(cfg: dict) -> int:
    """About how many training sequences the configured corpus has: each undirected edge as
    two edge lines per copy (num_nodes·mean_degree/2 edges expected) and every train
    demonstration, less the validation share."""
    g, t, c = cfg["graph"], cfg["task"], cfg["corpus"]
    rows = g["num_nodes"] * g["mean_degree"] * c["edge_copies"] + t["levels"] * t["train_prompts_per_level"]
    return max(1, int(rows * (1 - c["validation_fraction"])))


def run_epochs(cfg: dict, point: dict, dimensions: tuple, per_step: dict) -> float:
    """About how many passes over the training set a grid point's run makes: its budget over
    the analytic step cost (without check_min_steps' margin, so it counts the most steps) at
    the largest batch, against training_sequences. `per_step` caches step_flops."""
    run = (point["arch"], point["shape_tag"])
    if run not in per_step:
        per_step[run] = step_flops(point["arch"], point["shape"], cfg, *dimensions)
    steps = point["budget"] / (per_step[run] / MEASURED_OVER_ANALYTIC)
    return steps * largest_batch(point["arch"], cfg) / training_sequences(cfg)


def check_max_epochs(cfg: dict, points: list[dict], dimensions: tuple, per_step: dict, key: str = "budgets") -> None:
    """Refuse a budget (config `key`) that would pass some run over its training set more than
    train.max_epochs times."""
    limit = cfg["train"]["max_epochs"]
    for p in sorted(points, key=lambda p: -p["budget"]):
        epochs = run_epochs(cfg, p, dimensions, per_step)
        if epochs > limit:
            raise ConfigError(
                f"{key}: {p['budget']:.3g} FLOPs passes {p['arch']} at shape {p['shape_tag']} over its training set "
                f"about {epochs:.1f} times, more than train.max_epochs={limit:g} ({training_sequences(cfg):,} "
                f"training sequences, batch_size {largest_batch(p['arch'], cfg)}); raise "
                f"task.train_prompts_per_level to about {_prompts_for(cfg, epochs / limit):,} or lower that budget")


def shapes_within_epochs(cfg: dict, points: list[dict], dimensions: tuple, per_step: dict) -> list[dict]:
    """Generated shapes (`shapes` as a dict) train only at the budgets where they stay within
    train.max_epochs: a shape too small for a budget would only repeat the data, so the
    IsoFLOP sweep of each budget starts where the corpus allows. Every (architecture, budget)
    must keep a shape."""
    limit = cfg["train"]["max_epochs"]
    kept = [p for p in points if run_epochs(cfg, p, dimensions, per_step) <= limit]
    for arch in cfg["architectures"]:
        for tag in grid_budgets(cfg):
            if not any(p["arch"] == arch and p["budget_tag"] == tag for p in kept):
                raise ConfigError(f"budgets: at {tag} FLOPs every shape of {arch} passes over the training set more "
                                  f"than train.max_epochs={limit:g} times; raise task.train_prompts_per_level or "
                                  "shapes.max_params, or lower that budget")
    return kept


def _prompts_for(cfg: dict, factor: float) -> int:
    """train_prompts_per_level that makes the corpus `factor` times larger."""
    t = cfg["task"]
    return int(math.ceil(factor * training_sequences(cfg) / (1 - cfg["corpus"]["validation_fraction"]) / t["levels"]))


def planned_training(cfg: dict, points: list[dict]) -> dict:
    """What the grid will train: runs, batches (one train job each) and FLOPs, the tuning
    sweeps' apart. A run spends at most its budget (models/budget.py), so the FLOPs are the
    budgets summed."""
    seeds, sweeps = len(cfg["seeds"]), [len(search_settings(cfg["tuning"]["search"][a])) for a in cfg["architectures"]]
    return {"runs": len(points) * seeds, "batches": len(points), "flops": sum(p["budget"] for p in points) * seeds,
            "tuning_runs": sum(sweeps), "tuning_batches": len(sweeps),
            "tuning_flops": sum(sweeps) * float(cfg["tuning"]["budget"])}


def planned_training_line(cfg: dict, points: list[dict]) -> str:
    """One line for the start of a run: how much training the config asks for."""
    t = planned_training(cfg, points)
    total = f"{t['flops'] + t['tuning_flops']:.2g}".replace("e+0", "e").replace("e+", "e")
    return (f"Training: {t['runs']} runs in {t['batches']} jobs and {t['tuning_runs']} tuning runs in "
            f"{t['tuning_batches']} jobs, {total} FLOPs planned (each run at most its budget)")


def plan_grid(cfg: dict) -> list[dict]:
    """The grid's points (grid_points), after every check that needs the grid itself: shapes a
    model can be built with, a budget range the right way up, the IsoFLOP budget on the grid,
    at least train.min_steps optimiser steps and at most train.max_epochs passes over the
    training set for every run, the tuning sweep's runs included (generated shapes that
    would exceed it at a budget are not trained there). Raises ConfigError."""
    check_budget_range(cfg)
    points, tuning = grid_points(cfg), tuning_points(cfg)
    check_shapes(points)
    check_shapes(tuning, "tuning.shape")
    check_isoflop_budget(cfg)
    dimensions, per_step = task_dimensions(cfg), {}
    check_min_steps(cfg, tuning, *dimensions, key="tuning.budget", per_step=per_step)
    check_min_steps(cfg, points, *dimensions, per_step=per_step)
    if isinstance(cfg["shapes"], dict):
        points = shapes_within_epochs(cfg, points, dimensions, per_step)
    check_max_epochs(cfg, tuning, dimensions, per_step, key="tuning.budget")
    check_max_epochs(cfg, points, dimensions, per_step)
    return points
