"""A grid in which every run diverged has nothing to sample, fit or plot: stop, saying which and where.

Some diverged runs are an outcome (recorded with their step, excluded from the fits);
all of them is a config mistake, and exiting 0 with empty tables would hide it."""
from __future__ import annotations

import pandas as pd


class AllRunsDiverged(Exception):
    pass


def check_some_run_trained(runs: pd.DataFrame) -> None:
    if runs.empty or (runs["status"] != "diverged").any():
        return
    lines = [f"  {r.run_id}: loss not finite at step {r.diverged_step:.0f}" for r in runs.itertuples()]
    raise AllRunsDiverged(
        f"every run diverged ({len(runs)} of {len(runs)}); there is nothing to sample, fit or plot:\n"
        + "\n".join(lines)
        + "\nLower the learning rates (tuning.search.<arch>.lr) or train.grad_clip in the config and rerun"
        " the same command: the runs retrain."
    )
