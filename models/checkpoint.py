"""Training checkpoints: the whole training state in one file, written atomically.

A checkpoint holds the configs it belongs to, the weights, a System-2 EBT's replay buffer,
the optimizer, the RNG state and the trainer's own counters, so a resumed run
continues exactly where the killed one stopped.
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


def save_checkpoint(path, configs: dict, model, optimizer, state: dict, device: torch.device) -> None:
    rng = {"torch": torch.get_rng_state(), "cuda": torch.cuda.get_rng_state(device) if device.type == "cuda" else None}
    replay = model.replay.rows if model.replay is not None else None
    save_torch({"configs": configs, "model": model.state_dict(), "replay": replay,
                "optimizer": optimizer.state_dict(), "rng": rng, "state": state}, path)


def load_checkpoint(path, configs: dict, model, optimizer, device: torch.device) -> dict | None:
    """Restore model, optimizer and RNG from `path` and return the trainer state; None when
    there is no usable checkpoint (a truncated file loses the progress, not the run)."""
    path = Path(path)
    if not path.exists():
        return None
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        log.warning("checkpoint %s is unreadable (%s); restarting from scratch", path, e)
        return None
    if _jsonable(ckpt["configs"]) != _jsonable(configs):
        raise ValueError(f"{path} belongs to a run with different configs; use another run_dir")
    model.load_state_dict(ckpt["model"])
    if model.replay is not None:
        model.replay.rows = list(ckpt["replay"])
    optimizer.load_state_dict(ckpt["optimizer"])
    torch.set_rng_state(ckpt["rng"]["torch"])
    if device.type == "cuda" and ckpt["rng"]["cuda"] is not None:
        torch.cuda.set_rng_state(ckpt["rng"]["cuda"], device)
    return ckpt["state"]


def _jsonable(x):
    """Configs as they round-trip through a checkpoint (tuples become lists)."""
    return json.loads(json.dumps(x))
