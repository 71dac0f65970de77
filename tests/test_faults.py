"""Kills, a second run, damaged files, failing jobs and diverging runs: the README's fault promises.

Every rerun here is the same command with no extra flags; the tables must match an
uninterrupted run (tiny_run), wall-time columns aside."""
import json
import os
import shutil
import signal
import subprocess
import time

import pandas as pd
import pytest
from conftest import REPO, SNAKEMAKE, TIMING_COLUMNS, copy_run, read_table, run_snakemake, write_config

from creativity.io import atomic_path, redirect_log

TABLES = ("runs", "samples", "metrics", "fits")


def tiny_config(workdir, **changes):
    write_config(workdir, REPO / "workflow/presets/tiny.yaml", **changes)


def snakemake_cmd(workdir, *args):
    return [SNAKEMAKE, "--snakefile", str(REPO / "Snakefile"), "--directory", str(workdir), "--cores", "2", *args]


def start(workdir, *args) -> subprocess.Popen:
    """The DAG in its own process group, so that killpg takes every job with it (a preempted node)."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen(snakemake_cmd(workdir, *args), env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)


def kill_when(proc, condition, what: str, timeout=300):
    """Poll `condition` until it returns something truthy, then kill -9 the whole run; return that."""
    deadline = time.time() + timeout
    found = None
    while time.time() < deadline and proc.poll() is None and not found:
        found = condition()
        time.sleep(0.02)
    assert proc.poll() is None, f"the run finished before it was {what}"
    assert found, f"the run was never {what}"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    return found


def assert_same_tables(expected_dir, workdir, names=TABLES):
    for name in names:
        a = read_table(expected_dir, name).drop(columns=TIMING_COLUMNS, errors="ignore")
        b = read_table(workdir, name).drop(columns=TIMING_COLUMNS, errors="ignore")
        pd.testing.assert_frame_equal(a, b, obj=name)


def in_run_dirs(workdir, name):
    return list((workdir / "results/runs").glob(f"*/*/*/*/{name}"))


def in_batch_dirs(workdir, name):
    """A batch (every seed of one arch, budget and shape) keeps its train and sample logs."""
    return list((workdir / "results/runs").glob(f"*/*/*/{name}"))


def modified_since(path, moment: float) -> bool:
    """Whether `path` was written after `moment`; False if it is gone (Snakemake deletes a
    job's log and outputs just before it reruns the job, so a file globbed an instant ago may
    no longer be there)."""
    try:
        return path.stat().st_mtime > moment
    except FileNotFoundError:
        return False


def sampling_unfinished(log):
    """A batch whose sample log exists while some run of it has no samples yet."""
    return any(not (seed / "samples_raw.parquet").exists() for seed in log.parent.glob("seed*"))


def test_the_workflow_profile_is_in_force(workdir):
    """Run from the working directory, as a user would: Snakemake finds profiles/default beside the Snakefile."""
    result = subprocess.run(snakemake_cmd(workdir, "-n"), cwd=workdir, capture_output=True, text=True, timeout=120,
                            env={**os.environ, "PYTHONPATH": str(REPO)})
    assert result.returncode == 0, result.stderr[-2000:]
    assert f"Using workflow specific profile {REPO / 'profiles/default'}" in result.stderr


def test_kill_9_mid_training_then_rerun_completes_identically(tiny_run, tmp_path):
    tiny_config(tmp_path, **{"train.checkpoint_every_steps": 5})
    proc = start(tmp_path)
    mid = kill_when(proc, lambda: [c.parent for c in in_run_dirs(tmp_path, "checkpoint.pt")
                                   if not (c.parent / "train_summary.parquet").exists()], "caught mid-training")
    result = run_snakemake(tmp_path, "--cores", "2")  # the same command, no extra flags
    assert result.returncode == 0, result.stderr[-3000:]
    assert any("resumed" in (d.parent / "train.log").read_text() for d in mid), "the run restarted instead of resuming"
    assert_same_tables(tiny_run, tmp_path, ("runs", "metrics"))


unshare = shutil.which("unshare")
can_unshare = unshare and subprocess.run([unshare, "--pid", "--fork", "--mount-proc", "true"],
                                         capture_output=True).returncode == 0


def test_a_second_run_is_refused_then_a_kill_mid_sample_resumes(tiny_run, tmp_path):
    """The first run is caught with one run's samples written and another's being drawn, and
    stopped there (SIGSTOP: alive, but it cannot finish while the others try). A second run,
    from this PID namespace or another, is refused, naming the first; after kill -9, the same
    command removes the dead run's lock and finishes with the uninterrupted run's tables."""
    tiny_config(tmp_path)
    first = start(tmp_path)
    deadline = time.time() + 300
    while first.poll() is None and time.time() < deadline:
        done = in_run_dirs(tmp_path, "samples_raw.parquet")
        busy = [log for log in in_batch_dirs(tmp_path, "sample.log") if sampling_unfinished(log)]
        if done and busy:
            break
        time.sleep(0.02)
    assert first.poll() is None and done and busy, "the run was never caught mid-sample"
    os.killpg(first.pid, signal.SIGSTOP)
    try:
        second = run_snakemake(tmp_path, "--cores", "2", timeout=120)
        assert second.returncode != 0
        assert f"locked by a run that is still running (pid {first.pid} on host" in second.stderr, second.stderr[-2000:]
        assert f"kill {first.pid}" in second.stderr and "LockException" in second.stderr
        unlock = run_snakemake(tmp_path, "--cores", "2", "--unlock", timeout=120)
        assert unlock.returncode != 0, "--unlock removed the lock of a live run"
        assert f"Refusing to unlock: this directory is locked by a run that is still running (pid {first.pid}" in \
            unlock.stderr and f"rm -r {tmp_path / '.snakemake/locks'}" in unlock.stderr, unlock.stderr[-2000:]
        assert list((tmp_path / ".snakemake/locks").glob("*.lock"))
        if can_unshare:
            env = {**os.environ, "PYTHONPATH": str(REPO)}
            other = subprocess.run([unshare, "--pid", "--fork", "--mount-proc", *snakemake_cmd(tmp_path)],
                                   capture_output=True, text=True, timeout=120, env=env)
            assert other.returncode != 0
            assert f"This directory is locked by pid {first.pid} on host" in other.stderr, other.stderr[-2000:]
            assert "in another PID namespace than this run (pid 1 on host" in other.stderr
    finally:
        os.killpg(first.pid, signal.SIGKILL)
        first.wait()

    result = run_snakemake(tmp_path, "--cores", "2")
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"Removed the lock of a run that is no longer running (pid {first.pid}" in result.stderr
    assert_same_tables(tiny_run, tmp_path)
    if not can_unshare:
        pytest.skip("checked only from this PID namespace: `unshare --pid --fork --mount-proc` is unavailable here")


def test_kill_during_a_rerun_of_sample_rebuilds_the_tables(tiny_run, tmp_path):
    """Snakemake deletes a job's old output before it runs. Killed then, the output stays missing
    while the tables built from it remain; the rerun must redo the job and rebuild the tables
    rather than say "Nothing to be done"."""
    copy_run(tiny_run, tmp_path)
    started = time.time()

    n_runs = len(in_run_dirs(tmp_path, "train_summary.parquet"))

    def resampled_and_missing():
        """One run resampled, another's sampling under way (its script has written to its log).
        Not the instant between Snakemake deleting an output and marking it incomplete."""
        present = in_run_dirs(tmp_path, "samples_raw.parquet")
        busy = [log for log in in_batch_dirs(tmp_path, "sample.log") if modified_since(log, started)
                and sampling_unfinished(log)]
        return busy and any(modified_since(p, started) for p in present)

    proc = start(tmp_path, "--forcerun", "sample")
    kill_when(proc, resampled_and_missing, "caught with one run resampled and another's samples deleted")
    # The busy job may write its samples in the instant between the check and the kill; then
    # its incomplete marker alone makes Snakemake redo it, and nothing is missing to report.
    missing = n_runs - len(in_run_dirs(tmp_path, "samples_raw.parquet"))

    result = run_snakemake(tmp_path, "--cores", "2")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Nothing to be done" not in result.stdout + result.stderr
    if missing:
        assert "outputs are rebuilt, with everything built from them" in result.stderr, result.stderr[-3000:]
    assert len(in_run_dirs(tmp_path, "samples_raw.parquet")) == n_runs
    assert (tmp_path / "results/tables/samples.parquet").stat().st_mtime > started
    assert_same_tables(tiny_run, tmp_path)


def test_kill_mid_fit_after_its_first_output_then_rerun(tiny_run, tmp_path):
    """fit writes excluded_runs.csv, then fits.parquet: killed in between, one output exists and
    is marked incomplete, which the profile's rerun-incomplete redoes."""
    copy_run(tiny_run, tmp_path)
    tables = tmp_path / "results/tables"
    proc = start(tmp_path, "--forcerun", "fit")
    kill_when(proc, lambda: (tables / "excluded_runs.csv").exists() and not (tables / "fits.parquet").exists(),
              "caught between the two outputs of fit")
    result = run_snakemake(tmp_path, "--cores", "2")
    assert result.returncode == 0, result.stderr[-3000:]
    assert_same_tables(tiny_run, tmp_path, ("fits",))


