"""From a FLOP budget to a number of optimiser steps.

Every batch is padded to the same length, so a step's cost depends only on shapes and on
the thinking step count (a System-2 EBT draws its count at random). The cost of each
possible count is measured once on a real step (models/flops.py) and the run is charged
the measured cost of the count it actually drew; the plan divides the budget by the mean.
"""
from __future__ import annotations

from dataclasses import dataclass

from .flops import analytic_flops, measure_step_flops

_MEASURED: dict[tuple, int] = {}  # FlopCounterMode is slow: measure each shape once per process


@dataclass
class StepPlan:
    costs: dict  # thinking steps (None: Transformer++) -> flops_measured, flops_6nd, flops_analytic
    flops_per_step: float  # mean measured cost over the possible thinking step counts
    total_steps: int


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
    total_steps = int(flop_budget // flops_per_step)
    if total_steps < 1:
        raise ValueError(
            f"flop_budget={flop_budget:.3g} is smaller than one training step "
            f"({flops_per_step:.3g} FLOPs measured for this model and batch)"
        )
    return StepPlan(costs, flops_per_step, total_steps)
