"""One grid point of the experiment: train it, then sample its answers.

This is the glue between the task tables (strings) and the models (token ids);
the workflow scripts call these two functions and nothing else.
"""
from __future__ import annotations

import json
import logging

import numpy as np
import pandas as pd
import torch

from creativity.corpus import encode_corpus
from creativity.evaluate import score_samples
from creativity.scoring import Scorer
from creativity.tokenizer import Tokenizer, prompt_tokens

from .architectures import ARCHITECTURES, EBT_FAMILY, TPP_FAMILY
from .decoding import DecodingSetting, decoding_settings, reward_tilt_choice
from .flops import answer_flops, decode_step_flops, measure_decode_step_flops
from .generate import best_of_k, generate_ebt, generate_tpp
from .model import EBT, EBTConfig, ModelConfig, load_model
from .tuning import apply_setting
from .train import GRID_PLANNING_KEYS, TrainConfig, batch_shared, resolve_device, train_batch

def ebt_config(arch: str, ebt_cfg: dict) -> EBTConfig | None:
    """The EBTConfig of architecture `arch` (a config name) from the ebt config section; None
    for the Transformer++."""
    entry = ARCHITECTURES[arch]
    return EBTConfig(variant=entry.variant, **ebt_cfg) if entry.is_ebt else None


