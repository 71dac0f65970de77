"""One grid point of the experiment: train it, then sample its answers.

This is the glue between the task tables (strings) and the models (token ids);
the workflow scripts call these two functions and nothing else.
"""
from __future__ import annotations

import logging

import pandas as pd

from creativity.corpus import encode_corpus
from creativity.tokenizer import Tokenizer

from .model import EBTConfig, ModelConfig
from .train import TrainConfig, train_to_budget

ARCHITECTURES = {  # config name -> (model family, variant)
    "tpp": ("tpp", "tpp"),
    "ebt_system1": ("ebt", "system1"),
    "ebt_system2": ("ebt", "system2"),
}


def ebt_config(arch: str, ebt_cfg: dict) -> EBTConfig | None:
    family, variant = ARCHITECTURES[arch]
    return EBTConfig(variant=variant, **ebt_cfg) if family == "ebt" else None


def train_run(run: dict, corpus: pd.DataFrame, tokenizer: Tokenizer, max_seq_len: int, model_cfg: dict,
              train_cfg: dict, ebt_cfg: dict, device: str, threads: int, run_dir) -> tuple[dict, pd.DataFrame]:
    """Train one run to its budget; returns its row of the runs table and its training curve."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    family, variant = ARCHITECTURES[run["arch"]]
    sequences, target_starts = encode_corpus(corpus, tokenizer)
    cfg = dict(train_cfg)
    cfg["val_fraction"] = cfg.pop("validation_fraction")
    cfg["betas"] = tuple(cfg["betas"])
    result = train_to_budget(
        model_cfg=ModelConfig(vocab_size=tokenizer.vocab_size, max_seq_len=max_seq_len, **run["shape"], **model_cfg),
        arch=family,
        ebt_cfg=ebt_config(run["arch"], ebt_cfg),
        train_cfg=TrainConfig(**cfg, seed=run["seed"], device=device,
                              num_threads=threads),
        sequences=sequences,
        target_starts=target_starts,
        pad_id=tokenizer.pad_id,
        flop_budget=run["budget"],
        run_dir=run_dir,
    )
    curve = result.pop("curve")
    summary = {
        "run_id": run["run_id"],
        "arch": family,
        "variant": variant,
        **run["shape"],
        "budget": run["budget"],
        "seed": run["seed"],
        **result,
    }
    return summary, curve.assign(run_id=run["run_id"], arch=family, variant=variant)
