"""The tuning stage: every architecture gets the same number of sweep runs, on one shape at
one budget, and the grid then trains with each architecture's best setting by val loss.

A search space maps hyperparameter names to candidate values; its settings are the
Cartesian product, in a fixed order. Names under TRAIN_KEYS set the optimiser (train
config), names under EBT_KEYS set how the EBT thinks and learns (ebt config).
"""
from __future__ import annotations

import itertools
import math

import pandas as pd

TRAIN_KEYS = ("lr", "batch_size", "warmup_fraction")
EBT_KEYS = ("alpha", "alpha_lr_multiplier", "init_std", "candidate_init_std", "langevin_sigma")


def search_settings(space: dict) -> list[dict]:
    """Every combination of the space's values, e.g. {lr: [1, 2], alpha: [3]} ->
    [{lr: 1, alpha: 3}, {lr: 2, alpha: 3}]."""
    names = sorted(space)
    return [dict(zip(names, values)) for values in itertools.product(*(space[n] for n in names))]


def check_search(search: dict, architectures: list[str]) -> None:
    """Equal tuning effort: every architecture has a space, with the same number of settings,
    naming only keys its model has. Raises ValueError naming the offending key."""
    sizes = {}
    for arch in architectures:
        if arch not in search:
            raise ValueError(f"tuning.search.{arch}: missing; every architecture in `architectures` is tuned")
        for name in search[arch]:
            allowed = TRAIN_KEYS + (EBT_KEYS if arch != "tpp" else ())
            if name not in allowed:
                raise ValueError(f"tuning.search.{arch}.{name}: not a tunable key (one of {', '.join(allowed)})")
        sizes[arch] = len(search_settings(search[arch]))
    if len(set(sizes.values())) > 1:
        listed = ", ".join(f"{a}: {n}" for a, n in sizes.items())
        raise ValueError(f"tuning.search: architectures get different numbers of sweep runs ({listed}); "
                         "give each the same count so that both arms get the same tuning effort")


def apply_setting(setting: dict, train_cfg: dict, ebt_cfg: dict) -> tuple[dict, dict]:
    """Copies of the train and ebt config sections with a setting's values put in."""
    train_cfg, ebt_cfg = dict(train_cfg), dict(ebt_cfg)
    for name, value in setting.items():
        (train_cfg if name in TRAIN_KEYS else ebt_cfg)[name] = value
    return train_cfg, ebt_cfg


def select_best(sweep: pd.DataFrame) -> pd.DataFrame:
    """Mark the setting with the lowest final val loss among runs that did not diverge
    (the first on ties). A sweep in which every run diverged has no best setting."""
    ok = sweep["status"].eq("ok") & sweep["val_loss"].map(lambda v: math.isfinite(float(v)))
    if not ok.any():
        raise ValueError(f"every tuning run of {sweep['arch'].iloc[0]} diverged or has no val loss; "
                         "widen tuning.search to smaller learning rates")
    best = sweep["val_loss"].where(ok).idxmin()
    return sweep.assign(chosen=sweep.index == best)
