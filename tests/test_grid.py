"""Grid planning at parse time: budgets, shapes, and the minimum-steps refusal."""
import copy
from pathlib import Path

import pytest
import torch
import yaml

from models.budget import plan_steps
from models.data import make_batch
from models.architectures import ARCHITECTURES
from models.model import ModelConfig, build_model
from pipeline.config import ConfigError
from pipeline.presets import load_config
from pipeline.grid import (
    budget_tag,
    budget_values,
    check_isoflop_budget,
    check_max_epochs,
    check_min_steps,
    grid_points,
    parse_shape_tag,
    plan_grid,
    planned_training,
    planned_training_line,
    planning_ebt_config,
    run_epochs,
    shape_tag,
    shape_values,
    step_flops,
    task_dimensions,
    training_sequences,
)

REPO = Path(__file__).parents[1]
DEFAULT = yaml.safe_load((REPO / "config.yaml").read_text())


def test_budgets_and_tags():
    assert budget_values({"min": 1e11, "max": 1e13, "num": 3}) == pytest.approx([1e11, 1e12, 1e13])
    assert budget_values([3e11, 6e11]) == [3e11, 6e11]
    assert budget_tag(3.16227e12) == "3.16e12" and budget_tag(3e11) == "3e11"
    shape = {"depth": 2, "width": 64, "heads": 4}
    assert parse_shape_tag(shape_tag(shape)) == shape


def test_shape_ranges_follow_depths_ratios_and_parameter_limits():
    spec = {"head_dim": 16, "depths": [1, 2, 4], "width_depth_ratios": [16, 32], "min_params": 20_000, "max_params": 300_000}
    shapes = shape_values(spec, 8 / 3)
    # d = round(L * ratio / 16) * 16; L1-d16 (3k), L1-d32 (13k) and L4-d128 (791k) fall outside the limits
    assert {shape_tag(s) for s in shapes} == {"L2-d32-h2", "L2-d64-h4", "L4-d64-h4"}


@pytest.mark.parametrize("arch", ["tpp", "ebt_system1", "ebt_system2"])
def test_step_estimate_matches_a_measured_step(arch):
    """The parse-time estimate is the analytic count at the task's longest demonstration,
    raised to an upper bound: a real training step on such a batch measures at most that,
    and not far below it."""
    cfg = copy.deepcopy(DEFAULT)
    shape = {"depth": 1, "width": 32, "heads": 2}
    vocab, length, loss_positions = task_dimensions(cfg)
    estimate = step_flops(arch, shape, cfg, vocab, length, loss_positions)
    B = cfg["train"]["batch_size"]
    seqs = [list(range(1, length + 2))] * B  # length + 1 tokens: inputs and targets of `length`
    starts = [length + 1 - loss_positions] * B
    torch.manual_seed(0)
    family = ARCHITECTURES[arch].family
    model_cfg = ModelConfig(vocab_size=vocab, max_seq_len=length + 1, mlp_ratio=cfg["model"]["mlp_ratio"], **shape)
    model = build_model(family, model_cfg, planning_ebt_config(arch, cfg))
    probe = make_batch(seqs, starts, list(range(B)), 0, length + 1, loss_positions if family == "ebt" else None)
    measured = plan_steps(model, probe, 1e13, ("test_grid", arch)).flops_per_step
    assert measured <= estimate < 1.15 * measured


@pytest.mark.parametrize("preset", [None, "paper.yaml"], ids=["default", "paper"])
def test_the_experiment_can_answer_the_question(preset):
    """Every arm on the same 5+ budgets spanning a decade or more, 3+ seeds, every run 300+
    optimiser steps and at most 4 passes over its training set (the corpus is sized for it);
    the paper grid has an IsoFLOP sweep of 3+ shapes at every budget for every arm."""
    cfg = load_config(REPO / "workflow/presets" / preset if preset else None)
    points = plan_grid(cfg)
    budgets = budget_values(cfg["budgets"])
    assert len(budgets) >= 5 and max(budgets) / min(budgets) >= 10 * (1 - 1e-9)
    assert len(cfg["seeds"]) >= 3
    for arch in ("tpp", "ebt_system1", "ebt_system2"):
        assert {p["budget"] for p in points if p["arch"] == arch} == set(budgets)
        if preset:
            for budget in budgets:
                assert len([p for p in points if p["arch"] == arch and p["budget"] == budget]) >= 3
    assert cfg["train"]["min_steps"] >= 300 and cfg["train"]["max_epochs"] <= 4
    dims, per_step = task_dimensions(cfg), {}
    assert max(run_epochs(cfg, p, dims, per_step) for p in points) <= cfg["train"]["max_epochs"]
    if preset is None:  # the paper grid is planned at its dry run (tests/test_config.py)
        check_min_steps(cfg, points, *dims)