def train_runs(runs: list[dict], settings: list[dict], corpus: pd.DataFrame, tokenizer: Tokenizer, max_seq_len: int,
               model_cfg: dict, train_cfg: dict, ebt_cfg: dict, device: str, threads: int,
               run_dirs: list) -> list[tuple[dict, pd.DataFrame]]:
    """Train runs of one architecture, shape and budget as batches (models.train.train_batch),
    each with a tuning setting's values put into its train and ebt config sections; returns
    each run's row of the runs table and its training curve, in the order given. Runs whose
    settings differ in what a batch must share train as separate batches, one after another."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    family = ARCHITECTURES[runs[0]["arch"]].family
    sequences, target_starts = encode_corpus(corpus, tokenizer)
    val_indices = np.flatnonzero(corpus["validation"].to_numpy()).tolist()
    model = ModelConfig(vocab_size=tokenizer.vocab_size, max_seq_len=max_seq_len, **runs[0]["shape"], **model_cfg)
    configs = [_run_configs(run, setting, train_cfg, ebt_cfg, device, threads) for run, setting in zip(runs, settings)]
    batches: dict[str, list[int]] = {}
    for i, (train, ebt) in enumerate(configs):
        batches.setdefault(json.dumps(batch_shared(train, ebt), sort_keys=True), []).append(i)
    results = [None] * len(runs)
    for members in batches.values():
        summaries = train_batch(model, family, [configs[i][1] for i in members], [configs[i][0] for i in members],
                                [run_dirs[i] for i in members], sequences, target_starts, tokenizer.pad_id,
                                runs[members[0]]["budget"], val_indices)
        for i, result in zip(members, summaries):
            curve = result.pop("curve")
            run, setting = runs[i], settings[i]
            summary = {"run_id": run["run_id"], **run["shape"], "budget": run["budget"], "seed": run["seed"],
                       "setting": json.dumps(setting, sort_keys=True), **result}
            results[i] = summary, curve.assign(run_id=run["run_id"], arch=summary["arch"], variant=summary["variant"])
    return results


def _run_configs(run: dict, setting: dict, train_cfg: dict, ebt_cfg: dict, device: str,
                 threads: int) -> tuple[TrainConfig, EBTConfig | None]:
    train, ebt = apply_setting(setting, train_cfg, ebt_cfg)
    train = {k: v for k, v in train.items() if k not in GRID_PLANNING_KEYS}
    train = TrainConfig(**{**train, "betas": tuple(train["betas"])}, seed=run["seed"], device=device,
                        num_threads=threads, eval_max_batches=None)
    return train, ebt_config(run["arch"], ebt)


SAMPLE_COLUMNS = ["run_id", "decoding", "prompt_id", "sample_index", "walk", "mean_logprob", "mean_energy",
                  "energy_by_step", "generated_tokens", "inference_flops", "inference_flops_per_token",
                  "decode_step_flops_analytic", "decode_step_flops_measured"]


def _generated(sample) -> int:
    return len(sample.tokens) + int(sample.finished)  # the EOS was computed too


def _rows(run_id, decoding, prompt_ids, samples_per_prompt, tokenizer, flops_per_prompt, step_check) -> list[dict]:
    """One row per sample; flops_per_prompt[i][j] is what sample j of prompt i cost."""
    rows = []
    for prompt_id, samples, flops in zip(prompt_ids, samples_per_prompt, flops_per_prompt):
        for i, (s, f) in enumerate(zip(samples, flops)):
            rows.append({
                "run_id": run_id,
                "decoding": decoding,
                "prompt_id": int(prompt_id),
                "sample_index": i,
                "walk": tokenizer.decode(s.tokens),
                "mean_logprob": float(np.mean(s.logprobs)) if s.logprobs else float("nan"),
                "mean_energy": float(np.mean(s.energies)) if s.energies else float("nan"),
                "energy_by_step": list(s.energy_trace or []),
                "generated_tokens": _generated(s),
                "inference_flops": float(f),
                "inference_flops_per_token": float(f) / max(_generated(s), 1),
                **step_check,
            })
    return rows


def sample_run(run: dict, status: str, model_path, prompts: pd.DataFrame, tokenizer: Tokenizer, decoding_cfg: dict,
               scorer: Scorer | None, max_new_tokens: int, device: str, threads: int,
               measured: dict | None = None) -> pd.DataFrame:
    """Answer every test and out-of-distribution prompt under each decoding setting of the
    run's architecture, recording what each answer cost in inference FLOPs.

    A diverged run has no usable weights: it gets no samples, and shows up in the
    runs table with its status rather than as a row of zeros.

    measured: decode-step FLOPs already measured, by setting cost; runs of one shape share
    it, so a batch's sampling job measures each cost once (FlopCounterMode is slow to load).
    """
    if status != "ok":
        return pd.DataFrame(columns=SAMPLE_COLUMNS)
    torch.set_num_threads(threads)
    family = ARCHITECTURES[run["arch"]].family
    model = load_model(model_path, device=resolve_device(device))
    test = prompts[prompts["split"] != "train"].reset_index(drop=True)
    ids = [
        tokenizer.encode(prompt_tokens(r.start, r.end, r.include, r.exclude)) for r in test.itertuples(index=False)
    ]
    common = dict(max_new_tokens=max_new_tokens, eos_id=tokenizer.eos_id)
    rows, pools = [], {}
    measured = {} if measured is None else measured
    for i, setting in enumerate(decoding_settings(family, decoding_cfg)):
        seed = run["seed"] * 1000 + i
        cost = answer_cost(model, setting)
        if family == EBT_FAMILY:
            out = generate_ebt(model, ids, steps=cost["thinking_steps"], num_candidates=cost["candidates"],
                               langevin_sigma=float(np.nan_to_num(setting.noise_sigma)), num_samples=setting.num_samples,
                               seed=seed, **common)
            flops = _answer_flops(model, ids, out, cost)
        elif setting.family in ("greedy", "sample"):
            out = generate_tpp(model, ids, temperature=setting.temperature, num_samples=setting.num_samples,
                               seed=seed, **common)
            flops = _answer_flops(model, ids, out, cost)
            pools[setting.temperature] = out, flops
        else:  # best-of-k and the reward tilt re-rank a pool of k samples at one temperature
            k = decoding_cfg["num_samples"]
            if setting.temperature not in pools or len(pools[setting.temperature][0][0]) != k:
                pool = generate_tpp(model, ids, temperature=setting.temperature, num_samples=k, seed=seed, **common)
                pools[setting.temperature] = pool, _answer_flops(model, ids, pool, cost)
            pool, pool_flops = pools[setting.temperature]
            if setting.family == "best_of_k_ll":
                out = [[best_of_k(samples)] for samples in pool]
            else:
                out = _reward_tilt(pool, test, tokenizer, scorer, setting.beta, seed)
            flops = [[sum(f)] for f in pool_flops]  # the kept answer cost the whole pool
        key = tuple(sorted(cost.items()))  # settings that share a step cost share one measurement
        if key not in measured:
            measured[key] = measure_decode_step_flops(model, ids[0], **cost)
        context = len(ids[0]) + (family == TPP_FAMILY)  # the Transformer++ measures its second token's step
        step_check = {"decode_step_flops_analytic": decode_step_flops(model, context, **cost),
                      "decode_step_flops_measured": measured[key]}
        rows += _rows(run["run_id"], setting.name, test["prompt_id"], out, tokenizer, flops, step_check)
    return pd.DataFrame(rows, columns=SAMPLE_COLUMNS)


def answer_cost(model, setting: DecodingSetting) -> dict:
    """The keywords of answer_flops and decode_step_flops for one setting: an EBT's thinking
    steps (a multiple of its validation count) and candidates per token; nothing for the
    Transformer++."""
    if not isinstance(model, EBT):
        return {}
    return dict(thinking_steps=max(1, round(setting.steps_multiplier * model.inference_steps)),
                candidates=int(np.nan_to_num(setting.num_candidates, nan=1)))


def _answer_flops(model, ids, samples_per_prompt, cost: dict) -> list[list[int]]:
    return [[answer_flops(model, len(p), _generated(s), **cost) for s in samples]
            for p, samples in zip(ids, samples_per_prompt)]


def _reward_tilt(pool, test: pd.DataFrame, tokenizer: Tokenizer, scorer: Scorer, beta: float, seed: int):
    """Keep one of each prompt's k samples, drawn with probability ∝ exp(U·N/β)."""
    k = len(pool[0])
    flat = pd.DataFrame({
        "prompt_id": np.repeat(test["prompt_id"].to_numpy(), k),
        "walk": [tokenizer.decode(s.tokens) for samples in pool for s in samples],
    })
    reward = score_samples(flat, test, scorer)["creativity"].to_numpy().reshape(len(pool), k)
    choice = reward_tilt_choice(reward, beta, np.random.default_rng(seed))
    return [[samples[c]] for samples, c in zip(pool, choice)]
