"""The tiny preset through `--profile workflow/profiles/slurm` on a throw-away SLURM cluster.

A session fixture installs Debian's slurmctld/slurmd/slurm-client/munge when `sbatch` is
missing (needs root, or password-less sudo), starts munged, slurmctld and slurmd on localhost
with tests/slurm/slurm.conf.in (partitions `cpu` and `gpu` on the one node, no accounting
database) and stops them afterwards. The workflow then runs with the real
snakemake-executor-plugin-slurm, which polls job states with `squeue` (there is no slurmdbd,
so `sacct` has nothing to report; MinJobAge=600 keeps finished jobs visible to squeue).

The test skips, with the reason and the daemons' logs, when the packages cannot be installed
or the cluster does not come up; it fails when the workflow fails on a working cluster.
Set CREATIVITY_SKIP_SLURM=1 to skip it.
"""
import importlib.util
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from conftest import REPO, run_snakemake, write_config

CLUSTER_SH = REPO / "tests/slurm/cluster.sh"
TIMING = ["wall_seconds", "tokens_per_second"]
RUNS_COLUMNS = {"run_id", "arch", "budget", "flops_measured", "status", "seed", "wall_seconds"}
SAMPLES_COLUMNS = {"run_id", "decoding", "prompt_id", "walk", "valid", "novelty", "utility", "creativity"}
METRICS_COLUMNS = {"run_id", "arch", "decoding", "level", "validity", "novelty_valid", "utility", "creativity"}
FITS_COLUMNS = {"kind", "arch", "estimate", "ci_low", "ci_high"}


def _tail(text, n=4000):
    return text if len(text) <= n else "...\n" + text[-n:]


def _privileged_prefix():
    """[] when root, ['sudo', '-n'] with password-less sudo (CI runners), else None."""
    if os.geteuid() == 0:
        return []
    if shutil.which("sudo") and subprocess.run(["sudo", "-n", "true"], capture_output=True).returncode == 0:
        return ["sudo", "-n", "--preserve-env=SLURM_TEST_CTLD_PORT,SLURM_TEST_SLURMD_PORT"]
    return None


def _cluster(prefix, *args, timeout=120):
    return subprocess.run([*prefix, "bash", str(CLUSTER_SH), *args], capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="session")
def slurm_cluster(tmp_path_factory):
    """A running single-node SLURM cluster; yields the environment that reaches it (SLURM_CONF)."""
    if os.environ.get("CREATIVITY_SKIP_SLURM"):
        pytest.skip("CREATIVITY_SKIP_SLURM is set")
    if importlib.util.find_spec("snakemake_executor_plugin_slurm") is None:
        pytest.skip("snakemake-executor-plugin-slurm is not installed (pip install -e '.[cluster]')")
    if not shutil.which("apt-get") and not shutil.which("sbatch"):
        pytest.skip("SLURM is not installed and there is no apt-get to install it (Debian/Ubuntu only)")
    prefix = _privileged_prefix()
    if prefix is None:
        pytest.skip("SLURM test needs root or password-less sudo (to install slurm/munge and run slurmd)")

    t0 = time.monotonic()
    try:
        inst = _cluster(prefix, "install", timeout=600)
    except subprocess.TimeoutExpired:
        pytest.skip("installing slurm-wlm/munge with apt-get took more than 10 minutes")
    if inst.returncode != 0:
        pytest.skip(f"could not install SLURM (slurmctld slurmd slurm-client munge):\n{_tail(inst.stdout + inst.stderr, 2000)}")
    install_s = time.monotonic() - t0

    state = tmp_path_factory.mktemp("slurm")
    state.chmod(0o755)
    try:
        start = _cluster(prefix, "start", str(state), timeout=180)
        ok, out = start.returncode == 0, start.stdout + start.stderr
    except subprocess.TimeoutExpired as e:
        ok, out = False, f"timed out: {e}"
    if not ok:
        logs = _cluster(prefix, "logs", str(state))
        _cluster(prefix, "stop", str(state))
        pytest.skip(f"the local SLURM cluster did not come up:\n{_tail(out, 2000)}\n{_tail(logs.stdout, 6000)}")
    print(f"\nSLURM installed/checked in {install_s:.0f} s, cluster up in {time.monotonic() - t0 - install_s:.0f} s")

    env = {**os.environ, "SLURM_CONF": str(state / "slurm.conf")}
    try:
        yield {"env": env, "state": state, "logs": lambda: _cluster(prefix, "logs", str(state)).stdout}
    finally:
        stop = _cluster(prefix, "stop", str(state))
        if stop.returncode != 0:
            print(f"stopping the SLURM daemons failed:\n{stop.stdout}{stop.stderr}", file=sys.stderr)


