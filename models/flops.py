"""FLOP accounting, measured and analytic: one training step, and one answer at inference.

Training: three numbers per step (forward + backward, optimizer excluded), with D = B*S
token positions processed (padding included: that compute is really spent):

* flops_measured: torch.utils.flop_counter.FlopCounterMode on a real step. It counts
  matmul-like ops only (mm/bmm/addmm/SDPA); norms, rotary, softmax, SwiGLU gating and the
  softmax Jacobian are free to it, and to the analytic counts below.
* flops_6nd: Kaplan's 6*N*D with N the non-embedding parameters (model.param_counts()).
  For the EBT this badly under-counts: it ignores the extra passes of thinking.
* flops_analytic: the full count. Per token, with P = 4d^2 + 3*d*h matmul parameters per
  layer (attention q,k,v,o and the SwiGLU gate/up/down), L layers, S positions, V vocab, and
  F = 2dV (candidate embedding) + 2LP + 2LSd + 2d (energy head), the forward of one query:
    Transformer++: 3 * [ 2LP + 2dV (output head) + 2LSd (Kaplan's causal attention term) ]
    EBT, observed stream once: 3 * [ 2(L-1)P + 2(L-1)Sd + 4d^2 (last layer: k, v only) ]
    EBT, a step with a graph:  6F per prediction query: the forward (1), the backward to p
                               with create_graph (1), and the outer backward through both (4)
    EBT, a step without one:   2F: forward and backward to p only (System 2's truncated
                               steps before the final one)
  The EBT queries only the Q positions of each row that carry loss (EBT._loss_queries).

How far analytic is from measured, and why (tests/test_training.py asserts
|analytic / measured - 1| < 0.10 on its shapes): the only systematic gap is the attention
term. Kaplan's 2*L*S*d is the causal half of QK^T and AV; the kernels compute the dense
S x S product (4LSd forward), and the fused SDPA backward also recomputes the scores. So
measured exceeds analytic by a few percent at d >= 128, S <= 64, and below 10% at d = 64.

Inference (inference_flops): what it costs to produce one answer, prompt prefill included,
for the tokens that answer generated (its EOS included). One decode step at context c
(c cached keys) costs
    Transformer++: 2LP + 2dV + 4Lcd (attention over c keys is dense: QK^T and AV)
    EBT: the new token's observed stream, 2(L-1)P + 4(L-1)cd + 4d^2, plus per candidate
         (2K + 1) * F(c): K steps of forward + backward to p, and the final energy,
         with F(c) = 2dV + 2LP + 4L(c+1)d + 2d.
Sampling k answers costs k answers; best-of-k and the reward tilt charge each kept answer
the whole pool of k it was chosen from. measure_decode_step_flops counts one real decode
step with FlopCounterMode, to check these formulas (tests/test_generation.py).
"""

from __future__ import annotations

import copy

import torch
import torch.nn as nn
from torch.utils.flop_counter import FlopCounterMode, sdpa_backward_flop_count, sdpa_flop_count

from .architectures import SYSTEM1
from .model import EBT, RunRNG

aten = torch.ops.aten


# The CPU flash-attention kernels are missing from FlopCounterMode's registry (they count 0),
# so register them with the same formulas it uses for the CUDA kernels.
def _sdpa_cpu_fwd(query, key, value, *args, out_shape=None, **kwargs):
    return sdpa_flop_count(query, key, value)


def _sdpa_cpu_bwd(grad_out, query, key, value, *args, out_shape=None, **kwargs):
    return sdpa_backward_flop_count(grad_out, query, key, value)


_CUSTOM = {
    aten._scaled_dot_product_flash_attention_for_cpu: _sdpa_cpu_fwd,
    aten._scaled_dot_product_flash_attention_for_cpu_backward: _sdpa_cpu_bwd,
}


def measure_step_flops(model: nn.Module, batch, thinking_steps: int | None = None) -> int:
    """FLOPs of one real training step (loss forward + backward, no optimizer) with the
    given thinking step count. It runs on a copy of the model under a forked RNG, so the
    training run (weights, gradients, replay buffer, RNG) is left exactly as it was."""
    model = copy.deepcopy(model)
    devices = [batch.idx.device] if batch.idx.device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices), FlopCounterMode(display=False, custom_mapping=_CUSTOM) as counter:
        model.training_loss(batch, RunRNG([0] * model.n_runs, batch.idx.device), thinking_steps).sum().backward()
    return int(counter.get_total_flops())


def _layer_params(cfg) -> int:
    return 4 * cfg.width * cfg.width + 3 * cfg.width * cfg.mlp_hidden


def _query_forward(cfg, n_keys: int, attention_per_key: int) -> int:
    """Forward FLOPs of one EBT prediction-stream query that attends to n_keys keys."""
    d, L, V = cfg.width, cfg.depth, cfg.vocab_size
    return 2 * d * V + 2 * L * _layer_params(cfg) + attention_per_key * L * n_keys * d + 2 * d


