"""Train a Transformer++ or an EBT to a FLOP budget, resumably.

The budget is turned into a step count by measuring the FLOPs of one real training step
(models/flops.py); every batch is padded to the same length, so every step costs the same
(for a System-2 EBT, whose step count is random, each thinking-step count is measured and
the run is charged the measured cost of the count it actually drew). FLOPs depend only on
shapes, so a process measures each (model config, batch shape, step count) once.

Exact resume: the data order is a function of (seed, step), the learning rate a function
of the step, evaluation and FLOP measurement never touch the training RNG, and the
checkpoint carries the RNG state and the replay buffer. On CPU a killed-then-resumed run
ends with bit-identical weights (tests/test_training.py).

Files in run_dir:
    checkpoint.pt   full training state, rewritten atomically every checkpoint_every_steps
    model.pt        final weights + configs, for models.model.load_model
    curve.parquet   one row per step: step, tokens, train_loss, lr, val_loss (NaN off eval steps)
    summary.json    the returned summary, without the curve
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from contextlib import nullcontext
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import pandas as pd
import torch

from .data import batch_positions, eval_batches, make_batch, split_train_val
from .flops import analytic_flops, measure_step_flops
from .model import EBT, EBTConfig, ModelConfig, ReplayBuffer, build_model, model_payload

log = logging.getLogger(__name__)
_MEASURED: dict[tuple, int] = {}  # measured FLOPs of one step, by (model, batch shape, step count)


@dataclass
class TrainConfig:
    batch_size: int = 32
    lr: float = 2.4e-3  # the official 4xs setting; ebt.md gives 6e-4 for "small"
    min_lr_ratio: float = 0.1  # cosine decays to lr * min_lr_ratio
    warmup_fraction: float = 0.05
    weight_decay: float = 0.01  # on matrices and embeddings only, never on norms or alpha
    betas: tuple[float, float] = (0.9, 0.999)
    grad_clip: float = 1.0
    checkpoint_every_steps: int = 200
    eval_every_steps: int = 200
    seed: int = 0
    device: str = "auto"  # "auto": CUDA (bf16 autocast) when available, else CPU
    val_fraction: float = 0.05  # share of the sequences held out for val_loss
    eval_max_batches: int = 8  # val_loss uses at most this many fixed batches
    num_threads: int | None = None  # torch CPU threads; None keeps torch's default (OMP_NUM_THREADS)


def lr_at(step: int, total_steps: int, cfg: TrainConfig) -> float:
    """Linear warm-up, then cosine decay to lr * min_lr_ratio at the last step."""
    warmup = max(1, round(cfg.warmup_fraction * total_steps))
    if step < warmup:
        return cfg.lr * (step + 1) / warmup
    progress = (step - warmup) / max(1, total_steps - warmup)
    return cfg.lr * (cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress)))


def make_optimizer(model: torch.nn.Module, cfg: TrainConfig, ebt_cfg: EBTConfig | None) -> torch.optim.AdamW:
    decay, no_decay, alpha = [], [], []
    for name, p in model.named_parameters():
        if name == "log_alpha":
            alpha.append(p)
        elif p.dim() >= 2:
            decay.append(p)
        else:
            no_decay.append(p)
    # "lr_scale" is our own key: the schedule sets each group's lr to lr_at(step) * lr_scale.
    groups = [
        {"params": decay, "weight_decay": cfg.weight_decay, "lr_scale": 1.0},
        {"params": no_decay, "weight_decay": 0.0, "lr_scale": 1.0},
    ]
    if alpha:
        groups.append({"params": alpha, "weight_decay": 0.0, "lr_scale": ebt_cfg.alpha_lr_multiplier})
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=tuple(cfg.betas))


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def atomic_save(obj, path: Path):
    """torch.save to a temporary name in the same directory, then os.replace: a reader (or a
    resumed run) sees either the old file or the new one, never half of one."""
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as f:
        torch.save(obj, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _atomic_write_text(text: str, path: Path):
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def _loss(model, batch, n_steps, replay=None, n_queries=None):
    if isinstance(model, EBT):
        return model.loss(batch.idx, batch.targets, batch.mask, n_steps, replay, n_queries)
    return model.loss(batch.idx, batch.targets, batch.mask)


def loss_queries(sequences, target_starts) -> int:
    """Most loss positions in any one sequence: the EBT's prediction-stream width."""
    return max(len(s) - start for s, start in zip(sequences, target_starts))