def _point(arch, budget, shape):
    return {"arch": arch, "budget": budget, "budget_tag": "b", "shape_tag": shape_tag(shape), "shape": shape}


def test_a_budget_with_too_few_steps_is_refused_naming_the_shape_and_count():
    cfg = copy.deepcopy(DEFAULT)
    dims = task_dimensions(cfg)
    small, large = {"depth": 1, "width": 32, "heads": 2}, {"depth": 2, "width": 64, "heads": 4}
    per_step = step_flops("ebt_system1", large, cfg, *dims)
    need = cfg["train"]["min_steps"]
    enough = [_point("tpp", per_step * need, large), _point("ebt_system1", per_step * (need + 1), large),
              _point("ebt_system1", per_step * (need + 1), small)]
    check_min_steps(cfg, enough, *dims)  # every run gets at least min_steps
    short = enough + [_point("ebt_system1", per_step * (need - 10), large)]
    with pytest.raises(ConfigError, match=rf"ebt_system1 at shape L2-d64-h4 about ({need - 11}|{need - 10}) optimiser "
                                          rf"steps, fewer than train.min_steps={need}"):
        check_min_steps(cfg, short, *dims)


def test_a_budget_past_max_epochs_is_refused_naming_the_corpus_it_needs():
    cfg = copy.deepcopy(DEFAULT)
    dims, shape = task_dimensions(cfg), {"depth": 2, "width": 32, "heads": 2}
    # A run's passes: budget / analytic step cost (step_flops less its margin) x batch / training sequences.
    per_pass = step_flops("tpp", shape, cfg, *dims) / 1.1 * training_sequences(cfg) / cfg["train"]["batch_size"]
    limit = cfg["train"]["max_epochs"]
    check_max_epochs(cfg, [_point("tpp", per_pass * limit * 0.99, shape)], dims, {})
    over = [_point("tpp", per_pass * limit * 2, shape)]
    with pytest.raises(ConfigError, match=rf"budgets: .* passes tpp at shape L2-d32-h2 over its training set about "
                                          rf"{2 * limit:.1f} times, more than train.max_epochs={limit}.*raise "
                                          r"task.train_prompts_per_level to about"):
        check_max_epochs(cfg, over, dims, {})
    # The suggested corpus is enough: twice the sequences, so the same budget is within the limit.
    t = cfg["task"]
    sequences = training_sequences(cfg)
    t["train_prompts_per_level"] = int(2 * t["train_prompts_per_level"] + sequences / t["levels"])
    check_max_epochs(cfg, over, dims, {})


def test_generated_shapes_train_only_where_they_stay_within_max_epochs():
    """The paper's shape ranges: at a large budget the smallest shapes would repeat the
    corpus, so the grid leaves them out there and keeps them at the small budgets."""
    cfg = load_config(REPO / "workflow/presets/paper.yaml")
    points = plan_grid(cfg)
    tags = {b: {p["shape_tag"] for p in points if p["arch"] == "tpp" and p["budget"] == b}
            for b in budget_values(cfg["budgets"])}
    smallest, largest = min(tags), max(tags)
    assert tags[largest] < tags[smallest]  # a strict subset
    dims, per_step, limit = task_dimensions(cfg), {}, cfg["train"]["max_epochs"]
    check_max_epochs(cfg, points, dims, per_step)  # every kept run is within the limit
    dropped = [p for p in grid_points(cfg)
               if p["arch"] == "tpp" and p["budget"] == largest and p["shape_tag"] not in tags[largest]]
    assert dropped and all(run_epochs(cfg, p, dims, per_step) > limit for p in dropped)


def test_isoflop_shapes_join_one_budget_only():
    cfg = copy.deepcopy(DEFAULT)
    cfg["architectures"] = ["tpp", "ebt_system1"]
    cfg["budgets"] = [1e12, 2e12]
    cfg["shapes"] = [{"depth": 2, "width": 64, "heads": 4}]
    cfg["isoflop"] = {"budget": 2e12, "shapes": [{"depth": 1, "width": 64, "heads": 4}, {"depth": 4, "width": 64, "heads": 4}]}
    points = grid_points(cfg)
    per_budget = {(p["arch"], p["budget_tag"]): [] for p in points}
    for p in points:
        per_budget[p["arch"], p["budget_tag"]].append(p["shape_tag"])
    assert per_budget["tpp", "1e12"] == ["L2-d64-h4"]
    assert sorted(per_budget["ebt_system1", "2e12"]) == ["L1-d64-h4", "L2-d64-h4", "L4-d64-h4"]
    assert len(points) == 2 * (1 + 3)
    check_isoflop_budget(cfg)
    cfg["isoflop"]["budget"] = 3e12
    with pytest.raises(ConfigError, match="isoflop.budget: 3e\\+12 is not one of the budgets"):
        check_isoflop_budget(cfg)