def test_corrupt_checkpoint_restarts_that_run(tiny_run, tmp_path):
    tiny_config(tmp_path)
    run_dir = tmp_path / "results/runs/tpp/6e9/L1-d32-h2/seed0"
    run_dir.mkdir(parents=True)
    (run_dir / "checkpoint.pt").write_bytes(b"PK\x03\x04 truncated")
    result = run_snakemake(tmp_path, "--cores", "2", "results/tables/runs.parquet")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "restarting from scratch" in (run_dir.parent / "train.log").read_text()
    assert_same_tables(tiny_run, tmp_path, ("runs",))


def test_a_truncated_per_run_table_is_rebuilt(tiny_run, tmp_path):
    copy_run(tiny_run, tmp_path)
    damaged = sorted(in_run_dirs(tmp_path, "samples.parquet"))[0]
    damaged.write_bytes(damaged.read_bytes()[:1000])
    for table in (tmp_path / "results/tables").glob("*.parquet"):  # what a failed aggregate leaves
        table.unlink()
    result = run_snakemake(tmp_path, "--cores", "2")
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"{damaged.relative_to(tmp_path)}: damaged" in result.stderr
    assert_same_tables(tiny_run, tmp_path)


def test_damaged_and_deleted_outputs_are_rebuilt_and_a_dry_run_changes_nothing(tiny_run, tmp_path):
    """With the tables built from them still there, Snakemake alone says "Nothing to be done"
    about a damaged or deleted intermediate. A dry run lists them and touches nothing; the
    same command then rebuilds them and everything after them; a second says nothing to do."""
    copy_run(tiny_run, tmp_path)
    damaged = sorted(in_run_dirs(tmp_path, "samples.parquet"))[0]
    damaged.write_bytes(damaged.read_bytes()[:1000])
    deleted = sorted(in_run_dirs(tmp_path, "model.pt"))[-1].parent
    shutil.rmtree(deleted)
    best = tmp_path / "results/tuning/tpp/best.json"
    best.write_text('{"setting": {"lr": 0.00')
    before = {p: p.read_bytes() for p in (tmp_path / "results").rglob("*") if p.is_file()}

    dry = run_snakemake(tmp_path, "--cores", "2", "-n")
    assert dry.returncode == 0, dry.stderr[-3000:]
    assert {p: p.read_bytes() for p in (tmp_path / "results").rglob("*") if p.is_file()} == before
    listed = dry.stderr.split("Dry run: a real run rebuilds these ")[1]
    assert f"{damaged.relative_to(tmp_path)}: damaged" in listed and "tuning/tpp/best.json: damaged" in listed
    assert f"{(deleted / 'model.pt').relative_to(tmp_path)}: missing, though built before" in listed

    result = run_snakemake(tmp_path, "--cores", "2")
    assert result.returncode == 0, result.stderr[-3000:]
    assert (deleted / "model.pt").exists() and json.loads(best.read_text())["setting"]
    assert_same_tables(tiny_run, tmp_path)
    again = run_snakemake(tmp_path, "--cores", "2")
    assert again.returncode == 0 and "Nothing to be done" in again.stdout + again.stderr