def _copy_tiny(workdir: Path) -> Path:
    workdir.mkdir(parents=True, exist_ok=True)
    write_config(workdir, REPO / "workflow/presets/tiny.yaml")
    return workdir


TABLES = [f"results/tables/{name}.parquet" for name in ("runs", "samples", "metrics", "fits")]


@pytest.fixture(scope="module")
def runs(slurm_cluster, tiny_run, tmp_path_factory):
    """The tiny DAG up to its four tables through the SLURM profile; `tiny_run` is the local run.

    Every SLURM job is submitted with sbatch (nothing is a local rule).
    """
    slurm_dir = _copy_tiny(tmp_path_factory.mktemp("tiny_slurm"))
    slurm_dir.chmod(0o755)
    logdir = slurm_dir / "slurm_logs"
    args = [
        "--profile", str(REPO / "workflow/profiles/slurm"),
        "--latency-wait", "5",
        # No slurmdbd here: poll with squeue, and no account to guess with sacctmgr.
        "--slurm-status-command", "squeue",
        "--slurm-no-account",
        "--slurm-logdir", str(logdir),
        "--slurm-keep-successful-logs",
        # The plugin waits 40 s before its first status check, and 10 s longer after each
        # check that finds no finished job; the tiny jobs take seconds.
        "--slurm-init-seconds-before-status-checks", "2",
        "--seconds-between-status-checks", "2",
        *TABLES,
    ]
    t0 = time.monotonic()
    old = dict(os.environ)
    os.environ.update(slurm_cluster["env"])  # run_snakemake copies os.environ; SLURM_CONF must reach sbatch
    try:
        result = run_snakemake(slurm_dir, *args, timeout=900)
    finally:
        os.environ.clear()
        os.environ.update(old)
        slurm_s = time.monotonic() - t0
    if result.returncode != 0:
        job_logs = ""
        for log in sorted(logdir.rglob("*.log"), key=lambda p: p.stat().st_mtime)[-6:]:
            job_logs += f"\n===== {log.relative_to(logdir)} =====\n{_tail(log.read_text(errors='replace'), 1500)}"
        pytest.fail(
            f"snakemake --profile workflow/profiles/slurm failed (exit {result.returncode}) after {slurm_s:.0f} s\n"
            f"--- stderr ---\n{_tail(result.stderr, 5000)}\n--- SLURM job logs ---{job_logs}\n"
            f"--- daemons ---\n{_tail(slurm_cluster['logs'](), 3000)}"
        )
    print(f"\ntiny preset on SLURM: {slurm_s:.0f} s")
    return {"slurm": slurm_dir, "local": tiny_run, "stderr": result.stderr, "logdir": logdir}


def read(workdir, name):
    return pd.read_parquet(workdir / "results/tables" / f"{name}.parquet")


def test_tiny_preset_on_slurm(runs):
    workdir, local = runs["slurm"], runs["local"]
    # Every job really went through sbatch: the plugin writes one log per SLURM job.
    job_logs = [str(p.relative_to(runs["logdir"])) for p in runs["logdir"].rglob("*.log")]
    for rule in ("build_task", "tune_run", "train", "sample", "score", "aggregate", "fit"):
        assert any(p.startswith(f"rule_{rule}/") for p in job_logs), (rule, sorted(job_logs))
    # one SLURM job per batch: every seed of a grid point, and each architecture's tuning sweep
    local_runs = read(local, "runs")
    batches = local_runs.groupby(["variant", "budget", "depth", "width", "heads"]).ngroups
    assert sum(p.startswith("rule_train/") for p in job_logs) == batches, sorted(job_logs)
    sweeps = read(local, "tuning")["variant"].nunique()
    assert sum(p.startswith("rule_tune_run/") for p in job_logs) == sweeps, sorted(job_logs)

    # The same tables as the local run: all four, with their columns.
    assert RUNS_COLUMNS <= set(read(workdir, "runs").columns)
    assert SAMPLES_COLUMNS <= set(read(workdir, "samples").columns)
    assert METRICS_COLUMNS <= set(read(workdir, "metrics").columns)
    assert FITS_COLUMNS <= set(read(workdir, "fits").columns)

    # One run per grid point: architectures x budgets x shapes x seeds.
    slurm_runs = read(workdir, "runs")
    assert len(slurm_runs) == 3 * 2 * 1 * 1 and slurm_runs["run_id"].is_unique
    assert set(slurm_runs["arch"]) == {"tpp", "ebt"}
    assert (slurm_runs["status"] == "ok").all()

    # Identical to the local run, apart from timings.
    drop = [c for c in TIMING if c in slurm_runs.columns]
    pd.testing.assert_frame_equal(slurm_runs.drop(columns=drop), read(local, "runs").drop(columns=drop))
    for name in ("metrics", "samples"):
        pd.testing.assert_frame_equal(read(workdir, name), read(local, name))
