"""Transformer++ and the Energy-Based Transformer (EBT), in one module.

Both models share the same LLaMA-style trunk (pre-norm RMSNorm, rotary position
embeddings, SwiGLU MLP, no biases, no dropout, final RMSNorm). They differ in how a
next token is produced:

* TransformerPP reads logits off an untied output head (one forward pass).
* EBT scores a *candidate* next-token distribution p = softmax(z) with a scalar energy and
  "thinks" by gradient steps  z <- p - alpha * dE/dp  (see shared/reference/ebt.md). System 1
  and System 2 differ only in how they train (EBT._system1_loss, EBT._system2_loss).

EBT layout. The sequence is processed as two streams that share all trunk weights:

    observed stream   x_0 .. x_{S-1}  real tokens, causal among themselves, never sees a candidate
    prediction stream c_1 .. c_S      c_{i+1} is the candidate for token i+1; it sits at rotary
                                      position i+1 and attends to observed 0..i and to itself only

Because the step embedding is added to the prediction stream only, the observed stream
depends on neither the candidate nor the step. Its per-layer keys/values are computed once
per trajectory and reused by every optimisation step (and, at generation time, by every
later token: that is the EBT's KV cache). Written as one mask over the 2S concatenated
positions this is the leakage-free mask of ebt.md; we never materialise the 2S x 2S
matrix because the prediction-stream rows only need S observed keys plus one self key.

Batched runs. Every weight has a leading run dimension R (RunLinear, RunEmbedding, RMSNorm,
the EBT's candidate table, step embedding and alpha), and a batch holds R blocks of rows,
block r belonging to run r. Nothing mixes rows across blocks, so R runs of one shape train as
one computation and each keeps exactly the gradients it would get alone (models/train.py
trains the seeds of a grid point, or the points of a tuning sweep, this way). Matmuls become
one bmm over runs, which at these widths is what keeps a CPU busy: one small model per
process spends most of its time dispatching ops, not multiplying. A single model is R = 1.
Randomness comes from RunRNG, one generator per run, for the same reason.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from functools import lru_cache

import numpy as np

import torch
import torch.nn as nn
import torch.nn.functional as F

from .architectures import EBT_FAMILY, EBT_VARIANTS, SYSTEM1, SYSTEM2, TPP_FAMILY


# ----------------------------------------------------------------------------- configs
# A field that config.yaml sets (its model and ebt sections, or tuning.search) has no default
# here: config.yaml is the one place a setting's default is written, and a caller that left
# one out would otherwise train with a second, silently different value.


@dataclass
class ModelConfig:
    vocab_size: int
    depth: int
    width: int
    heads: int
    mlp_ratio: float  # SwiGLU hidden = mlp_ratio * width, rounded up to a multiple of 8 (config model.mlp_ratio)
    max_seq_len: int = 64  # rotary table size: the longest sequence either model ever sees

    @property
    def mlp_hidden(self) -> int:
        return 8 * math.ceil(self.mlp_ratio * self.width / 8)


@dataclass
class EBTConfig:
    """How an EBT thinks and learns. System 1 and System 2 follow the official scripts
    (alexiglad/EBT job_scripts/nlp/pretrain/ebt_s1.sh and ebt_s2.sh); see shared/reference/ebt.md.

    alpha is the step size of z <- softmax(z) - alpha * dE/dp. It sets how far one step can
    move the logits, so it must be fitted to the vocabulary, not copied: the tuning stage
    sweeps it. System 1 learns it (lr = lr * alpha_lr_multiplier); System 2 keeps it fixed.
    """

    variant: str  # one of architectures.EBT_VARIANTS: the architecture's, never configured
    steps: int  # System 1: steps per token in training, one landscape each
    alpha: float  # from the architecture's tuning setting (tuning.search.<arch>.alpha)
    alpha_lr_multiplier: float  # System 1 only; the official scripts use 3 * alpha
    init_std: float  # z_0 ~ N(0, init_std^2) over the vocabulary
    candidate_init_std: float  # std of the candidate table W at initialisation
    random_steps: tuple[int, int]  # System 2: step count drawn uniformly from [min, max]
    langevin_sigma: float  # System 2: std of the noise added to z before each step
    replay_fraction: float  # System 2: share of each batch replayed from the buffer
    replay_size: int  # System 2: rows kept in the replay buffer

    def __post_init__(self):
        if self.variant not in EBT_VARIANTS:
            raise ValueError(f"EBT variant must be one of {', '.join(EBT_VARIANTS)}, got {self.variant!r}")
        self.random_steps = tuple(self.random_steps)

    @property
    def landscapes(self) -> int:
        return self.steps if self.variant == SYSTEM1 else 1

    @property
    def max_train_steps(self) -> int:
        return self.random_steps[1] if self.variant == SYSTEM2 else self.steps

    @property
    def uses_replay(self) -> bool:
        return self.variant == SYSTEM2 and self.replay_fraction > 0


# ----------------------------------------------------------------------------- run-batched layers


def per_run(x: torch.Tensor, n_runs: int) -> torch.Tensor:
    """[R * b, ..., d] -> [R, b * ..., d]: each run's rows as one block."""
    return x.reshape(n_runs, -1, x.size(-1))


