"""FLOP accounting for one training step, measured and analytic.

Three numbers per step (forward + backward, optimizer excluded), with D = B*S token
positions processed (padding included: that compute is really spent):

* flops_measured: torch.utils.flop_counter.FlopCounterMode on a real step. It counts
  matmul-like ops only (mm/bmm/addmm/SDPA); norms, rotary, softmax, SwiGLU gating and the
  softmax Jacobian are free to it, and to the analytic counts below.
* flops_6nd: Kaplan's 6*N*D with N the non-embedding parameters (model.param_counts()).
  For the EBT this badly under-counts: it ignores the extra passes of thinking.
* flops_analytic: the full count. Per token, with P = 4d^2 + 3*d*h matmul parameters per
  layer (attention q,k,v,o and the SwiGLU gate/up/down), L layers, S positions, V vocab:
    Transformer++: 3 * [ 2LP + 2dV (output head) + 2LSd (Kaplan's causal attention term) ]
    EBT, observed stream once: 3 * [ 2(L-1)P + 2(L-1)Sd + 4d^2 (last layer: k, v only) ]
    EBT, per thinking step:    6 * [ 2dV (candidate embedding) + 2LP + 2LSd + 2d (energy head) ]
                               per prediction query; the EBT queries only the Q positions
                               of each row that carry loss (model.EBT._loss_queries)
  The 6 per step is: prediction-stream forward (1), backward to z with create_graph (1:
  activation gradients only), and the outer backward through both of those graphs (2 + 2).

How far analytic is from measured, and why (checked in tests/test_training.py, which
asserts |analytic / measured - 1| < 0.10 on its shapes): the only systematic gap is the
attention term. Kaplan's 2*L*S*d is the causal half of QK^T and AV; the kernels compute the
dense S x S product (4LSd forward), and the fused SDPA backward also recomputes the scores
(2.5x its forward, where the analytic count assumes 2x). So measured exceeds analytic by
about 8LSd per Transformer++ token and 12LSd per EBT token per step, i.e. by roughly
S / (3d) of the trunk cost: a few percent at d >= 128, S <= 64, and below 10% at d = 64,
S = 32. The analytic count is the "useful work" view; the measured one is what ran.
"""

from __future__ import annotations

import torch
import torch.nn as nn
from torch.utils.flop_counter import FlopCounterMode, sdpa_backward_flop_count, sdpa_flop_count

from .model import EBT

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


def measure_step_flops(model: nn.Module, idx, targets, mask, n_steps: int | None = None,
                       n_queries: int | None = None) -> int:
    """FLOPs of one real training step (loss forward + backward, no optimizer).

    Runs under a forked RNG and clears the gradients afterwards, so it leaves the training
    run exactly as it found it (resume equivalence depends on that).
    """
    if isinstance(model, EBT) and n_steps is None:
        n_steps = model.ebt_cfg.steps
    devices = [idx.device] if idx.device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices), FlopCounterMode(display=False, custom_mapping=_CUSTOM) as counter:
        if isinstance(model, EBT):
            loss = model.loss(idx, targets, mask, n_steps, n_queries=n_queries)
        else:
            loss = model.loss(idx, targets, mask)
        loss.backward()
    model.zero_grad(set_to_none=True)
    return int(counter.get_total_flops())


def analytic_flops(model: nn.Module, batch_size: int, seq_len: int, n_steps: int | None = None,
                   n_queries: int | None = None) -> dict:
    """flops_6nd and flops_analytic (see the module docstring) for one step of B x S positions;
    an EBT runs its prediction stream on n_queries positions per row (None: all S)."""
    cfg = model.cfg
    d, L, V, S, h = cfg.width, cfg.depth, cfg.vocab_size, seq_len, cfg.mlp_hidden
    tokens = batch_size * seq_len
    P = 4 * d * d + 3 * d * h
    attn = 2 * S * d  # Kaplan: 2 * n_ctx * d per layer per forward token
    if isinstance(model, EBT):
        K = model.ebt_cfg.steps if n_steps is None else n_steps
        Q = seq_len if n_queries is None else n_queries
        observed = 3 * (2 * (L - 1) * P + (L - 1) * attn + 4 * d * d)
        per_query_step = 6 * (2 * d * V + 2 * L * P + L * attn + 2 * d)
        total = observed * tokens + K * per_query_step * batch_size * Q
    else:
        total = 3 * (2 * L * P + 2 * d * V + L * attn) * tokens
    return {"flops_6nd": 6 * model.param_counts()["params"] * tokens, "flops_analytic": total}


def step_flops(model: nn.Module, idx, targets, mask, n_steps: int | None = None, n_queries: int | None = None) -> dict:
    """All three counts for one training step on this batch."""
    out = analytic_flops(model, idx.size(0), idx.size(1), n_steps, n_queries)
    out["flops_measured"] = measure_step_flops(model, idx, targets, mask, n_steps, n_queries)
    return out
