"""Batched decoding for Transformer++ and EBT.

Prompts (token ids ending with SEP) are grouped by length, so a group stacks without
padding; each group is cut into batches of at most batch_size rows (num_samples rows per
prompt). Every row stops at EOS or after max_new_tokens (and never past max_seq_len).
A single torch.Generator seeded from `seed` drives all randomness, so a call is repeatable.

Both decoders take use_cache: with it, keys/values of the real tokens are computed once
and extended one token at a time; without it, the whole sequence is recomputed for every
new token (Transformer++) or for every thinking step of every token (EBT, as the official
EBT code does). The two paths give the same tokens (tests/test_generation.py checks it).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from functools import partial

import torch
import torch.nn.functional as F

from .model import EBT, TransformerPP


@dataclass
class Sample:
    tokens: list[int]  # generated ids, EOS excluded
    logprobs: list[float]  # model log-probability of each generated token (temperature 1)
    logprob_sum: float  # sum of logprobs, plus the EOS's log-probability when finished
    finished: bool  # stopped at EOS (rather than at the length limit)
    energies: list[float] | None = None  # EBT: final energy of each decoded token, EOS included
    energy_trace: list[float] | None = None  # EBT: energy at steps 0..K, mean over decoded tokens


def _batches(prompts, num_samples, batch_size):
    """Yield (prompt index per row, [b, P] tensor) for rows grouped by prompt length."""
    by_len = defaultdict(list)
    for i, p in enumerate(prompts):
        by_len[len(p)].extend([i] * num_samples)
    for length in sorted(by_len):
        rows = by_len[length]
        for s in range(0, len(rows), batch_size):
            chunk = rows[s : s + batch_size]
            yield chunk, torch.tensor([prompts[i] for i in chunk], dtype=torch.long)


def _decoding_batches(model, prompts, num_samples, batch_size, max_new_tokens, eos_id, use_cache):
    """Per batch: (rows, prompt ids on the model's device, number of new tokens to decode,
    a fresh _Recorder, and a KV cache sized for prompt + new tokens, or None)."""
    device = next(model.parameters()).device
    for rows, idx in _batches(prompts, num_samples, batch_size):
        idx = idx.to(device)
        b, P = idx.shape
        n_new = min(max_new_tokens, model.cfg.max_seq_len - P)
        cache = model.trunk.new_cache(b, P + n_new, device) if use_cache else None
        yield rows, idx, n_new, _Recorder(b, eos_id), cache


def _pick(logits, temperature, generator):
    if temperature == 0:
        return logits.argmax(-1)
    probs = torch.softmax(logits.float() / temperature, dim=-1)
    return torch.multinomial(probs, 1, generator=generator).squeeze(-1)


class _Recorder:
    """Collects per-row tokens until EOS."""

    def __init__(self, b, eos_id):
        self.eos_id = eos_id
        self.tokens = [[] for _ in range(b)]
        self.logprobs = [[] for _ in range(b)]
        self.extra = [[] for _ in range(b)]  # EBT: (final energy, trace) per token
        self.eos_logprob = [None] * b

    def add(self, tok, logp, extra=None):
        for r, (t, lp) in enumerate(zip(tok.tolist(), logp.tolist())):
            if self.eos_logprob[r] is not None:
                continue
            if extra is not None:
                self.extra[r].append((extra[0][r].item(), extra[1][:, r].tolist()))
            if t == self.eos_id:
                self.eos_logprob[r] = lp
                continue
            self.tokens[r].append(t)
            self.logprobs[r].append(lp)

    def all_done(self):
        return all(e is not None for e in self.eos_logprob)

    def samples(self):
        out = []
        for r in range(len(self.tokens)):
            finished = self.eos_logprob[r] is not None
            s = Sample(self.tokens[r], self.logprobs[r], sum(self.logprobs[r]) + (self.eos_logprob[r] or 0.0), finished)
            if self.extra[r]:
                s.energies = [e for e, _ in self.extra[r]]
                s.energy_trace = torch.tensor([t for _, t in self.extra[r]]).mean(0).tolist()
            out.append(s)
        return out


@torch.no_grad()
def generate_tpp(
    model: TransformerPP,
    prompts: list[list[int]],
    *,
    max_new_tokens: int,
    eos_id: int,
    temperature: float = 0.0,  # 0 = greedy
    num_samples: int = 1,
    seed: int = 0,
    use_cache: bool = True,
    batch_size: int = 1024,
) -> list[list[Sample]]:
    """num_samples samples per prompt, in prompt order."""
    model.eval()
    device = next(model.parameters()).device
    gen = torch.Generator(device=device).manual_seed(seed)
    results = [[] for _ in prompts]
    for rows, idx, n_new, rec, cache in _decoding_batches(model, prompts, num_samples, batch_size, max_new_tokens,
                                                          eos_id, use_cache):
        logits = model(idx, cache)[:, -1]
        for t in range(n_new):
            tok = _pick(logits, temperature, gen)
            logp = F.log_softmax(logits.float(), dim=-1).gather(-1, tok[:, None]).squeeze(-1)
            rec.add(tok, logp)
            if rec.all_done() or t == n_new - 1:
                break
            idx = torch.cat([idx, tok[:, None]], dim=1)
            logits = (model(tok[:, None], cache) if use_cache else model(idx))[:, -1]
        for r, s in zip(rows, rec.samples()):
            results[r].append(s)
    return results


def best_of_k(samples: list[Sample]) -> Sample:
    """Re-rank one prompt's samples by the model's total log-likelihood (highest wins)."""
    return max(samples, key=lambda s: s.logprob_sum)


@torch.no_grad()
def generate_ebt(
    model: EBT,
    prompts: list[list[int]],
    *,
    max_new_tokens: int,
    eos_id: int,
    steps: int | None = None,  # thinking steps per token; None = model.inference_steps
    num_candidates: int = 1,  # self-verification: M initialisations, keep the lowest final energy
    langevin_sigma: float = 0.0,
    temperature: float = 0.0,  # 0 = argmax of softmax(z_K); else sample softmax(z_K / temperature)
    num_samples: int = 1,
    seed: int = 0,
    use_cache: bool = True,
    batch_size: int = 1024,
) -> list[list[Sample]]:
    """num_samples samples per prompt, in prompt order, with per-token energies.

    The M candidates of a row are M prediction-stream queries at the same rotary position
    sharing the row's observed keys/values, so self-verification costs no extra observed
    computation.
    """
    model.eval()
    device = next(model.parameters()).device
    gen = torch.Generator(device=device).manual_seed(seed)
    K = steps or model.inference_steps
    M, V = num_candidates, model.cfg.vocab_size
    results = [[] for _ in prompts]
    for rows, idx, n_new, rec, cache in _decoding_batches(model, prompts, num_samples, batch_size, max_new_tokens,
                                                          eos_id, use_cache):
        b, P = idx.shape
        obs = model.observed_kv(idx, cache) if use_cache else None
        arange = torch.arange(b, device=device)
        for t in range(n_new):
            if not use_cache:  # the baseline: the whole prefix from scratch at every step
                obs = partial(model.observed_kv, idx)
            positions = torch.full((M,), P + t, device=device)
            z0 = torch.randn(b, M, V, generator=gen, device=device) * model.ebt_cfg.init_std
            z, energies = model.think(z0, obs, positions, None, K, langevin_sigma, gen)  # [K+1, b, M]
            best = energies[-1].argmin(-1)
            z = z[arange, best]
            trace = energies[:, arange, best]  # [K+1, b]
            tok = _pick(z, temperature, gen)
            logp = F.log_softmax(z.float(), dim=-1).gather(-1, tok[:, None]).squeeze(-1)
            rec.add(tok, logp, (trace[-1], trace))
            if rec.all_done() or t == n_new - 1:
                break
            idx = torch.cat([idx, tok[:, None]], dim=1)
            if use_cache:
                obs = model.observed_kv(tok[:, None], cache)
        for r, s in zip(rows, rec.samples()):
            results[r].append(s)
    return results