def analytic_flops(model: nn.Module, batch_size: int, seq_len: int, thinking_steps: int | None = None,
                   n_queries: int | None = None) -> dict:
    """flops_6nd and flops_analytic (see the module docstring) for one step of B x S positions;
    an EBT runs its prediction stream on n_queries positions per row (None: all S)."""
    cfg = model.cfg
    d, L, V, S = cfg.width, cfg.depth, cfg.vocab_size, seq_len
    tokens = batch_size * seq_len
    P = _layer_params(cfg)
    attn = 2 * S * d  # Kaplan: 2 * n_ctx * d per layer per forward token
    if isinstance(model, EBT):
        c = model.ebt_cfg
        K = thinking_steps or c.max_train_steps
        Q = seq_len if n_queries is None else n_queries
        graph_steps = K if c.variant == SYSTEM1 else 1  # System 2 truncates to the final step
        per_query = (6 * graph_steps + 2 * (K - graph_steps)) * _query_forward(cfg, S, 2)
        observed = 3 * (2 * (L - 1) * P + (L - 1) * attn + 4 * d * d)
        total = observed * tokens + per_query * batch_size * Q
    else:
        total = 3 * (2 * L * P + 2 * d * V + L * attn) * tokens
    return {"flops_6nd": 6 * model.param_counts()["params"] * tokens, "flops_analytic": total}


# ----------------------------------------------------------------------------- inference


def decode_step_flops(model: nn.Module, context: int, thinking_steps: int = 0, candidates: int = 1) -> int:
    """Analytic FLOPs of one decode step with `context` cached keys (the new token included
    for the Transformer++; the tokens before the predicted one for the EBT)."""
    cfg = model.cfg
    d, L, V, P = cfg.width, cfg.depth, cfg.vocab_size, _layer_params(cfg)
    if not isinstance(model, EBT):
        return 2 * L * P + 2 * d * V + 4 * L * context * d
    observed = 2 * (L - 1) * P + 4 * (L - 1) * context * d + 4 * d * d
    return observed + candidates * (2 * thinking_steps + 1) * _query_forward(cfg, context + 1, 4)


def prefill_flops(model: nn.Module, prompt_len: int) -> int:
    """Analytic FLOPs of running the prompt through the model once (dense causal attention)."""
    cfg = model.cfg
    d, L, V, P = cfg.width, cfg.depth, cfg.vocab_size, _layer_params(cfg)
    if not isinstance(model, EBT):
        return prompt_len * (2 * L * P + 2 * d * V) + 4 * L * prompt_len * prompt_len * d
    return prompt_len * (2 * (L - 1) * P + 4 * d * d) + 4 * (L - 1) * prompt_len * prompt_len * d


def answer_flops(model: nn.Module, prompt_len: int, generated: int, thinking_steps: int = 0,
                 candidates: int = 1) -> int:
    """Analytic inference FLOPs of one answer of `generated` tokens (EOS included)."""
    if isinstance(model, EBT):
        # Token t is predicted at context prompt_len + t; each decode step also feeds the
        # newest observed token (the prompt's last one for t = 0) through the cache.
        steps = [decode_step_flops(model, prompt_len + t, thinking_steps, candidates) for t in range(generated)]
        return prefill_flops(model, prompt_len - 1) + sum(steps)
    # The prefill's logits give token 0; each later token is fed back through the cache.
    steps = [decode_step_flops(model, prompt_len + t) for t in range(1, generated)]
    return prefill_flops(model, prompt_len) + sum(steps)


@torch.no_grad()
def measure_decode_step_flops(model: nn.Module, prompt: list[int], thinking_steps: int = 0,
                              candidates: int = 1) -> int:
    """FlopCounterMode FLOPs of one real cached decode step after `prompt` (the step that
    produces the prompt's second generated token for the Transformer++, its first for the
    EBT), to check decode_step_flops at context len(prompt) (EBT) or len(prompt) + 1."""
    device = next(model.parameters()).device
    idx = torch.tensor([prompt], device=device)
    cache = model.trunk.new_cache(1, len(prompt) + 1, device)
    counter = FlopCounterMode(display=False, custom_mapping=_CUSTOM)
    if isinstance(model, EBT):
        obs = model.observed_kv(idx[:, :-1], cache)
        with counter:
            obs = model.observed_kv(idx[:, -1:], cache)
            z0 = torch.zeros(1, candidates, model.cfg.vocab_size, device=device)
            positions = torch.full((candidates,), len(prompt), device=device)
            model.think(z0, obs, positions, None, thinking_steps)
    else:
        model(idx, cache)
        with counter:
            model(idx[:, -1:], cache)
    return int(counter.get_total_flops())
