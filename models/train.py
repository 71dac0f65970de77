"""Train a Transformer++ or an EBT to a FLOP budget, resumably.

The budget becomes a step count from the measured FLOPs of one real training step
(models/budget.py). Both models share one loss signature, model.training_loss(batch) ->
(loss, thinking steps used), so this loop never asks which model it trains.

Exact resume: the data order is a function of (seed, step), the learning rate a function
of the step, evaluation and FLOP measurement never touch the training RNG, and the
checkpoint carries the RNG state and the EBT's replay buffer (models/checkpoint.py). On CPU
a killed-then-resumed run ends with bit-identical weights (tests/test_training.py).

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
import time
from contextlib import nullcontext
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import pandas as pd
import torch

from creativity.io import atomic_path, write_parquet

from .budget import plan_steps
from .checkpoint import load_checkpoint, save_checkpoint, save_torch
from .data import RunData
from .model import EBTConfig, ModelConfig, build_model, model_payload

log = logging.getLogger(__name__)


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
        if name == "alpha":  # only a System-1 EBT learns its step size
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


def evaluate(model, batches, device, autocast, seed: int) -> float:
    """Mean val loss over fixed batches (already on `device`). The EBT starts its z_0 from a
    generator seeded here, so val_loss is deterministic and the training RNG stream is untouched."""
    model.eval()
    gen = torch.Generator(device=device).manual_seed(seed)
    total, count = 0.0, 0
    with torch.no_grad(), autocast:
        for b in batches:
            n = int(b.mask.sum())
            total, count = total + model.validation_loss(b, gen).item() * n, count + n
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

    data = RunData(sequences, target_starts, pad_id, train_cfg.batch_size, train_cfg.val_fraction,
                   train_cfg.eval_max_batches, train_cfg.seed, ebt_queries=arch == "ebt", device=device)
    if data.length > model_cfg.max_seq_len:
        raise ValueError(f"longest sequence has {data.length} tokens > max_seq_len={model_cfg.max_seq_len}")

    torch.manual_seed(train_cfg.seed)
    model = build_model(arch, model_cfg, ebt_cfg).to(device)
    optimizer = make_optimizer(model, train_cfg, ebt_cfg)
    with autocast:
        plan = plan_steps(model, data.train_batch(0), flop_budget, (arch, repr(model_cfg), repr(ebt_cfg), device.type))

    configs = {
        "arch": arch,
        "model_cfg": asdict(model_cfg),
        "ebt_cfg": asdict(ebt_cfg) if ebt_cfg else None,
        "train_cfg": asdict(train_cfg),
        "flop_budget": float(flop_budget),
        "n_sequences": len(sequences),
    }
    ckpt_path = run_dir / "checkpoint.pt"
    state = load_checkpoint(ckpt_path, configs, model, optimizer, device)
    if state is None:
        state = {"step": 0, "curve": [], "wall_seconds": 0.0,
                 "flops": {"flops_measured": 0, "flops_6nd": 0, "flops_analytic": 0}}
    else:
        log.info("resumed %s at step %d / %d", run_dir, state["step"], plan.total_steps)

    status, diverged_step = "ok", None
    tokens_per_step = data.tokens_per_step
    model.train()
    t_start, wall_before = time.perf_counter(), state["wall_seconds"]
    while state["step"] < plan.total_steps:
        step = state["step"]
        lr = lr_at(step, plan.total_steps, train_cfg)
        loss_value, thinking_steps = _take_step(model, optimizer, data.train_batch(step), lr,
                                                train_cfg.grad_clip, autocast)
        if step == 0:  # a sane model starts near a uniform guess, ln|V|
            log.info("step-0 training loss %.3f (ln|V| = %.3f)", loss_value, math.log(model_cfg.vocab_size))
        if not math.isfinite(loss_value):
            status, diverged_step = "diverged", step
            log.warning("loss is %s at step %d: stopping", loss_value, step)
            break
        for key in state["flops"]:
            state["flops"][key] += plan.costs[thinking_steps][key]
        state["step"] = done = step + 1
        row = {"step": done, "tokens": done * tokens_per_step, "train_loss": loss_value, "lr": lr, "val_loss": float("nan")}
        if data.val_batches and (done % train_cfg.eval_every_steps == 0 or done == plan.total_steps):
            row["val_loss"] = evaluate(model, data.val_batches, device, autocast, train_cfg.seed)
        state["curve"].append(row)
        state["wall_seconds"] = wall_before + time.perf_counter() - t_start
        if done % train_cfg.checkpoint_every_steps == 0 or done == plan.total_steps:
            save_checkpoint(ckpt_path, configs, model, optimizer, state, device)
        if on_step is not None:
            on_step(done, row)

    curve = pd.DataFrame(state["curve"], columns=["step", "tokens", "train_loss", "lr", "val_loss"])
    summary = _summary(model, arch, ebt_cfg, state, curve, plan, flop_budget, tokens_per_step, status, diverged_step,
                       device)
    save_torch(model_payload(model), run_dir / "model.pt")
    write_parquet(curve, run_dir / "curve.parquet")
    with atomic_path(run_dir / "summary.json") as tmp:
        Path(tmp).write_text(json.dumps(summary, indent=2))
    return {**summary, "curve": curve}


def _take_step(model, optimizer, batch, lr: float, grad_clip: float, autocast) -> tuple[float, int | None]:
    """One optimiser step at learning rate lr: (loss, thinking steps used). A non-finite loss
    is returned without stepping; the caller records the run as diverged."""
    for group in optimizer.param_groups:
        group["lr"] = lr * group["lr_scale"]
    with autocast:
        loss, thinking_steps = model.training_loss(batch)
    loss_value = loss.item()
    if math.isfinite(loss_value):
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    return loss_value, thinking_steps


def _summary(model, arch, ebt_cfg, state, curve, plan, flop_budget, tokens_per_step, status, diverged_step,
             device) -> dict:
    last, val = curve["train_loss"].tail(10), curve["val_loss"].dropna()
    steps_done, wall = state["step"], state["wall_seconds"]
    return {
        "arch": arch,
        "variant": ebt_cfg.variant if arch == "ebt" else "tpp",
        **model.param_counts(),
        "steps": steps_done,
        "total_steps": plan.total_steps,
        "tokens": steps_done * tokens_per_step,
        "flop_budget": float(flop_budget),
        "flops_per_step_measured": plan.flops_per_step,
        **{k: int(v) for k, v in state["flops"].items()},
        "initial_train_loss": float(curve["train_loss"].iloc[0]) if len(curve) else float("nan"),
        "train_loss": float(last.mean()) if len(last) else float("nan"),
        "val_loss": float(val.iloc[-1]) if len(val) else float("nan"),
        "status": status,
        "diverged_step": diverged_step,
        "wall_seconds": wall,
        "tokens_per_second": steps_done * tokens_per_step / wall if wall > 0 else float("nan"),
        "device": str(device),
        "alpha": float(model.alpha.detach()) if arch == "ebt" else None,
    }