def per_row(values: torch.Tensor, rows: int) -> torch.Tensor:
    """A per-run value [R] repeated for each of the run's rows: [rows, 1, 1]."""
    return values.repeat_interleave(rows // values.numel()).view(rows, 1, 1)


class RunLinear(nn.Module):
    """nn.Linear without bias, one weight [out, in] per run: weight [R, out, in]."""

    def __init__(self, n_runs: int, in_features: int, out_features: int):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(n_runs, out_features, in_features))

    def forward(self, x):
        y = torch.bmm(per_run(x, self.weight.size(0)), self.weight.mT)
        return y.view(*x.shape[:-1], -1)


class RunEmbedding(nn.Module):
    """nn.Embedding with one table per run: weight [R, V, d]; row block r looks up table r."""

    def __init__(self, n_runs: int, num_embeddings: int, dim: int):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(n_runs, num_embeddings, dim))

    def forward(self, idx):
        R, V, d = self.weight.shape
        offset = torch.arange(R, device=idx.device).repeat_interleave(idx.size(0) // R) * V
        return F.embedding(idx + offset.view(-1, *[1] * (idx.dim() - 1)), self.weight.view(R * V, d))


class RunRNG:
    """One torch.Generator per run. A run's draws come from its own stream, so they are the
    same whichever runs share its batch (tests/test_training.py trains a run alone and in a
    batch and compares)."""

    def __init__(self, seeds: list[int], device="cpu"):
        self.generators = [torch.Generator(device=device).manual_seed(int(s)) for s in seeds]

    def _cat(self, draw) -> torch.Tensor:
        return torch.cat([draw(g) for g in self.generators])

    def randn(self, *shape, device="cpu") -> torch.Tensor:
        """[R * shape[0], *shape[1:]]: each run draws its own block."""
        return self._cat(lambda g: torch.randn(shape, generator=g, device=device))

    def uniform(self, *shape, low: float, high: float, device="cpu") -> torch.Tensor:
        return self._cat(lambda g: torch.empty(shape, device=device).uniform_(low, high, generator=g))

    def get_state(self) -> list[torch.Tensor]:
        return [g.get_state() for g in self.generators]

    def set_state(self, states) -> None:
        for g, s in zip(self.generators, states):
            g.set_state(s)


# ----------------------------------------------------------------------------- trunk


def rotary_table(head_dim: int, max_len: int, base: float = 10000.0):
    """Full-width tables [max_len, head_dim]: cos repeated, and sin with the sign of the
    rotation folded in (-sin for the first half), so a rotation is two multiplies of whole
    vectors (apply_rotary) rather than four of strided halves."""
    inv_freq = 1.0 / base ** (torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim)
    angles = torch.outer(torch.arange(max_len, dtype=torch.float32), inv_freq)
    return torch.cat([angles.cos(), angles.cos()], -1), torch.cat([-angles.sin(), angles.sin()], -1)


def apply_rotary(x, cos, sin):
    # x [..., head_dim], cos/sin broadcasting to it. GPT-NeoX "rotate half" layout:
    # (x1, x2) -> (x1 cos - x2 sin, x2 cos + x1 sin).
    x1, x2 = x.chunk(2, dim=-1)
    return (x * cos + torch.cat([x2, x1], dim=-1) * sin).type_as(x)


class RMSNorm(nn.Module):
    def __init__(self, n_runs: int, dim: int, eps: float = 1e-6):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(n_runs, dim))

    def forward(self, x):
        # F.rms_norm is composite, so it supports the double backward the EBT needs.
        y = per_run(F.rms_norm(x, (x.size(-1),), None, self.eps), self.weight.size(0)) * self.weight[:, None]
        return y.view(x.shape)


class KVCache:
    """Per-layer keys/values for positions [0, length), preallocated to avoid re-copying."""

    def __init__(self, n_layers, batch, heads, max_len, head_dim, device, dtype):
        shape = (n_layers, batch, heads, max_len, head_dim)
        self.k = torch.zeros(shape, device=device, dtype=dtype)
        self.v = torch.zeros(shape, device=device, dtype=dtype)
        self.length = 0

    def layer(self, i):
        return self.k[i, :, :, : self.length], self.v[i, :, :, : self.length]


