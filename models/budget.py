"""From a FLOP budget to a number of optimiser steps.

Every batch is padded to the same length, so a step's cost depends only on shapes and on
the thinking step count (a System-2 EBT draws its count at random, from a stream keyed by
the step: model.thinking_steps_at). The cost of each possible count is measured once on a
real step (models/flops.py), and the plan takes steps, each charged the measured cost of
its own count, as long as the total stays within the budget: a run never spends more than
its budget, and never a step's cost less.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .flops import analytic_flops, measure_step_flops

_MEASURED: dict[tuple, int] = {}  # FlopCounterMode is slow: measure each shape once per process


@dataclass
class StepPlan:
    costs: dict  # thinking steps (None: Transformer++) -> flops_measured, flops_6nd, flops_analytic
    flops_per_step: float  # mean measured cost over the possible thinking step counts
    total_steps: int


def steps_within(flop_budget: float, step_costs, block: int = 4096) -> int:
    """The most steps 0..n-1 whose summed cost stays within flop_budget; step_costs(start, n)
    gives the costs of steps start..start+n-1 as an array."""
    spent, start = 0.0, 0
    while True:
        cumulative = spent + np.cumsum(step_costs(start, block))
        within = int(np.searchsorted(cumulative, flop_budget, side="right"))
        if within < block:
            return start + within
        spent, start = float(cumulative[-1]), start + block


def plan_steps(model, probe, flop_budget: float, cache_key: tuple) -> StepPlan:
    """Measure a step for each thinking step count the model can draw, on the probe batch,
    and fit as many steps as the budget allows. cache_key names the model and device."""
    costs = {}
    for k in model.thinking_step_counts():
        costs[k] = analytic_flops(model, probe.idx.size(0), probe.idx.size(1), k, probe.n_queries)
        key = (*cache_key, tuple(probe.idx.shape), probe.n_queries, k)
        if key not in _MEASURED:
            _MEASURED[key] = measure_step_flops(model, probe, k)
        costs[k]["flops_measured"] = _MEASURED[key]
    flops_per_step = sum(c["flops_measured"] for c in costs.values()) / len(costs)
    measured = {k: c["flops_measured"] for k, c in costs.items()}
    if len(measured) == 1:  # one step cost: no thinking, or a fixed count
        total_steps = int(flop_budget // flops_per_step)
    else:
        total_steps = steps_within(flop_budget, lambda start, n: np.array(
            [measured[model.thinking_steps_at(step)] for step in range(start, start + n)], dtype=float))
    if total_steps < 1:
        raise ValueError(
            f"flop_budget={flop_budget:.3g} is smaller than one training step "
            f"({flops_per_step:.3g} FLOPs measured for this model and batch)"
        )
    return StepPlan(costs, flops_per_step, total_steps)
