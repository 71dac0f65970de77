"""AdamW over a batch of runs whose parameters are stacked (dimension 0 is the run).

torch.optim.AdamW takes one learning rate per parameter group, but the runs of a tuning
batch differ in learning rate, each run clips its own gradient norm, and a diverged or
resumed-ahead run must sit still while its batch-mates step. So the update is written out
here, once per stacked tensor, with every per-run quantity (learning rate, step count,
clip coefficient) a vector over runs. It is the same update as torch.optim.AdamW
(decoupled weight decay, bias-corrected moments); tests/test_training.py checks one run
against torch's. Not importing torch.optim also keeps torch._dynamo, which its
constructor loads (about 1.3 s a process), out of every training job.
"""
from __future__ import annotations

import torch


def _per_run(values: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """[R] -> [R, 1, ..., 1] broadcasting against a stacked tensor."""
    return values.view(-1, *[1] * (like.dim() - 1))


class RunAdamW:
    def __init__(self, groups: list[dict], n_runs: int, betas=(0.9, 0.999), eps: float = 1e-8):
        """groups: the model's optimizer_groups (params, weight_decay, lr_scale)."""
        self.groups, self.betas, self.eps = groups, tuple(betas), eps
        self.params = [p for g in groups for p in g["params"]]
        device = self.params[0].device
        self.exp_avg = [torch.zeros_like(p) for p in self.params]
        self.exp_avg_sq = [torch.zeros_like(p) for p in self.params]
        self.steps = torch.zeros(n_runs, device=device)  # each run's count of updates taken

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    @torch.no_grad()
    def clip_grad_norm_(self, max_norm: float) -> torch.Tensor:
        """Scale each run's gradient to norm <= max_norm, as clip_grad_norm_ would for that run
        alone; returns the per-run norms before clipping."""
        grads = [p.grad for p in self.params if p.grad is not None]
        norms = torch.stack([g.reshape(len(g), -1).pow(2).sum(1) for g in grads]).sum(0).sqrt()
        coef = (max_norm / (norms + 1e-6)).clamp(max=1.0)
        for g in grads:
            g.mul_(_per_run(coef, g))
        return norms

    @torch.no_grad()
    def step(self, lr: torch.Tensor, active: torch.Tensor) -> None:
        """One AdamW update at per-run learning rate lr [R]; runs where active [R] is False
        keep their parameters and moments exactly."""
        frozen = ~active
        if frozen.any():
            saved = [(t, t[frozen].clone()) for t in (*self.params, *self.exp_avg, *self.exp_avg_sq)]
        self.steps += active.to(self.steps.dtype)
        beta1, beta2 = self.betas
        t = self.steps.clamp(min=1)
        bias1, bias2_sqrt = 1 - beta1**t, (1 - beta2**t).sqrt()
        i = 0
        for group in self.groups:
            run_lr = lr * group["lr_scale"]
            for p in group["params"]:
                m, v = self.exp_avg[i], self.exp_avg_sq[i]
                i += 1
                if p.grad is None:
                    continue
                if group["weight_decay"]:
                    p.mul_(_per_run(1 - run_lr * group["weight_decay"], p))
                m.lerp_(p.grad, 1 - beta1)
                v.mul_(beta2).addcmul_(p.grad, p.grad, value=1 - beta2)
                denom = (v.sqrt() / _per_run(bias2_sqrt, v)).add_(self.eps)
                p.sub_(_per_run(run_lr / bias1, p) * m / denom)
        if frozen.any():
            for tensor, values in saved:
                tensor[frozen] = values

    def run_state(self, r: int) -> dict:
        """Run r's moments and step count, for its checkpoint."""
        return {"exp_avg": [m[r].clone() for m in self.exp_avg], "exp_avg_sq": [v[r].clone() for v in self.exp_avg_sq],
                "step": float(self.steps[r])}

    def load_run_state(self, r: int, state: dict) -> None:
        for m, saved in zip(self.exp_avg, state["exp_avg"]):
            m[r] = saved
        for v, saved in zip(self.exp_avg_sq, state["exp_avg_sq"]):
            v[r] = saved
        self.steps[r] = state["step"]
