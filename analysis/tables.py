"""Assemble the per-run Parquet files into the four result tables.

runs      one row per trained run (configuration, FLOPs, losses, status)
samples   one row per generated sample, scored
metrics   one row per (run, decoding setting, level); level 0 pools all levels
curves    training curves of every run
"""
from __future__ import annotations

import pandas as pd

RUN_KEYS = ["run_id", "arch", "variant", "budget", "depth", "width", "heads", "seed", "params", "flops_measured"]


def concat(paths) -> pd.DataFrame:
    frames = [pd.read_parquet(p) for p in paths]
    frames = [f for f in frames if len(f)]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def assemble_tables(runs: pd.DataFrame, curves: pd.DataFrame, samples: pd.DataFrame, metrics: pd.DataFrame,
                    settings: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Attach run configuration and decoding parameters to the metrics."""
    runs = runs.sort_values("run_id", ignore_index=True)
    if len(metrics):
        metrics = metrics.merge(settings.drop(columns=["num_samples"]), on="decoding", how="left")
        metrics = runs[RUN_KEYS].merge(metrics, on="run_id", how="inner")
    order = ["run_id", "decoding", "prompt_id"] if len(samples) else []
    return {
        "runs": runs,
        "curves": curves.sort_values(["run_id", "step"], ignore_index=True) if len(curves) else curves,
        "samples": samples.sort_values(order, kind="stable", ignore_index=True) if order else samples,
        "metrics": metrics.sort_values(["run_id", "decoding", "level"], ignore_index=True) if len(metrics) else metrics,
    }