class Attention(nn.Module):
    def __init__(self, cfg: ModelConfig, n_runs: int):
        super().__init__()
        self.heads = cfg.heads
        self.head_dim = cfg.width // cfg.heads
        self.qkv = RunLinear(n_runs, cfg.width, 3 * cfg.width)
        self.proj = RunLinear(n_runs, cfg.width, cfg.width)

    def _qkv(self, x, cos, sin):
        """Rotated q, k and v, each [B, H, T, hd]; cos/sin [T, hd]. q and k are rotated in one
        pass, before the heads are moved forward, while their layout is still contiguous."""
        B, T, _ = x.shape
        qkv = self.qkv(x).view(B, T, 3, self.heads, self.head_dim)
        q, k = apply_rotary(qkv[:, :, :2], cos[:, None, None], sin[:, None, None]).permute(2, 0, 3, 1, 4)
        return q, k, qkv[:, :, 2].transpose(1, 2)

    def _qkv_unrotated(self, x):
        B, T, _ = x.shape
        return self.qkv(x).view(B, T, 3, self.heads, self.head_dim).permute(2, 0, 3, 1, 4)

    def _merge(self, y):
        B, H, T, hd = y.shape
        return self.proj(y.transpose(1, 2).reshape(B, T, H * hd))

    def forward(self, x, cos, sin, cache: KVCache | None = None, layer: int = 0):
        """Causal self-attention over real tokens. Returns (output, (k, v)).

        Without a cache the whole sequence is processed with the fused causal kernel (first
        order only: nothing ever differentiates through this path twice). With a cache the
        new tokens are written at cache.length and attend to everything before them.
        """
        q, k, v = self._qkv(x, cos, sin)
        if cache is None:
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
            return self._merge(y), (k, v)
        t0, T = cache.length, x.size(1)
        cache.k[layer, :, :, t0 : t0 + T] = k
        cache.v[layer, :, :, t0 : t0 + T] = v
        k_all, v_all = cache.k[layer, :, :, : t0 + T], cache.v[layer, :, :, : t0 + T]
        mask = None
        if T > 1:  # new token j (absolute t0+j) may see keys 0..t0+j
            mask = torch.arange(t0 + T, device=x.device) <= torch.arange(t0, t0 + T, device=x.device)[:, None]
        y = F.scaled_dot_product_attention(q, k_all, v_all, attn_mask=mask)
        return self._merge(y), (k, v)

    def forward_prediction(self, x, cos, sin, k_obs, v_obs, obs_mask):
        """Prediction-stream attention: each query sees the observed keys allowed by obs_mask
        ([Q, T] bool, None = all) plus its own key, and no other candidate.

        Written out by hand (not SDPA) because EBT training differentiates through it twice.
        The self key sits at the query's own rotary position, and rotating both vectors by
        the same angle leaves their dot product unchanged, so the self score skips the
        rotation: the same scores, with a third less rotary work in the EBT's hottest path.
        """
        q, k, v = self._qkv_unrotated(x)
        scale = 1.0 / math.sqrt(self.head_dim)
        s_self = (q * k).sum(-1, keepdim=True) * scale  # [B, H, Q, 1]
        s_obs = (apply_rotary(q, cos, sin) @ k_obs.transpose(-2, -1)) * scale  # [B, H, Q, T]
        if obs_mask is not None:
            s_obs = s_obs.masked_fill(~obs_mask, float("-inf"))
        w = torch.softmax(torch.cat([s_obs, s_self], dim=-1), dim=-1)
        y = w[..., :-1] @ v_obs + w[..., -1:] * v
        return self._merge(y)


class MLP(nn.Module):
    def __init__(self, cfg: ModelConfig, n_runs: int):
        super().__init__()
        self.gate_up = RunLinear(n_runs, cfg.width, 2 * cfg.mlp_hidden)
        self.down = RunLinear(n_runs, cfg.mlp_hidden, cfg.width)

    def forward(self, x):
        gate, up = self.gate_up(x).chunk(2, dim=-1)
        return self.down(F.silu(gate) * up)


class Block(nn.Module):
    def __init__(self, cfg: ModelConfig, n_runs: int):
        super().__init__()
        self.attn_norm = RMSNorm(n_runs, cfg.width)
        self.attn = Attention(cfg, n_runs)
        self.mlp_norm = RMSNorm(n_runs, cfg.width)
        self.mlp = MLP(cfg, n_runs)

    def forward(self, x, cos, sin, cache=None, layer=0):
        a, kv = self.attn(self.attn_norm(x), cos, sin, cache, layer)
        x = x + a
        return x + self.mlp(self.mlp_norm(x)), kv

    def forward_prediction(self, x, cos, sin, k_obs, v_obs, obs_mask):
        x = x + self.attn.forward_prediction(self.attn_norm(x), cos, sin, k_obs, v_obs, obs_mask)
        return x + self.mlp(self.mlp_norm(x))


