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

from .architectures import ARCHITECTURES

TRAIN_KEYS = ("lr", "batch_size", "warmup_fraction")
EBT_KEYS = ("alpha", "alpha_lr_multiplier", "init_std", "candidate_init_std", "langevin_sigma")


def search_settings(space: dict) -> list[dict]:
    """Every combination of the space's values, e.g. {lr: [1, 2], alpha: [3]} ->
    [{lr: 1, alpha: 3}, {lr: 2, alpha: 3}]."""
    names = sorted(space)
    return [dict(zip(names, values)) for values in itertools.product(*(space[n] for n in names))]


# Every trained model takes these from its tuning setting, so each is swept, and lives only there.
ALWAYS_SWEPT = {"lr": "train"}
ALWAYS_SWEPT_EBT = {"alpha": "ebt"}


def check_search(search: dict, architectures: list[str], cfg: dict | None = None) -> None:
    """Equal tuning effort: every architecture has a space, with the same number of settings,
    naming only keys its model has. One name per setting: a key that every architecture it
    applies to sweeps (lr and alpha always are) is set only under tuning.search, never also in
    the train or ebt section, where nothing would read it. Raises ValueError naming the key."""
    sizes = {}
    for arch in architectures:
        if arch not in search:
            raise ValueError(f"tuning.search.{arch}: missing; every architecture in `architectures` is tuned")
        needed = {**ALWAYS_SWEPT, **(ALWAYS_SWEPT_EBT if ARCHITECTURES[arch].is_ebt else {})}
        for name in needed:
            if name not in search[arch]:
                raise ValueError(f"tuning.search.{arch}.{name}: missing; every model takes its {name} from its "
                                 "tuning setting, so every sweep names it (one value is a fixed setting)")
        for name in search[arch] if cfg is not None else ():
            section = "train" if name in TRAIN_KEYS else "ebt"
            users = [a for a in architectures if section == "train" or ARCHITECTURES[a].is_ebt]
            if name in cfg.get(section, {}) and all(name in search.get(a, {}) for a in users):
                raise ValueError(f"{section}.{name}: also swept under tuning.search.{arch}.{name}, which decides "
                                 f"it for every model; remove {section}.{name} (a setting has one place)")
        for name in search[arch]:
            allowed = TRAIN_KEYS + (EBT_KEYS if ARCHITECTURES[arch].is_ebt else ())
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