def test_a_failing_job_leaves_its_traceback_in_its_log(tiny_run, tmp_path):
    copy_run(tiny_run, tmp_path)
    run_dir = sorted(in_run_dirs(tmp_path, "samples_raw.parquet"))[0].parent
    pd.DataFrame({"not_a_sample_column": [1]}).to_parquet(run_dir / "samples_raw.parquet")  # newer: score reruns
    result = run_snakemake(tmp_path, "--cores", "2")
    assert result.returncode != 0
    log = (run_dir / "score.log").read_text()
    assert "Traceback (most recent call last)" in log and "Error" in log.splitlines()[-1]


def test_atomic_writes_keep_the_umask_and_leave_nothing_on_failure(tmp_path):
    old = os.umask(0o002)
    try:
        with atomic_path(tmp_path / "a" / "table.parquet") as tmp:
            assert tmp.endswith(".parquet")  # savefig and friends read the format from the suffix
            pd.DataFrame({"x": [1]}).to_parquet(tmp)
    finally:
        os.umask(old)
    assert (tmp_path / "a/table.parquet").stat().st_mode & 0o777 == 0o664
    with pytest.raises(RuntimeError):
        with atomic_path(tmp_path / "a" / "other.parquet") as tmp:
            pd.DataFrame({"x": [1]}).to_parquet(tmp)
            raise RuntimeError("killed")
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == ["table.parquet"]