def evaluate(model, batches, device, autocast, seed: int, n_queries: int | None = None) -> float:
    """Mean val loss over fixed batches. The EBT starts its z_0 from a generator seeded here,
    so val_loss is deterministic and the training RNG stream is untouched."""
    model.eval()
    gen = torch.Generator(device=device).manual_seed(seed)
    total, count = 0.0, 0
    with torch.no_grad(), autocast:
        for b in batches:
            b = b.to(device)
            if isinstance(model, EBT):
                loss = model.eval_loss(b.idx, b.targets, b.mask, gen, n_queries)
            else:
                loss = model.loss(b.idx, b.targets, b.mask)
            n = int(b.mask.sum())
            total, count = total + loss.item() * n, count + n
    model.train()
    return total / max(count, 1)


def train_to_budget(
    model_cfg: ModelConfig,
    arch: str,
    ebt_cfg: EBTConfig | None,
    train_cfg: TrainConfig,
    sequences: list[list[int]],
    target_starts: list[int],
    pad_id: int,
    flop_budget: float,
    run_dir,
    on_step: Callable[[int, dict], None] | None = None,
) -> dict:
    """Train until the measured FLOPs reach flop_budget; resume from run_dir if possible.

    on_step(steps_done, curve_row) is called after every step (after any checkpoint); an
    exception raised there propagates, which is how tests simulate a killed run.

    Returns the summary dict (also written to summary.json) plus "curve": a DataFrame.
    """
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    if arch == "ebt" and ebt_cfg is None:
        ebt_cfg = EBTConfig()
    if train_cfg.num_threads:
        torch.set_num_threads(train_cfg.num_threads)
    device = resolve_device(train_cfg.device)
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else nullcontext()

    # -- data: one padded length for every batch, so every step costs the same
    train_idx, val_idx = split_train_val(len(sequences), train_cfg.val_fraction, train_cfg.seed)
    length = max(len(s) for s in sequences)
    if length > model_cfg.max_seq_len:
        raise ValueError(f"longest sequence has {length} tokens > max_seq_len={model_cfg.max_seq_len}")
    val_batches = eval_batches(sequences, target_starts, val_idx, pad_id, length, train_cfg.batch_size, train_cfg.eval_max_batches)
    n_queries = loss_queries(sequences, target_starts) if arch == "ebt" else None

    def train_batch(step):
        pos = batch_positions(len(train_idx), train_cfg.batch_size, step, train_cfg.seed)
        return make_batch(sequences, target_starts, [train_idx[p] for p in pos], pad_id, length).to(device)

    def fresh():
        torch.manual_seed(train_cfg.seed)
        model = build_model(arch, model_cfg, ebt_cfg).to(device)
        replay = None
        if arch == "ebt" and ebt_cfg.variant == "system2" and ebt_cfg.replay_fraction > 0:
            replay = ReplayBuffer(ebt_cfg.replay_size, ebt_cfg.replay_fraction)
        return model, make_optimizer(model, train_cfg, ebt_cfg), replay

    model, optimizer, replay = fresh()

    # -- budget -> steps, from the measured cost of a real step (one per possible step count)
    step_counts = [None]
    if arch == "ebt":
        lo, hi = ebt_cfg.random_steps if ebt_cfg.variant == "system2" else (ebt_cfg.steps, ebt_cfg.steps)
        step_counts = list(range(lo, hi + 1))
    probe = train_batch(0)
    cost = {}
    with autocast:
        for k in step_counts:
            cost[k] = analytic_flops(model, probe.idx.size(0), probe.idx.size(1), k, n_queries)
            # FLOPs depend only on shapes, and the counter is slow, so measure once per process.
            key = (arch, repr(model_cfg), repr(ebt_cfg), tuple(probe.idx.shape), k, n_queries, device.type)
            if key not in _MEASURED:
                _MEASURED[key] = measure_step_flops(model, probe.idx, probe.targets, probe.mask, k, n_queries)
            cost[k]["flops_measured"] = _MEASURED[key]
    flops_per_step = sum(c["flops_measured"] for c in cost.values()) / len(cost)
    total_steps = int(flop_budget // flops_per_step)
    if total_steps < 1:
        raise ValueError(
            f"flop_budget={flop_budget:.3g} is smaller than one training step "
            f"({flops_per_step:.3g} FLOPs measured for this model and batch)"
        )

    # -- resume
    configs = {
        "arch": arch,
        "model_cfg": asdict(model_cfg),
        "ebt_cfg": asdict(ebt_cfg) if ebt_cfg else None,
        "train_cfg": asdict(train_cfg),
        "flop_budget": float(flop_budget),
        "n_sequences": len(sequences),
    }
    state = {"step": 0, "curve": [], "flops": {"flops_measured": 0, "flops_6nd": 0, "flops_analytic": 0}, "wall_seconds": 0.0}
    ckpt_path = run_dir / "checkpoint.pt"
    if ckpt_path.exists():
        try:
            ckpt = torch.load(ckpt_path, map_location="cpu", weights_only=True)
        except Exception as e:  # truncated / corrupt file: lose the progress, not the run
            log.warning("checkpoint %s is unreadable (%s); restarting from scratch", ckpt_path, e)
            ckpt = None
        if ckpt is not None:
            if _jsonable(ckpt["configs"]) != _jsonable(configs):
                raise ValueError(f"{ckpt_path} belongs to a run with different configs; use another run_dir")
            model.load_state_dict(ckpt["model"])
            optimizer.load_state_dict(ckpt["optimizer"])
            if replay is not None:
                replay.load_state_dict(ckpt["replay"])
            torch.set_rng_state(ckpt["rng"]["torch"])
            if device.type == "cuda" and ckpt["rng"]["cuda"] is not None:
                torch.cuda.set_rng_state(ckpt["rng"]["cuda"], device)
            state = ckpt["state"]
            log.info("resumed %s at step %d / %d", run_dir, state["step"], total_steps)

    def save_checkpoint():
        rng = {"torch": torch.get_rng_state(), "cuda": torch.cuda.get_rng_state(device) if device.type == "cuda" else None}
        atomic_save(
            {
                "configs": configs,
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "replay": replay.state_dict() if replay is not None else None,
                "rng": rng,
                "state": state,
            },
            ckpt_path,
        )

    # -- train
    status, diverged_step = "ok", None
    tokens_per_step = train_cfg.batch_size * (length - 1)
    model.train()
    t_start = time.perf_counter()
    wall_before = state["wall_seconds"]
    while state["step"] < total_steps:
        step = state["step"]
        lr = lr_at(step, total_steps, train_cfg)
        for group in optimizer.param_groups:
            group["lr"] = lr * group["lr_scale"]
        batch = train_batch(step)
        n_steps = model.sample_n_steps() if isinstance(model, EBT) else None
        with autocast:
            loss = _loss(model, batch, n_steps, replay, n_queries)
        loss_value = loss.item()
        if not math.isfinite(loss_value):
            status, diverged_step = "diverged", step
            log.warning("loss is %s at step %d: stopping", loss_value, step)
            break
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), train_cfg.grad_clip)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

        for key in state["flops"]:
            state["flops"][key] += cost[n_steps][key]
        state["step"] = step + 1
        done = state["step"]
        row = {"step": done, "tokens": done * tokens_per_step, "train_loss": loss_value, "lr": lr, "val_loss": float("nan")}
        if done % train_cfg.eval_every_steps == 0 or done == total_steps:
            row["val_loss"] = (evaluate(model, val_batches, device, autocast, train_cfg.seed, n_queries)
                               if val_batches else float("nan"))
        state["curve"].append(row)
        state["wall_seconds"] = wall_before + time.perf_counter() - t_start
        if done % train_cfg.checkpoint_every_steps == 0 or done == total_steps:
            save_checkpoint()
        if on_step is not None:
            on_step(done, row)

    # -- outputs
    curve = pd.DataFrame(state["curve"], columns=["step", "tokens", "train_loss", "lr", "val_loss"])
    steps_done = state["step"]
    last = curve["train_loss"].tail(10)
    val = curve["val_loss"].dropna()
    wall = state["wall_seconds"]
    summary = {
        "arch": arch,
        "variant": ebt_cfg.variant if arch == "ebt" else None,
        **model.param_counts(),
        "steps": steps_done,
        "total_steps": total_steps,
        "tokens": steps_done * tokens_per_step,
        "flop_budget": float(flop_budget),
        "flops_per_step_measured": flops_per_step,
        **{k: int(v) for k, v in state["flops"].items()},
        "train_loss": float(last.mean()) if len(last) else float("nan"),
        "val_loss": float(val.iloc[-1]) if len(val) else float("nan"),
        "status": status,
        "diverged_step": diverged_step,
        "wall_seconds": wall,
        "tokens_per_second": steps_done * tokens_per_step / wall if wall > 0 else float("nan"),
        "device": str(device),
        "alpha": float(model.alpha.detach()) if isinstance(model, EBT) else None,
    }
    atomic_save(model_payload(model), run_dir / "model.pt")
    tmp = run_dir / ".curve.parquet.tmp"
    curve.to_parquet(tmp, index=False)
    os.replace(tmp, run_dir / "curve.parquet")
    _atomic_write_text(json.dumps(summary, indent=2), run_dir / "summary.json")
    return {**summary, "curve": curve}


def _jsonable(x):
    """Configs as they round-trip through a checkpoint (tuples become lists)."""
    return json.loads(json.dumps(x))