class Trunk(nn.Module):
    """The shared stack of blocks, the final norm and the rotary tables."""

    def __init__(self, cfg: ModelConfig, n_runs: int):
        super().__init__()
        self.cfg = cfg
        self.blocks = nn.ModuleList(Block(cfg, n_runs) for _ in range(cfg.depth))
        self.norm = RMSNorm(n_runs, cfg.width)
        cos, sin = rotary_table(cfg.width // cfg.heads, cfg.max_seq_len)
        self.register_buffer("cos", cos, persistent=False)
        self.register_buffer("sin", sin, persistent=False)

    def new_cache(self, batch, max_len, device, dtype=torch.float32) -> KVCache:
        c = self.cfg
        return KVCache(c.depth, batch, c.heads, max_len, c.width // c.heads, device, dtype)


def _init_weights(module: nn.Module):
    for m in module.modules():
        if isinstance(m, (RunLinear, RunEmbedding)):
            nn.init.normal_(m.weight, std=0.02)
    # Scale the residual-branch outputs down with depth (GPT-2), so the stream starts near identity.
    for name, p in module.named_parameters():
        if name.endswith("attn.proj.weight") or name.endswith("mlp.down.weight"):
            nn.init.normal_(p, std=0.02 / math.sqrt(2 * module.cfg.depth))


def masked_cross_entropy(logits, targets, mask, n_runs: int = 1):
    """Mean cross entropy over the masked positions of each run's rows: [R]."""
    ce = F.cross_entropy(logits.float().flatten(0, 1), targets.flatten(), reduction="none").view(n_runs, -1)
    mask = mask.reshape(n_runs, -1).to(ce.dtype)
    return (ce * mask).sum(1) / mask.sum(1).clamp(min=1)


# ----------------------------------------------------------------------------- Transformer++


class TransformerPP(nn.Module):
    replay = None  # only a System-2 EBT replays earlier rows (models/checkpoint.py saves them)

    def __init__(self, cfg: ModelConfig, n_runs: int = 1):
        super().__init__()
        self.cfg, self.n_runs = cfg, n_runs
        self.tok_emb = RunEmbedding(n_runs, cfg.vocab_size, cfg.width)
        self.trunk = Trunk(cfg, n_runs)
        self.head = RunLinear(n_runs, cfg.width, cfg.vocab_size)
        _init_weights(self)

    def forward(self, idx, cache: KVCache | None = None):
        """Logits [B, T, V] for the next token at every position of idx.

        With a cache, idx holds only the new tokens, placed at positions cache.length onward.
        """
        t0 = 0 if cache is None else cache.length
        T = idx.size(1)
        cos, sin = self.trunk.cos[t0 : t0 + T], self.trunk.sin[t0 : t0 + T]
        x = self.tok_emb(idx)
        for i, block in enumerate(self.trunk.blocks):
            x, _ = block(x, cos, sin, cache, i)
        if cache is not None:
            cache.length += T
        return self.head(self.trunk.norm(x))

    def training_loss(self, batch, rng: RunRNG | None = None, thinking_steps=None) -> torch.Tensor:
        """Each run's loss, [R]. The Transformer++ draws nothing and does not think."""
        return masked_cross_entropy(self(batch.idx), batch.targets, batch.mask, self.n_runs)

    def validation_loss(self, batch, rng: RunRNG | None = None) -> torch.Tensor:
        return self.training_loss(batch)

    def thinking_steps_at(self, step: int) -> None:
        return None

    def thinking_step_counts(self) -> list[None]:
        return [None]

    def param_counts(self) -> dict:
        """Kaplan convention, per run: 'params' excludes the input embedding and the output head."""
        total = sum(p.numel() for p in self.parameters()) // self.n_runs
        emb = (self.tok_emb.weight.numel() + self.head.weight.numel()) // self.n_runs
        return {"params": total - emb, "params_with_embeddings": total}

    def optimizer_groups(self, weight_decay: float) -> list[dict]:
        return _optimizer_groups(self, weight_decay, alpha_lr_multiplier=1.0)


# ----------------------------------------------------------------------------- EBT


class ReplayBuffer:
    """System-2 replay (official `model/replay_buffer.py`, in our words): a FIFO of earlier
    training rows, each stored with its own inputs, targets, loss mask and the final logits
    z_K the model reached on it. A replayed row continues thinking *on its own context*
    from where the model left it, so the landscape learns to keep improving a prediction it
    has already made, which is what thinking longer at inference asks of it.

    The official code appends the replayed rows to the batch. We let them take the place of
    the last rows of the batch instead, so every training step costs the same FLOPs and the
    budget-to-steps plan stays exact; the replay share is the same.
    """

    def __init__(self, size: int, fraction: float):
        self.size, self.fraction = size, fraction
        self.rows: list[dict] = []

    def replay_into(self, batch_rows: int, generator: torch.Generator) -> list[dict]:
        """Stored rows for the last round(fraction * batch_rows) rows of the next batch
        (none until the buffer holds that many), drawn with the run's own generator."""
        n = int(round(self.fraction * batch_rows))
        if n == 0 or len(self.rows) < n:
            return []
        return [self.rows[i] for i in torch.randperm(len(self.rows), generator=generator)[:n].tolist()]

    def push(self, idx, targets, mask, z_final):
        # One copy per tensor, not per row, and only of the rows the buffer will keep.
        keep = [t.detach()[-self.size:].cpu() for t in (idx, targets, mask, z_final)]
        for row in zip(*keep):
            self.rows.append(dict(zip(("idx", "targets", "mask", "z"), row)))
        del self.rows[: max(0, len(self.rows) - self.size)]


class EBT(nn.Module):
    """Energy-Based Transformer, System 1 or System 2 (see EBTConfig and shared/reference/ebt.md).

    One loss signature with TransformerPP: training_loss(batch) -> (loss, thinking steps
    used), validation_loss(batch, generator) -> loss.
    """

    def __init__(self, cfg: ModelConfig, ebt_cfg: EBTConfig, n_runs: int = 1):
        super().__init__()
        self.cfg, self.ebt_cfg, self.n_runs = cfg, ebt_cfg, n_runs
        self.tok_emb = RunEmbedding(n_runs, cfg.vocab_size, cfg.width)
        self.trunk = Trunk(cfg, n_runs)
        self.cand_emb = nn.Parameter(torch.empty(n_runs, cfg.vocab_size, cfg.width))  # W in e = softmax(z) @ W
        # One landscape per System-1 step index (the official time embedding); System 2 has one.
        # Zero at init: a step signal must not swamp the candidate's p @ W, which is small
        # while p is near uniform (ebt.md, "Step conditioning scale").
        self.step_emb = nn.Parameter(torch.zeros(n_runs, ebt_cfg.landscapes, cfg.width))
        self.energy_head = RunLinear(n_runs, cfg.width, 1)
        _init_weights(self)
        nn.init.normal_(self.cand_emb, std=ebt_cfg.candidate_init_std)
        # The prediction is z = p - alpha * dE/dp, so the logit scale is alpha * |dE/dp|. A
        # zero energy head makes dE/dp = 0 at the start (the first loss is ln|V|, a uniform
        # guess) while alpha can be large enough for confident logits once the head grows.
        nn.init.zeros_(self.energy_head.weight)
        alpha = torch.full((n_runs,), float(ebt_cfg.alpha))
        if ebt_cfg.variant == SYSTEM1:  # learnable, with its own learning rate (optimizer_groups)
            self.alpha = nn.Parameter(alpha)
        else:  # fixed, randomised per token during training
            self.register_buffer("alpha", alpha)
        self.replay = ([ReplayBuffer(ebt_cfg.replay_size, ebt_cfg.replay_fraction) for _ in range(n_runs)]
                       if ebt_cfg.uses_replay else None)  # one buffer per run

    # -- the two streams

    def observed_kv(self, idx, cache: KVCache | None = None):
        """Per-layer (k, v) of the observed stream. It never depends on a candidate, so one
        call serves every optimisation step. With a cache, idx holds only the new tokens and
        the cache is extended; the return value is then the whole cached prefix.
        """
        t0 = 0 if cache is None else cache.length
        T = idx.size(1)
        cos, sin = self.trunk.cos[t0 : t0 + T], self.trunk.sin[t0 : t0 + T]
        x = self.tok_emb(idx)
        kvs = []
        last = len(self.trunk.blocks) - 1
        for i, block in enumerate(self.trunk.blocks):
            if i < last:
                x, kv = block(x, cos, sin, cache, i)
            else:
                # The energy is read from the prediction stream only, so the last layer's
                # observed output feeds nothing: stop after its keys and values.
                _, k, v = block.attn._qkv(block.attn_norm(x), cos, sin)
                if cache is not None:
                    cache.k[i, :, :, t0 : t0 + T], cache.v[i, :, :, t0 : t0 + T] = k, v
                kv = (k, v)
            kvs.append(kv)
        if cache is not None:
            cache.length += T
            kvs = [cache.layer(i) for i in range(len(kvs))]
        return kvs

    def energy(self, p, obs_kv, positions, obs_mask, landscape: int):
        """Energy [B, Q] of candidate distributions p [B, Q, V] on one landscape.

        positions: rotary positions, [Q] shared by every row, or [B, Q] per row.
        obs_mask: which observed keys each query sees, [Q, T] (or None: all) with shared
        positions, [B, Q, T] with per-row positions.
        """
        R = self.n_runs
        h = (torch.bmm(per_run(p, R), self.cand_emb) + self.step_emb[:, landscape, None]).view(*p.shape[:-1], -1)
        cos, sin = self.trunk.cos[positions], self.trunk.sin[positions]
        if positions.dim() == 2:  # per-row positions [B, Q]: broadcast over heads
            cos, sin = cos[:, None], sin[:, None]
            obs_mask = obs_mask[:, None]
        for block, (k_obs, v_obs) in zip(self.trunk.blocks, obs_kv):
            h = block.forward_prediction(h, cos, sin, k_obs, v_obs, obs_mask)
        return self.energy_head(self.trunk.norm(h)).squeeze(-1).float()

    def descend(self, z, obs_kv, positions, obs_mask, landscape: int, alpha, create_graph: bool):
        """One optimisation step: returns (z_next, energy of z).

        The gradient is taken with respect to p = softmax(z), not z, and the step is
        z_next = p - alpha * dE/dp. Through the softmax Jacobian, dE/dz_v is scaled by
        p_v (about 1/|vocab| at the start), which stalls learning; stepping in p-space
        avoids that damping, as the official EBT code does.
        """
        p = torch.softmax(z, dim=-1)
        e = self.energy(p, obs_kv, positions, obs_mask, landscape)
        (grad,) = torch.autograd.grad(e.sum(), p, create_graph=create_graph)
        return p - alpha * grad, e

    def landscape_schedule(self, n_steps: int) -> list[int]:
        """Landscape of each step. System 1 gives step k landscape k and puts steps beyond
        its training count on its last landscape; System 2 takes every step on its one
        landscape. This is the official `infer_steps_final_landscape` schedule, so thinking
        longer adds steps on the final landscape."""
        return [min(k, self.ebt_cfg.landscapes - 1) for k in range(n_steps)]

    @property
    def inference_steps(self) -> int:
        """Steps at validation and default decoding: the training count (System 1) or the
        largest random count (System 2), as the official code validates."""
        return self.ebt_cfg.max_train_steps

    # -- training

    def thinking_steps_at(self, step: int) -> int:
        """Thinking steps of training step `step`. System 2 draws the count uniformly from
        random_steps, as the official code does, but from a stream keyed by the step alone:
        runs that share a batch must take the same number of steps, and a run's count must not
        depend on its batch-mates, so every run sees the same sequence of counts."""
        if self.ebt_cfg.variant == SYSTEM1:
            return self.ebt_cfg.steps
        lo, hi = self.ebt_cfg.random_steps
        return int(_step_count_block(lo, hi, step // 4096)[step % 4096])

    def thinking_step_counts(self) -> list[int]:
        """Every step count a training step can draw (the budget planner measures each)."""
        c = self.ebt_cfg
        return list(range(c.random_steps[0], c.random_steps[1] + 1)) if c.variant == SYSTEM2 else [c.steps]

    @staticmethod
    def _loss_queries(z0, targets, mask, n_queries: int | None):
        """Keep only the prediction-stream queries the loss needs.

        The observed stream already carries the context, so a candidate at a position
        without loss (prompt tokens, padding) does no useful work, and the prediction stream
        is most of an EBT step's cost. Each row's loss positions are moved to the front and
        the rows cut to n_queries (None: all S positions), a fixed number so that every
        step costs the same FLOPs. Candidates never see each other, so the loss and its
        gradients are exactly those of the full layout (tests/test_models.py checks it).
        Returns z0, rotary positions [B, Q], observed mask [B, Q, S], targets and mask [B, Q].
        """
        B, S = mask.shape
        Q = S if n_queries is None else n_queries
        most = int(mask.sum(1).max())
        if most > Q:
            raise ValueError(f"a row has {most} loss positions > n_queries={Q}")
        order = torch.sort((~mask).to(torch.int8), dim=1, stable=True).indices[:, :Q]  # loss positions first
        # Query for target i sits at rotary position i + 1 and sees observed tokens 0..i.
        obs_mask = torch.arange(S, device=mask.device) <= order[..., None]
        z0 = z0.gather(1, order[..., None].expand(-1, -1, z0.size(-1)))
        return z0, order + 1, obs_mask, targets.gather(1, order), mask.gather(1, order)

    def training_loss(self, batch, rng: RunRNG, thinking_steps: int | None = None) -> torch.Tensor:
        """Each run's cross entropy of softmax(z) against the next token through the thinking
        steps, [R]. System 2 takes thinking_steps (thinking_steps_at(step)); its default, the
        largest count, is for callers that do not train. Every draw comes from rng, one
        generator per run, which the trainer checkpoints."""
        if self.ebt_cfg.variant == SYSTEM1:
            return self._system1_loss(batch, rng)
        return self._system2_loss(batch, rng, thinking_steps or self.ebt_cfg.random_steps[1])

    def _z0(self, idx, rng: RunRNG):
        """Initial logits, each run's block drawn from its own generator."""
        rows, S = idx.shape
        return rng.randn(rows // self.n_runs, S, self.cfg.vocab_size, device=idx.device) * self.ebt_cfg.init_std

    def _system1_loss(self, batch, rng: RunRNG):
        """Official System 1: z is detached before each step and every step keeps its graph
        (create_graph), so each step's loss trains one step of descent on its own landscape;
        losses are averaged over steps. Learnable alpha, no noise, no replay."""
        obs_kv = self.observed_kv(batch.idx)  # once per trajectory, reused by every step below
        z0 = self._z0(batch.idx, rng)
        z, positions, obs_mask, targets, mask = self._loss_queries(z0, batch.targets, batch.mask, batch.n_queries)
        alpha = per_row(self.alpha, len(z))
        losses = []
        for landscape in self.landscape_schedule(self.ebt_cfg.steps):
            z = z.detach().requires_grad_(True)
            z, _ = self.descend(z, obs_kv, positions, obs_mask, landscape, alpha, create_graph=True)
            losses.append(masked_cross_entropy(z, targets, mask, self.n_runs))
        return torch.stack(losses).mean(0)

    def _system2_loss(self, batch, rng: RunRNG, n_steps: int):
        """Official System 2 (ebt_s2.sh): n_steps drawn from random_steps, all on one
        landscape; alpha fixed and randomised per token in [alpha/2, 2 alpha]; Langevin noise
        on z before each step; truncated backpropagation (only the final step keeps a
        gradient graph, and only its loss counts); part of the batch replays stored rows
        with their own context and final logits."""
        c, R = self.ebt_cfg, self.n_runs
        z0 = self._z0(batch.idx, rng)
        idx, targets, mask, z_replayed = self._with_replayed_rows(batch, rng)
        obs_kv = self.observed_kv(idx)
        z, positions, obs_mask, targets_q, mask_q = self._loss_queries(z0, targets, mask, batch.n_queries)
        if z_replayed is not None:  # replayed rows start from their own stored final logits
            own = z.view(R, -1, *z.shape[1:])[:, -max(len(s) for s in z_replayed if s is not None):]
            z = _replace_last_rows(z, torch.cat([own[r] if s is None else s for r, s in enumerate(z_replayed)]), R)
        rows, Q = targets_q.shape
        alpha = per_row(self.alpha, rows) * rng.uniform(rows // R, Q, 1, low=0.5, high=2.0, device=idx.device)
        for k in range(n_steps):
            final = k == n_steps - 1
            if c.langevin_sigma > 0:
                z = z + c.langevin_sigma * rng.randn(rows // R, *z.shape[1:], device=z.device)
            z = z.detach().requires_grad_(True)  # earlier steps feed the final one as constants
            z, _ = self.descend(z, obs_kv, positions, obs_mask, 0, alpha, create_graph=final)
        if self.replay is not None:
            for buffer, *row_block in zip(self.replay, *(t.view(R, -1, *t.shape[1:]) for t in (idx, targets, mask, z))):
                buffer.push(*row_block)
        return masked_cross_entropy(z, targets_q, mask_q, R)

    def _with_replayed_rows(self, batch, rng: RunRNG):
        """The batch with the last rows of each run's block replaced by rows replayed from that
        run's buffer: (idx, targets, mask, each run's stored z in the query layout or None,
        or None when nothing is replayed). Buffers of runs that step together fill at the same
        pace, so they replay the same number of rows. A run whose buffer cannot replay yet
        while others' can (it restarted beside resumed batch-mates, or diverged before its
        buffer filled) keeps its fresh rows, as it would alone."""
        if self.replay is None:
            return batch.idx, batch.targets, batch.mask, None
        rows_per_run = len(batch.idx) // self.n_runs
        replayed = [buffer.replay_into(rows_per_run, g) for buffer, g in zip(self.replay, rng.generators)]
        n = max(map(len, replayed))
        if n == 0:
            return batch.idx, batch.targets, batch.mask, None
        device, out = batch.idx.device, []
        for fresh, key in ((batch.idx, "idx"), (batch.targets, "targets"), (batch.mask, "mask")):
            own = fresh.view(self.n_runs, -1, *fresh.shape[1:])[:, -n:]
            last = [torch.stack([row[key] for row in run]).to(device) if run else own[r] for r, run in enumerate(replayed)]
            out.append(_replace_last_rows(fresh, torch.cat(last), self.n_runs))
        return (*out, [torch.stack([row["z"] for row in run]).to(device) if run else None for run in replayed])

    @torch.no_grad()
    def validation_loss(self, batch, rng: RunRNG) -> torch.Tensor:
        """Each run's loss of softmax(z_K) after inference_steps, with no noise and the base
        alpha, [R]; z_0 comes from `rng`, separate generators from training's, so evaluation
        never disturbs the training streams."""
        obs_kv = self.observed_kv(batch.idx)
        z0, positions, obs_mask, targets, mask = self._loss_queries(self._z0(batch.idx, rng), batch.targets,
                                                                    batch.mask, batch.n_queries)
        z = self.think(z0, obs_kv, positions, obs_mask, self.inference_steps)[0]
        return masked_cross_entropy(z, targets, mask, self.n_runs)

    # -- inference

    def think(self, z, obs_kv, positions, obs_mask, n_steps: int, sigma: float = 0.0, generator=None):
        """Gradient descent on z as in training (Langevin noise, if any, before each step), with
        no graph kept. Returns (z_K, energies): energies [K+1, B, Q] holds the energy each
        step started from, then the energy of z_K on the last step's landscape.

        obs_kv is the per-layer (k, v) list, or a function returning it that is called at
        every step: the uncached baseline that recomputes the observed stream each time.
        """
        energies = []
        alpha = per_row(self.alpha.detach(), len(z))
        schedule = self.landscape_schedule(max(n_steps, 1))
        for landscape in schedule[:n_steps]:
            if sigma > 0:
                z = z + sigma * torch.randn(z.shape, generator=generator, device=z.device)
            kv = obs_kv() if callable(obs_kv) else obs_kv
            with torch.enable_grad():
                z, e = self.descend(z.detach().requires_grad_(True), kv, positions, obs_mask, landscape, alpha,
                                    create_graph=False)
            energies.append(e.detach())
        kv = obs_kv() if callable(obs_kv) else obs_kv
        last = self.energy(torch.softmax(z, dim=-1), kv, positions, obs_mask, schedule[-1])
        energies.append(last.detach())
        return z.detach(), torch.stack(energies)

    def param_counts(self) -> dict:
        """Kaplan convention, per run: 'params' excludes the token embedding and the candidate table W."""
        total = sum(p.numel() for p in self.parameters()) // self.n_runs
        emb = (self.tok_emb.weight.numel() + self.cand_emb.numel()) // self.n_runs
        return {"params": total - emb, "params_with_embeddings": total}

    def optimizer_groups(self, weight_decay: float) -> list[dict]:
        return _optimizer_groups(self, weight_decay, self.ebt_cfg.alpha_lr_multiplier)


@lru_cache(maxsize=8)
def _step_count_block(lo: int, hi: int, block: int) -> np.ndarray:
    """System 2's thinking-step counts of training steps 4096 * block onward."""
    return np.random.default_rng([0x5EB7, block]).integers(lo, hi + 1, size=4096)


def _replace_last_rows(t: torch.Tensor, last: torch.Tensor, n_runs: int) -> torch.Tensor:
    """t [R * b, ...] with the last rows of each run's block replaced by that run's rows of
    `last` [R * n, ...]."""
    blocks, new = t.view(n_runs, -1, *t.shape[1:]), last.view(n_runs, -1, *last.shape[1:])
    return torch.cat([blocks[:, : blocks.size(1) - new.size(1)], new], dim=1).flatten(0, 1)


def _optimizer_groups(model: nn.Module, weight_decay: float, alpha_lr_multiplier: float) -> list[dict]:
    """AdamW groups, as nanoGPT's configure_optimizers: weight decay on matrices and
    embeddings only, never on norms, and a System-1 EBT's learnable step size alpha with its
    own learning rate (lr * alpha_lr_multiplier). A parameter's first dimension is the run,
    so a per-run matrix has three dimensions. "lr_scale" is ours: the trainer sets each
    group's learning rate to its schedule's value times lr_scale."""
    decay, no_decay, alpha = [], [], []
    for name, p in model.named_parameters():
        if name == "alpha":
            alpha.append(p)
        elif p.dim() >= 3:
            decay.append(p)
        else:
            no_decay.append(p)
    groups = [{"params": decay, "weight_decay": weight_decay, "lr_scale": 1.0},
              {"params": no_decay, "weight_decay": 0.0, "lr_scale": 1.0}]
    if alpha:
        groups.append({"params": alpha, "weight_decay": 0.0, "lr_scale": alpha_lr_multiplier})
    return groups


# ----------------------------------------------------------------------------- build / load


def build_model(family: str, cfg: ModelConfig, ebt_cfg: EBTConfig | None = None, n_runs: int = 1) -> nn.Module:
    """A model of a family (models.architectures): the Transformer++, or an EBT that trains as ebt_cfg says."""
    if family == TPP_FAMILY:
        return TransformerPP(cfg, n_runs)
    if family == EBT_FAMILY:
        if ebt_cfg is None:
            raise ValueError("an EBT needs its EBTConfig (models.experiment.ebt_config builds one from the config)")
        return EBT(cfg, ebt_cfg, n_runs)
    raise ValueError(f"model family must be {TPP_FAMILY!r} or {EBT_FAMILY!r}, got {family!r}")


def stack_runs(models: list[nn.Module]) -> nn.Module:
    """One R-run model holding the weights (and replay buffers) of R single-run models of one
    shape. Each run is initialised alone, under its own seed, so its start does not depend
    on its batch-mates; their EBT configs may differ only in alpha (a per-run tensor)."""
    first = models[0]
    ebt_cfg = getattr(first, "ebt_cfg", None)
    stacked = build_model(EBT_FAMILY if ebt_cfg else TPP_FAMILY, first.cfg, ebt_cfg, n_runs=len(models))
    stacked.to(next(first.parameters()).device)
    stacked.load_state_dict({k: torch.cat([m.state_dict()[k] for m in models]) for k in first.state_dict()})
    if stacked.replay is not None:
        stacked.replay = [m.replay[0] for m in models]
    return stacked


def run_state_dict(model: nn.Module, r: int) -> dict:
    """Run r's weights as a single-run (R = 1) state dict."""
    return {k: v[r : r + 1].detach().cpu() for k, v in model.state_dict().items()}


def model_payload(model: nn.Module, r: int = 0, alpha: float | None = None) -> dict:
    """What run r's model.pt holds: enough to rebuild it as a single-run model without any
    other file. alpha: the run's configured step size, where runs of a batch differ in it."""
    is_ebt = isinstance(model, EBT)
    ebt_cfg = asdict(model.ebt_cfg) if is_ebt else None
    if ebt_cfg and alpha is not None:
        ebt_cfg["alpha"] = alpha
    return {
        "arch": EBT_FAMILY if is_ebt else TPP_FAMILY,
        "model_cfg": asdict(model.cfg),
        "ebt_cfg": ebt_cfg,
        "state_dict": run_state_dict(model, r),
    }


def load_model(path, device="cpu") -> nn.Module:
    payload = torch.load(path, map_location="cpu", weights_only=True)
    ebt_cfg = EBTConfig(**payload["ebt_cfg"]) if payload["ebt_cfg"] else None
    model = build_model(payload["arch"], ModelConfig(**payload["model_cfg"]), ebt_cfg)
    model.load_state_dict(payload["state_dict"])
    return model.to(device).eval()
