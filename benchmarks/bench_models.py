"""Speed of the models/ package on this machine.

    cpu_matmul_gflops           fp32 2048x2048 matmul, best of several (the "peak")
    tpp_train_mfu               Transformer++ training step (fwd + bwd + AdamW): measured FLOP/s / peak
    ebt_step_cost_ratio         wall time of an EBT (System 1, 2 steps) training step / Transformer++ step
    ebt_step_flop_ratio         the same ratio in measured FLOPs (goal: cost ratio <= 1.2 x this)
    tpp_generate_speedup_kv     tokens/s with the KV cache / without (batch 256, 10-token prompt, 20 new)
    ebt_generate_speedup_cache  the same for the EBT's cached observed stream

Run: python benchmarks/bench_models.py
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from models.data import Batch  # noqa: E402
from models.flops import measure_step_flops  # noqa: E402
from models.generate import generate_ebt, generate_tpp  # noqa: E402
from models.model import EBT, ModelConfig, RunRNG, TransformerPP  # noqa: E402
from models.optim import RunAdamW  # noqa: E402
from pipeline.grid import planning_ebt_config  # noqa: E402
from pipeline.presets import load_config  # noqa: E402

CONFIG = load_config()  # config.yaml: the model and EBT settings the pipeline trains with
SHAPE = ModelConfig(vocab_size=512, depth=4, width=256, heads=4, max_seq_len=64, **CONFIG["model"])
BATCH, SEQ = 32, 63


def _best_time(fn, repeats):
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def cpu_matmul_gflops(n=2048, repeats=5):
    a, b = torch.randn(n, n), torch.randn(n, n)
    return 2 * n**3 / _best_time(lambda: a @ b, repeats) / 1e9


def _train_step_fn(model, batch):
    opt = RunAdamW(model.optimizer_groups(weight_decay=0.01), n_runs=1)
    rng, lr, active = RunRNG([0]), torch.tensor([1e-3]), torch.tensor([True])

    def step():
        model.training_loss(batch, rng).sum().backward()
        opt.step(lr, active)
        opt.zero_grad()

    return step


def run() -> dict:
    torch.manual_seed(0)
    peak = cpu_matmul_gflops()
    idx = torch.randint(0, SHAPE.vocab_size, (BATCH, SEQ))
    batch = Batch(idx, idx.roll(-1, 1), torch.ones(BATCH, SEQ, dtype=torch.bool))

    tpp, ebt = TransformerPP(SHAPE), EBT(SHAPE, planning_ebt_config("ebt_system1", CONFIG))
    flops_tpp = measure_step_flops(tpp, batch)
    flops_ebt = measure_step_flops(ebt, batch)
    t_tpp = _best_time(_train_step_fn(tpp, batch), 5)
    t_ebt = _best_time(_train_step_fn(ebt, batch), 3)

    prompts = torch.randint(3, SHAPE.vocab_size, (256, 10)).tolist()
    gen_kw = dict(max_new_tokens=20, eos_id=-1)

    def tok_per_s(fn, **kw):
        t = _best_time(lambda: fn(prompts=prompts, **gen_kw, **kw), 1)
        return 256 * 20 / t

    tpp_kv = tok_per_s(lambda **k: generate_tpp(tpp, **k), use_cache=True)
    tpp_nokv = tok_per_s(lambda **k: generate_tpp(tpp, **k), use_cache=False)
    ebt_kv = tok_per_s(lambda **k: generate_ebt(ebt, **k), use_cache=True)
    ebt_nokv = tok_per_s(lambda **k: generate_ebt(ebt, **k), use_cache=False)

    return {
        "torch_threads": torch.get_num_threads(),
        "shape": f"depth {SHAPE.depth} width {SHAPE.width} vocab {SHAPE.vocab_size}, batch {BATCH} x {SEQ}",
        "cpu_matmul_gflops": round(peak, 1),
        "tpp_train_step_s": round(t_tpp, 4),
        "tpp_train_gflops": round(flops_tpp / t_tpp / 1e9, 1),
        "tpp_train_mfu": round(flops_tpp / t_tpp / 1e9 / peak, 3),
        "ebt_train_step_s": round(t_ebt, 4),
        "ebt_train_mfu": round(flops_ebt / t_ebt / 1e9 / peak, 3),
        "ebt_step_cost_ratio": round(t_ebt / t_tpp, 2),
        "ebt_step_flop_ratio": round(flops_ebt / flops_tpp, 2),
        "tpp_generate_tok_s_kv": round(tpp_kv),
        "tpp_generate_tok_s_no_kv": round(tpp_nokv),
        "tpp_generate_speedup_kv": round(tpp_kv / tpp_nokv, 2),
        "ebt_generate_tok_s_cache": round(ebt_kv),
        "ebt_generate_tok_s_no_cache": round(ebt_nokv),
        "ebt_generate_speedup_cache": round(ebt_kv / ebt_nokv, 2),
    }


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
