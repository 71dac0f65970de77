"""Training checkpoints: one file per run, its whole training state, written atomically.

A run trained in a batch (models/train.py) checkpoints its own slice: the configs it
belongs to (its own, never its batch-mates'), its weights, its System-2 replay buffer, its
optimizer moments, its random streams and the trainer's counters. So a resumed batch
continues each run exactly where the killed one stopped, and a run's checkpoint means the
same whichever runs shared its batch.
"""
from __future__ import annotations

import json
import logging
from pathlib import Path

import torch

from creativity.io import atomic_path

log = logging.getLogger(__name__)


def save_torch(obj, path) -> None:
    """torch.save through a temporary file renamed into place: a reader sees the old file or
    the new one, never half of one."""
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)


def save_checkpoint(path, configs: dict, model, r: int, optimizer, rng_state: dict, state: dict) -> None:
    """Run r of the batch: configs, weights, replay rows, optimizer moments, RNG and counters."""
    weights = {k: v[r : r + 1].detach().cpu() for k, v in model.state_dict().items()}
    replay = model.replay[r].rows if model.replay is not None else None
    save_torch({"configs": configs, "model": weights, "replay": replay, "optimizer": optimizer.run_state(r),
                "rng": rng_state, "state": state}, path)


@torch.no_grad()
def load_checkpoint(path, configs: dict, model, r: int, optimizer) -> tuple[dict, dict] | None:
    """Restore run r's weights, replay buffer and optimizer moments from `path`; returns
    (trainer state, RNG state), or None when there is no usable checkpoint. A truncated file
    loses the progress, not the run; a checkpoint of other configs, data or code is stale
    (the run was changed since) and is never resumed."""
    path = Path(path)
    if not path.exists():
        return None
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        log.warning("checkpoint %s is unreadable (%s); restarting from scratch", path, e)
        return None
    if _jsonable(ckpt["configs"]) != _jsonable(configs):
        log.warning("checkpoint %s was made with other configs, data or code; restarting from scratch", path)
        return None
    for k, v in model.state_dict().items():
        v[r] = ckpt["model"][k][0].to(v.device)
    if model.replay is not None:
        model.replay[r].rows = list(ckpt["replay"])
    optimizer.load_run_state(r, {k: ([t.to(optimizer.steps.device) for t in v] if isinstance(v, list) else v)
                                 for k, v in ckpt["optimizer"].items()})
    return ckpt["state"], ckpt["rng"]


def _jsonable(x):
    """Configs as they round-trip through a checkpoint (tuples become lists)."""
    return json.loads(json.dumps(x))