def test_plan_grid_gives_the_default_experiment():
    """3 arms x 5 budgets x 1 shape; seeds multiply it to 45 runs."""
    points = plan_grid(copy.deepcopy(DEFAULT))
    assert len(points) == 3 * 5
    assert {p["shape_tag"] for p in points} == {"L2-d32-h2"}
    assert sorted({p["budget_tag"] for p in points}) == sorted(["1.5e11", "2.67e11", "4.74e11", "8.44e11", "1.5e12"])


def test_planned_training_counts_every_run_and_its_budget():
    """The parse-time line: 2 arms x 2 budgets x 1 shape x 2 seeds, plus 2 tuning sweeps of
    2 runs; FLOPs are the budgets summed."""
    cfg = copy.deepcopy(DEFAULT)
    cfg.update(architectures=["tpp", "ebt_system1"], budgets=[1e12, 2e12], seeds=[0, 1],
               shapes=[{"depth": 2, "width": 64, "heads": 4}], isoflop={"budget": 1e12, "shapes": []})
    cfg["tuning"] = dict(cfg["tuning"], budget=1e11, search={"tpp": {"lr": [1e-3, 2e-3]},
                                                             "ebt_system1": {"lr": [1e-3], "alpha": [1.0, 2.0]}})
    planned = planned_training(cfg, grid_points(cfg))
    assert planned == {"runs": 8, "batches": 4, "flops": 2 * 2 * 3e12, "tuning_runs": 4, "tuning_batches": 2,
                       "tuning_flops": 4e11}
    assert planned_training_line(cfg, grid_points(cfg)) == (
        "Training: 8 runs in 4 jobs and 4 tuning runs in 2 jobs, 1.2e13 FLOPs planned (each run at most its budget)")


BAD_GRIDS = {
    "width not divisible by heads": ({"shapes": [{"depth": 2, "width": 64, "heads": 3}]},
                                     r"shapes: width 64 is not divisible by heads 3 \(L2-d64-h3\)"),
    "odd head dimension": ({"shapes": [{"depth": 2, "width": 36, "heads": 4}]},
                           r"head dimension 9 must be even for rotary embeddings \(L2-d36-h4\)"),
    "no shape in the parameter range": (
        {"shapes": {"head_dim": 16, "depths": [1], "width_depth_ratios": [16], "min_params": 1e9}},
        r"shapes: no depth x width/depth ratio lies within"),
    "budget range upside down": ({"budgets": {"min": 1e13, "max": 1e12, "num": 2}},
                                 r"budgets.min=1e\+13 exceeds budgets.max=1e\+12"),
    "IsoFLOP budget off the grid": ({"isoflop": {"budget": 3e11, "shapes": [{"depth": 1, "width": 32, "heads": 2}]}},
                                    r"isoflop.budget: 3e\+11 is not one of the budgets \(1.5e11, 2.67e11, 4.74e11, "
                                    r"8.44e11, 1.5e12\)"),
    "too few steps": ({"budgets": [5.0e10, 1.5e11], "isoflop": {"budget": 1.5e11, "shapes": []}},
                      r"budgets: 5e\+10 FLOPs gives ebt_system1 at shape L2-d32-h2"),
    "too many epochs": ({"budgets": [1.5e11, 5.0e12]},
                        r"budgets: 5e\+12 FLOPs passes tpp at shape L2-d32-h2 over its training set about"),
}


@pytest.mark.parametrize("case", list(BAD_GRIDS), ids=list(BAD_GRIDS))
def test_plan_grid_refuses_a_grid_naming_the_key(case):
    changes, message = BAD_GRIDS[case]
    cfg = copy.deepcopy(DEFAULT)
    cfg.update(changes)
    if "shapes" in changes:
        cfg["isoflop"] = {"budget": cfg["isoflop"]["budget"], "shapes": []}
    with pytest.raises(ConfigError, match=message):
        plan_grid(cfg)
