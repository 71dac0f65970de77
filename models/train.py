"""Train Transformer++ or EBT runs to a FLOP budget, several runs as one computation, resumably.

A batch is a set of runs of one architecture, shape and budget (the seeds of a grid point,
or the settings of a tuning sweep). Their weights are stacked along a leading run dimension
(models/model.py) and every step is one forward and backward pass over all of them. Each
run keeps its own seed, data order, random streams, learning-rate schedule, optimizer state,
checkpoint, curve and summary; nothing in a run's computation reads another run's rows, so
a run trained alone and trained in a batch give the same tables (tests/test_training.py).

The budget becomes a step count from the measured FLOPs of one real training step of one
run (models/budget.py). Both models share one loss signature,
model.training_loss(batch, rng, thinking_steps) -> per-run losses [R].

Exact resume: the data order is a function of (seed, step), the learning rate a function of
the step, evaluation and FLOP measurement never touch the training streams, and each run's
checkpoint carries its RNG state and replay buffer (models/checkpoint.py). On CPU a
killed-then-resumed batch ends with bit-identical weights (tests/test_training.py). Runs of
a batch whose checkpoints stopped at different steps resume together: a run ahead sits
still until the others catch up. A run whose loss stops being finite is recorded as
diverged and sits still from then on; its batch-mates go on.

Files in each run's run_dir:
    checkpoint.pt   full training state, rewritten atomically every checkpoint_every_steps,
                    deleted once every run of the batch has written its results
    model.pt        final weights + configs, for models.model.load_model
    curve.parquet   one row per step: step, tokens, train_loss, lr, val_loss (NaN off eval steps)
    summary.json    the returned summary, without the curve
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import time
from contextlib import contextmanager, nullcontext
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
import torch

from creativity.io import atomic_path, write_parquet

from .architectures import EBT_FAMILY, of_model
from .budget import StepPlan, plan_steps
from .checkpoint import load_checkpoint, save_checkpoint, save_torch
from .data import Batch, RunData, eval_batches
from .model import EBTConfig, ModelConfig, RunRNG, build_model, model_payload, stack_runs
from .optim import RunAdamW

log = logging.getLogger(__name__)


@dataclass
class TrainConfig:
    # Set by config.yaml (its train section; lr by tuning.search), the one place their defaults
    # are written: no default here, so a caller that leaves one out fails instead of training
    # with a second, silently different value.
    batch_size: int
    lr: float
    min_lr_ratio: float  # cosine decays to lr * min_lr_ratio
    warmup_fraction: float
    weight_decay: float  # on matrices and embeddings only, never on norms or alpha
    betas: tuple[float, float]
    grad_clip: float
    checkpoint_every_steps: int
    eval_every_steps: int
    # Not config settings: the run's seed, where and how it runs, and test-only shortcuts.
    seed: int = 0
    device: str = "auto"  # "auto": CUDA (bf16 autocast) when available, else CPU
    val_fraction: float = 0.05  # share held out for val_loss only without val_indices (the pipeline passes the task's)
    eval_max_batches: int = 8  # val_loss uses at most this many fixed batches
    num_threads: int | None = None  # torch CPU threads; None keeps torch's default (OMP_NUM_THREADS)


# What may differ between runs of one batch: everything else shapes the computation itself.
# Keys of the train section that plan the grid (pipeline/grid.py), not how a run trains.
GRID_PLANNING_KEYS = ("min_steps", "max_epochs")
PER_RUN_TRAIN_KEYS = ("seed", "lr", "min_lr_ratio", "warmup_fraction")
PER_RUN_EBT_KEYS = ("alpha", "candidate_init_std")  # a per-run tensor; an initialisation scale


def lr_at(step: int, total_steps: int, cfg: TrainConfig) -> float:
    """Linear warm-up, then cosine decay to lr * min_lr_ratio at the last step."""
    warmup = max(1, round(cfg.warmup_fraction * total_steps))
    if step < warmup:
        return cfg.lr * (step + 1) / warmup
    progress = (step - warmup) / max(1, total_steps - warmup)
    return cfg.lr * (cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress)))


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def batch_shared(train_cfg: TrainConfig, ebt_cfg: EBTConfig | None) -> dict:
    """What runs of one batch must have in common: everything but PER_RUN_TRAIN_KEYS and
    PER_RUN_EBT_KEYS."""
    shared = {k: v for k, v in asdict(train_cfg).items() if k not in PER_RUN_TRAIN_KEYS}
    if ebt_cfg is not None:
        shared.update({f"ebt.{k}": v for k, v in asdict(ebt_cfg).items() if k not in PER_RUN_EBT_KEYS})
    return shared


def check_batchable(train_cfgs: list[TrainConfig], ebt_cfgs: list[EBTConfig | None]) -> None:
    """Runs can share a batch if they differ only in PER_RUN_TRAIN_KEYS and PER_RUN_EBT_KEYS."""
    shared = [batch_shared(t, e) for t, e in zip(train_cfgs, ebt_cfgs)]
    for other in shared[1:]:
        differ = sorted(k for k in other if other[k] != shared[0][k])
        if differ:
            raise ValueError(f"runs of one batch differ in {', '.join(differ)}; only "
                             f"{', '.join(PER_RUN_TRAIN_KEYS + PER_RUN_EBT_KEYS)} may differ")


def data_fingerprint(sequences, target_starts, val_indices) -> str:
    """A checkpoint is resumed only on the very data it was trained on."""
    payload = json.dumps([sequences, target_starts, None if val_indices is None else list(val_indices)])
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def code_fingerprint() -> str:
    """The models package's source: a checkpoint is resumed only by the code that wrote it
    (the encoded corpus, hashed in data_fingerprint, covers the task's code)."""
    digest = hashlib.sha256()
    for path in sorted(Path(__file__).parent.glob("*.py")):
        digest.update(path.name.encode() + path.read_bytes())
    return digest.hexdigest()[:16]


def _training_seed(seed: int) -> int:
    """The run's training stream, apart from its initialisation (global RNG, `seed`) and its
    evaluation stream (`seed`, a fresh generator per evaluation)."""
    return 1_000_003 * seed + 1


def evaluate(model, batches_per_run: list[list[Batch]], seeds: list[int], autocast) -> list[float]:
    """Each run's mean loss over its fixed batches (already on the device), weighted by loss
    tokens. An EBT's z_0 comes from generators seeded here, so the result is deterministic
    and the training streams are untouched."""
    model.eval()
    device = batches_per_run[0][0].idx.device
    rng = RunRNG(seeds, device)
    totals, counts = np.zeros(len(seeds)), np.zeros(len(seeds))
    with torch.no_grad(), autocast:
        for batches in zip(*batches_per_run):
            n = np.array([float(b.mask.sum()) for b in batches])
            losses = model.validation_loss(_concat(batches), rng).float().cpu().numpy()
            totals, counts = totals + losses * n, counts + n
    model.train()
    # Python floats: a curve row holding a numpy scalar makes its checkpoint unloadable with
    # weights_only, and the killed run would restart from scratch instead of resuming.
    return [float(v) for v in totals / np.maximum(counts, 1)]


def _concat(batches: list[Batch]) -> Batch:
    """One batch of R blocks, block r from run r."""
    return Batch(*(torch.cat([getattr(b, k) for b in batches]) for k in ("idx", "targets", "mask")),
                 batches[0].n_queries)


@contextmanager
def _sitting_still(model, rng: RunRNG, runs: list[int]):
    """Runs that skip this step (diverged, or resumed ahead of their batch-mates) still pass
    through the batched computation; put back what it drew from their streams and their
    replay buffers, so that skipping leaves them exactly as they were. The optimizer leaves
    their weights alone (RunAdamW.step's active mask)."""
    saved = [(r, rng.generators[r].get_state(), list(model.replay[r].rows) if model.replay else None) for r in runs]
    try:
        yield
    finally:
        for r, state, rows in saved:
            rng.generators[r].set_state(state)
            if rows is not None:
                model.replay[r].rows = rows


def train_batch(
    model_cfg: ModelConfig,
    family: str,
    ebt_cfgs: list[EBTConfig | None],
    train_cfgs: list[TrainConfig],
    run_dirs: list,
    sequences: list[list[int]],
    target_starts: list[int],
    pad_id: int,
    flop_budget: float,
    val_indices: list[int] | None = None,
    on_step: Callable[[int, list[dict]], None] | None = None,
) -> list[dict]:
    """Train one run per (ebt_cfg, train_cfg, run_dir) until each run's measured FLOPs reach
    flop_budget, resuming each from its run_dir where possible.

    on_step(steps_done, curve rows of the runs that stepped) is called after every step
    (after any checkpoint); an exception raised there propagates, which is how tests
    simulate a killed job.

    Returns one summary dict per run (also written to its summary.json) plus "curve".
    """
    R, run_dirs = len(run_dirs), [Path(d) for d in run_dirs]
    check_batchable(train_cfgs, ebt_cfgs)
    cfg = train_cfgs[0]
    if cfg.num_threads:
        torch.set_num_threads(cfg.num_threads)
    device = resolve_device(cfg.device)
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else nullcontext()

    datas = [RunData(sequences, target_starts, pad_id, c.batch_size, c.val_fraction, c.eval_max_batches, c.seed,
                     ebt_queries=family == EBT_FAMILY, device=device, val_indices=val_indices) for c in train_cfgs]
    if datas[0].length > model_cfg.max_seq_len:
        raise ValueError(f"longest sequence has {datas[0].length} tokens > max_seq_len={model_cfg.max_seq_len}")
    train_probe = [_train_sample(d, sequences, target_starts, pad_id, c, device) for d, c in zip(datas, train_cfgs)]

    singles = []
    for c, e in zip(train_cfgs, ebt_cfgs):
        torch.manual_seed(c.seed)  # each run starts as it would alone
        singles.append(build_model(family, model_cfg, e).to(device))
    with autocast:
        plan = plan_steps(singles[0], datas[0].train_batch(0), flop_budget,
                          (family, repr(model_cfg), repr(ebt_cfgs[0]), device.type))
    model = stack_runs(singles)
    del singles
    optimizer = RunAdamW(model.optimizer_groups(cfg.weight_decay), R, cfg.betas)
    rng = RunRNG([_training_seed(c.seed) for c in train_cfgs], device)

    data_id, code_id = data_fingerprint(sequences, target_starts, val_indices), code_fingerprint()
    configs = [{"arch": family, "model_cfg": asdict(model_cfg), "ebt_cfg": asdict(e) if e else None,
                "train_cfg": asdict(c), "flop_budget": float(flop_budget), "data": data_id, "code": code_id}
               for c, e in zip(train_cfgs, ebt_cfgs)]
    states = [_resume(run_dir / "checkpoint.pt", configs[r], model, r, optimizer, rng, plan.total_steps)
              for r, run_dir in enumerate(run_dirs)]

    statuses, diverged_at = ["ok"] * R, [None] * R
    tokens_per_step, first_step = datas[0].tokens_per_step, min(s["step"] for s in states)
    model.train()
    if first_step < plan.total_steps:
        seconds_per_step = _step_seconds(model, optimizer, rng, _concat([d.train_batch(first_step) for d in datas]),
                                         model.thinking_steps_at(first_step), plan, cfg.grad_clip, autocast, device)
        log.info("%s", _estimate_line(plan, first_step, R, seconds_per_step))
    progress = _Progress(plan.total_steps, first_step, tokens_per_step * R)
    t_start, wall_before = time.perf_counter(), max(s["wall_seconds"] for s in states)
    for step in range(first_step, plan.total_steps):
        active = [s["step"] == step and diverged_at[r] is None for r, s in enumerate(states)]
        if not any(active):
            continue
        thinking_steps = model.thinking_steps_at(step)
        lrs = [lr_at(step, plan.total_steps, c) for c in train_cfgs]
        batch = _concat([d.train_batch(step) for d in datas])
        with _sitting_still(model, rng, [r for r in range(R) if not active[r]]):
            losses = _take_step(model, optimizer, batch, rng, thinking_steps, lrs, active, cfg.grad_clip, autocast)
        done, rows = step + 1, []
        for r in (r for r in range(R) if active[r]):
            if not math.isfinite(losses[r]):
                statuses[r], diverged_at[r] = "diverged", step
                log.warning("%s: loss is %s at step %d: it sits still from here", run_dirs[r], losses[r], step)
                continue
            for key in states[r]["flops"]:
                states[r]["flops"][key] += plan.costs[thinking_steps][key]
            states[r]["step"] = done
            rows.append({"step": done, "tokens": done * tokens_per_step, "train_loss": losses[r], "lr": lrs[r],
                         "val_loss": float("nan")})
            states[r]["curve"].append(rows[-1])
        stepped = [r for r in range(R) if active[r] and diverged_at[r] is None]
        if datas[0].val_batches and (done % cfg.eval_every_steps == 0 or done == plan.total_steps):
            val = evaluate(model, [d.val_batches for d in datas], [c.seed for c in train_cfgs], autocast)
            for r in stepped:
                states[r]["curve"][-1]["val_loss"] = val[r]
        wall = wall_before + time.perf_counter() - t_start
        for r in stepped:
            states[r]["wall_seconds"] = wall
            if done % cfg.checkpoint_every_steps == 0 or done == plan.total_steps:
                save_checkpoint(run_dirs[r] / "checkpoint.pt", configs[r], model, r, optimizer,
                                rng.generators[r].get_state(), states[r])
        progress.report(done, [losses[r] for r in stepped])
        if on_step is not None:
            on_step(done, rows)

    train_loss = evaluate(model, train_probe, [c.seed for c in train_cfgs], autocast)
    summaries = []
    for r, run_dir in enumerate(run_dirs):
        curve = pd.DataFrame(states[r]["curve"], columns=["step", "tokens", "train_loss", "lr", "val_loss"])
        summary = _summary(model, r, family, ebt_cfgs[r], states[r], curve, plan, flop_budget, tokens_per_step,
                           statuses[r], diverged_at[r], device, cfg.batch_size, len(datas[r].train_idx), train_loss[r])
        save_torch(model_payload(model, r, alpha=ebt_cfgs[r].alpha if ebt_cfgs[r] else None), run_dir / "model.pt")
        write_parquet(curve, run_dir / "curve.parquet")
        with atomic_path(run_dir / "summary.json") as tmp:
            Path(tmp).write_text(json.dumps(summary, indent=2))
        summaries.append({**summary, "curve": curve})
    for run_dir in run_dirs:  # only now: a kill before this point resumes every run
        (run_dir / "checkpoint.pt").unlink(missing_ok=True)
    return summaries


def train_to_budget(model_cfg: ModelConfig, family: str, ebt_cfg: EBTConfig | None, train_cfg: TrainConfig,
                    sequences, target_starts, pad_id: int, flop_budget: float, run_dir,
                    val_indices=None, on_step=None) -> dict:
    """One run alone: a batch of one."""
    on_batch_step = None if on_step is None else (lambda done, rows: on_step(done, rows[0] if rows else None))
    return train_batch(model_cfg, family, [ebt_cfg], [train_cfg], [run_dir], sequences, target_starts, pad_id,
                       flop_budget, val_indices, on_batch_step)[0]


def _resume(path, configs, model, r, optimizer, rng, total_steps) -> dict:
    loaded = load_checkpoint(path, configs, model, r, optimizer)
    if loaded is None:
        return {"step": 0, "curve": [], "wall_seconds": 0.0,
                "flops": {"flops_measured": 0, "flops_6nd": 0, "flops_analytic": 0}}
    state, rng_state = loaded
    rng.generators[r].set_state(rng_state)
    log.info("resumed %s at step %d / %d", Path(path).parent, state["step"], total_steps)
    return state


def _train_sample(data: RunData, sequences, target_starts, pad_id, cfg: TrainConfig, device) -> list[Batch]:
    """Fixed batches of training sequences, as many as the validation batches hold, so that
    train loss and val loss are measured the same way (the train-val gap)."""
    n = sum(len(b.idx) for b in data.val_batches) or cfg.batch_size
    pick = np.random.default_rng([cfg.seed, 0x7EA1]).choice(data.train_idx, size=min(n, len(data.train_idx)),
                                                            replace=False)
    batches = eval_batches(sequences, target_starts, sorted(pick.tolist()), pad_id, data.length, cfg.batch_size,
                           len(data.val_batches) or 1, data.n_queries)
    return [b.to(device) for b in batches]


def _take_step(model, optimizer, batch, rng, thinking_steps, lrs, active, grad_clip, autocast) -> list[float]:
    """One optimiser step of every active run: its loss. A run whose loss is not finite is
    not stepped; the caller records it as diverged."""
    with autocast:
        losses = model.training_loss(batch, rng, thinking_steps)
    values = losses.detach().float().cpu()
    update = torch.tensor(active) & torch.isfinite(values)
    if update.any():
        torch.where(update.to(losses.device), losses, 0.0).sum().backward()
        optimizer.clip_grad_norm_(grad_clip)
        optimizer.step(torch.tensor(lrs, device=losses.device), update.to(losses.device))
    optimizer.zero_grad()
    return values.tolist()


def _step_seconds(model, optimizer, rng, batch, thinking_steps, plan, grad_clip, autocast, device) -> float:
    """Wall seconds of a mean training step of this batch, measured before training starts on
    a step in which every run sits still: forward, backward, clipping and the masked optimiser
    update, the path a diverged run takes, which leaves every weight, moment, random stream
    and replay buffer as it was. The mean of two such steps after a first that pays one-time
    set-up costs, scaled from the probe's thinking step count to the plan's mean step cost."""
    n_runs = len(rng.generators)
    lrs, nobody = torch.zeros(n_runs, device=device), torch.zeros(n_runs, dtype=torch.bool, device=device)
    seconds = []
    with _sitting_still(model, rng, list(range(n_runs))):
        for _ in range(3):
            start = time.perf_counter()
            with autocast:
                losses = model.training_loss(batch, rng, thinking_steps)
            losses.sum().backward()
            optimizer.clip_grad_norm_(grad_clip)
            optimizer.step(lrs, nobody)
            optimizer.zero_grad()
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            seconds.append(time.perf_counter() - start)
    return float(np.mean(seconds[1:])) * plan.flops_per_step / plan.costs[thinking_steps]["flops_measured"]


def _estimate_line(plan: StepPlan, first_step: int, n_runs: int, seconds_per_step: float) -> str:
    """The batch's plan and how long its steps will take, for the log before the first step:
    "planned 1,010 steps, 1.4e11 FLOPs per run, 3 runs; estimated 41 s at the measured 40.6 ms/step".
    Evaluation and checkpoints come on top."""
    left = plan.total_steps - first_step
    resumed = f", resuming at step {first_step:,} with {left:,} left" if first_step else ""
    flops = f"{plan.total_steps * plan.flops_per_step:.2g}".replace("e+0", "e").replace("e+", "e")
    return (f"planned {plan.total_steps:,} steps, {flops} FLOPs per run, "
            f"{n_runs} run{'s' if n_runs > 1 else ''}{resumed}; estimated {_duration(left * seconds_per_step)} "
            f"at the measured {1e3 * seconds_per_step:.3g} ms/step")


def _duration(seconds: float) -> str:
    if seconds < 10:
        return f"{seconds:.1f} s"
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


class _Progress:
    """Training progress in the log at a bounded rate: about every tenth of the run, and at
    most every 30 s, with throughput and the time left."""

    def __init__(self, total_steps: int, first_step: int, tokens_per_step: int):
        self.total, self.first, self.tokens_per_step = total_steps, first_step, tokens_per_step
        self.every = max(1, total_steps // 10)
        self.t0 = self.last = time.perf_counter()

    def report(self, done: int, losses: list[float]) -> None:
        now = time.perf_counter()
        if not (done % self.every == 0 or done == self.total or now - self.last > 30):
            return
        self.last, elapsed = now, now - self.t0
        rate = (done - self.first) / elapsed if elapsed > 0 else float("nan")
        eta = (self.total - done) / rate if rate > 0 else float("nan")
        loss = ", ".join(f"{v:.3f}" for v in losses)
        log.info("step %d / %d (%.0f%%)  loss %s  %.0f tokens/s  ETA %.0f s", done, self.total,
                 100 * done / self.total, loss, rate * self.tokens_per_step, eta)


def _summary(model, r, family, ebt_cfg, state, curve, plan, flop_budget, tokens_per_step, status, diverged_step,
             device, batch_size: int, train_sequences: int, train_eval_loss: float) -> dict:
    last, val = curve["train_loss"].tail(10), curve["val_loss"].dropna()
    steps_done, wall = state["step"], state["wall_seconds"]
    val_loss = float(val.iloc[-1]) if len(val) else float("nan")
    entry = of_model(family, ebt_cfg.variant if ebt_cfg else None)
    return {
        "arch": entry.family,
        "variant": entry.variant,
        **model.param_counts(),
        "steps": steps_done,
        "total_steps": plan.total_steps,
        "tokens": steps_done * tokens_per_step,
        "epochs": steps_done * batch_size / train_sequences,  # passes over the training sequences
        "flop_budget": float(flop_budget),
        "flops_per_step_measured": plan.flops_per_step,
        **{k: int(v) for k, v in state["flops"].items()},
        "initial_train_loss": float(curve["train_loss"].iloc[0]) if len(curve) else float("nan"),
        "train_loss": float(last.mean()) if len(last) else float("nan"),
        "val_loss": val_loss,
        # The same measurement on fixed training sequences: val minus train is the
        # memorisation the run shows.
        "train_eval_loss": train_eval_loss,
        "train_val_gap": val_loss - train_eval_loss,
        "status": status,
        "diverged_step": diverged_step,
        "wall_seconds": wall,
        "tokens_per_second": steps_done * tokens_per_step / wall if wall > 0 else float("nan"),
        "device": str(device),
        "alpha": float(model.alpha[r].detach()) if entry.is_ebt else None,
    }
