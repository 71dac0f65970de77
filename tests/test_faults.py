"""Kills, corrupt checkpoints and diverging runs: the grid completes and nothing is lost."""
import os
import shutil
import signal
import subprocess
import time

import pandas as pd
from conftest import REPO, SNAKEMAKE, TIMING_COLUMNS, read_table, run_snakemake, write_config


def tiny_config(workdir, **changes):
    write_config(workdir, REPO / "workflow/presets/tiny.yaml", **changes)


def test_kill_9_mid_training_then_rerun_completes_identically(tiny_run, tmp_path):
    tiny_config(tmp_path, **{"train.checkpoint_every_steps": 5})
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    cmd = [SNAKEMAKE, "--snakefile", str(REPO / "Snakefile"), "--directory", str(tmp_path), "--cores", "2"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    runs = tmp_path / "results/runs"
    deadline = time.time() + 120
    # Kill as soon as some run has checkpointed but not finished training.
    while time.time() < deadline:
        mid = [c.parent for c in runs.glob("*/*/*/*/checkpoint.pt") if not (c.parent / "train_summary.parquet").exists()]
        if mid or proc.poll() is not None:
            break
        time.sleep(0.05)
    assert proc.poll() is None, "the DAG finished before it could be killed"
    os.killpg(proc.pid, signal.SIGKILL)  # the whole process tree, like a preempted node
    proc.wait()
    assert mid, "no run was caught mid-training"

    result = run_snakemake(tmp_path, "--cores", "2")  # the same command, no extra flags
    assert result.returncode == 0, result.stderr[-3000:]
    resumed = [d for d in mid if "resumed" in (d / "train.log").read_text()]
    assert resumed, "the interrupted run restarted from scratch instead of resuming"

    for name in ("runs", "metrics"):
        a = read_table(tiny_run, name).drop(columns=TIMING_COLUMNS, errors="ignore")
        b = read_table(tmp_path, name).drop(columns=TIMING_COLUMNS, errors="ignore")
        pd.testing.assert_frame_equal(a, b)


def test_corrupt_checkpoint_restarts_that_run(tiny_run, tmp_path):
    shutil.copy(REPO / "workflow/presets/tiny.yaml", tmp_path / "config.yaml")
    run_dir = tmp_path / "results/runs/tpp/6e9/L1-d32-h2/seed0"
    run_dir.mkdir(parents=True)
    (run_dir / "checkpoint.pt").write_bytes(b"PK\x03\x04 truncated")
    result = run_snakemake(tmp_path, "--cores", "2", "results/tables/runs.parquet")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "restarting from scratch" in (run_dir / "train.log").read_text()
    a = read_table(tiny_run, "runs").drop(columns=TIMING_COLUMNS)
    b = read_table(tmp_path, "runs").drop(columns=TIMING_COLUMNS)
    pd.testing.assert_frame_equal(a, b)


def test_diverged_runs_are_recorded_and_excluded(tmp_path):
    tiny_config(tmp_path, **{"train.lr": 1.0e4, "train.grad_clip": 1.0e9})
    result = run_snakemake(tmp_path, "--cores", "2")
    assert result.returncode == 0, result.stderr[-3000:]
    runs = read_table(tmp_path, "runs")
    diverged = runs[runs.status == "diverged"]
    assert len(diverged) >= 1 and diverged["diverged_step"].notna().all()
    assert len(runs) == 4  # the grid completed: nothing dropped
    samples = read_table(tmp_path, "samples")
    assert not set(diverged.run_id) & set(samples.get("run_id", []))
    fits = read_table(tmp_path, "fits")
    assert len(fits) and (fits["n_excluded_diverged"] == len(diverged)).all()
    excluded = pd.read_csv(tmp_path / "results/tables/excluded_runs.csv")
    assert set(excluded.run_id) == set(diverged.run_id)
