"""Decoding settings: how each trained model answers the test prompts.

Transformer++: greedy; temperature sampling with k samples; best-of-k by the
model's own log-likelihood; and the reward tilt, which keeps one of the k
samples drawn with probability ∝ exp(U·N/β). The tilt is the optimum of
KL-regularised RL written as an energy-based model, i.e. the supervised
counterpart of the EBT's unsupervised energy verifier.

EBT: thinking for a multiple of the training step count, self-verification
(best of M candidates per token by final energy), and Langevin noise as the
analogue of temperature.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from .architectures import EBT_FAMILY, TPP_FAMILY

NAN = float("nan")


@dataclass(frozen=True)
class DecodingSetting:
    name: str
    family: str  # greedy | sample | best_of_k_ll | reward_tilt | think | verify | langevin
    num_samples: int = 1  # rows per prompt in the samples table
    temperature: float = NAN
    beta: float = NAN
    steps_multiplier: float = NAN
    num_candidates: float = NAN
    noise_sigma: float = NAN


def decoding_settings(family: str, cfg: dict) -> list[DecodingSetting]:
    """The settings of one model family, from the `decoding` config section (its
    decoding.<family> part)."""
    k = cfg["num_samples"]
    if family == TPP_FAMILY:
        c = cfg[TPP_FAMILY]
        out = [DecodingSetting("greedy", "greedy", temperature=0.0)]
        out += [DecodingSetting(f"temp{t:g}_k{k}", "sample", k, temperature=t) for t in c["temperatures"]]
        t = c["tilt_temperature"]
        out.append(DecodingSetting(f"bestofk_ll_k{k}", "best_of_k_ll", temperature=t))
        out += [DecodingSetting(f"tilt_beta{b:g}_k{k}", "reward_tilt", temperature=t, beta=b) for b in c["tilt_betas"]]
        return out
    c = cfg[EBT_FAMILY]
    out = [DecodingSetting(f"think_x{m:g}", "think", steps_multiplier=m) for m in c["steps_multipliers"]]
    out += [DecodingSetting(f"verify_m{m}", "verify", steps_multiplier=1.0, num_candidates=m) for m in c["verify_candidates"]]
    out += [
        DecodingSetting(f"langevin_s{s:g}_k{k}", "langevin", k, steps_multiplier=1.0, noise_sigma=s)
        for s in c["langevin_sigmas"]
    ]
    return out


def settings_table(settings: list[DecodingSetting]) -> pd.DataFrame:
    return pd.DataFrame([asdict(s) for s in settings]).rename(columns={"name": "decoding", "family": "decoding_family"})


def reward_tilt_choice(reward: np.ndarray, beta: float, rng: np.random.Generator) -> np.ndarray:
    """For each row of a (prompts, k) reward matrix, draw one column with p ∝ exp(reward/β)."""
    logits = reward / beta
    logits = logits - logits.max(axis=1, keepdims=True)
    p = np.exp(logits)
    p /= p.sum(axis=1, keepdims=True)
    u = rng.random((len(p), 1))
    return np.minimum((p.cumsum(axis=1) < u).sum(axis=1), p.shape[1] - 1)