def test_a_full_disk_is_named_with_the_path(tmp_path, monkeypatch):
    """ENOSPC, or any failed write (torch.save says only "unexpected pos") on a filesystem with
    under FULL_DISK_BYTES free, is re-raised as ENOSPC naming the file; the partial file goes."""
    import errno
    import shutil as shutil_module

    import creativity.io as io

    target = tmp_path / "run" / "model.pt"
    with pytest.raises(OSError, match=rf"disk full: no space left to write {target}") as raised:
        with atomic_path(target) as tmp:
            open(tmp, "w").write("partial")
            raise OSError(errno.ENOSPC, "No space left on device")
    assert raised.value.errno == errno.ENOSPC and list(target.parent.iterdir()) == []

    torch_error = RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 704 vs 598")
    with pytest.raises(RuntimeError, match="unexpected pos"):  # space left: not a full disk
        with atomic_path(target):
            raise torch_error
    full = shutil_module._ntuple_diskusage(total=10**9, used=10**9 - 1000, free=1000)
    monkeypatch.setattr(io.shutil, "disk_usage", lambda path: full)
    with pytest.raises(OSError, match=rf"disk full: no space left to write {target}") as raised:
        with atomic_path(target):
            raise torch_error
    assert raised.value.__cause__ is torch_error


def test_redirect_log_keeps_the_traceback(tmp_path):
    log = tmp_path / "logs/rule.log"
    with pytest.raises(KeyError):
        with redirect_log(log):
            print("started")
            {}["missing_column"]
    text = log.read_text()
    assert text.startswith("started\nTraceback (most recent call last)") and "KeyError: 'missing_column'" in text


def report_divergence(summary_path):
    """Rewrite a run's training summary as models/train.py writes it for a diverged run."""
    summary = pd.read_parquet(summary_path)
    summary.assign(status="diverged", diverged_step=summary["steps"].astype(float)).to_parquet(summary_path)


def test_a_diverged_run_is_recorded_and_excluded_not_dropped(tiny_run, tmp_path):
    """One run's training reports divergence, as models/train.py records it (tested in test_training):
    the grid still completes, that run keeps its row, gets no samples, and the fits exclude it."""
    copy_run(tiny_run, tmp_path)
    report_divergence(tmp_path / "results/runs/tpp/6e9/L1-d32-h2/seed0/train_summary.parquet")
    result = run_snakemake(tmp_path, "--cores", "2")
    assert result.returncode == 0, result.stderr[-3000:]
    runs = read_table(tmp_path, "runs")
    diverged = runs[runs.status == "diverged"]
    assert list(diverged.run_id) == ["tpp_6e9_L1-d32-h2_s0"] and diverged["diverged_step"].notna().all()
    assert len(runs) == len(read_table(tiny_run, "runs"))  # the grid completed: nothing dropped
    assert "tpp_6e9_L1-d32-h2_s0" not in set(read_table(tmp_path, "samples")["run_id"])
    fits = read_table(tmp_path, "fits")
    assert "tpp_6e9_L1-d32-h2_s0" not in set(fits["run_id"].dropna())
    assert (fits.loc[fits.arch == "tpp", "n_excluded_diverged"] == 1).any()
    assert (fits.loc[fits.arch != "tpp", "n_excluded_diverged"] == 0).all()
    excluded = pd.read_csv(tmp_path / "results/tables/excluded_runs.csv")
    assert set(excluded.run_id) == {"tpp_6e9_L1-d32-h2_s0"}


def test_a_grid_in_which_every_run_diverged_fails_with_a_summary(tiny_run, tmp_path):
    copy_run(tiny_run, tmp_path)
    for summary in in_run_dirs(tmp_path, "train_summary.parquet"):
        report_divergence(summary)
    (tmp_path / "results/logs/aggregate.log").unlink()
    result = run_snakemake(tmp_path, "--cores", "2")
    assert result.returncode != 0
    n = len(read_table(tiny_run, "runs"))
    assert f"every run diverged ({n} of {n})" in result.stderr, result.stderr[-3000:]
    assert all(f"{run_id}: loss not finite at step" in result.stderr for run_id in read_table(tiny_run, "runs").run_id)
    assert f"every run diverged ({n} of {n})" in (tmp_path / "results/logs/aggregate.log").read_text()
    assert not (tmp_path / "results/tables/runs.parquet").exists()
