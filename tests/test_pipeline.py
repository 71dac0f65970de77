"""pipeline/: the run lock, resuming after a kill, and the parse-time config checks, unit by unit."""
import dataclasses
import json
import math
import os
import subprocess
from base64 import urlsafe_b64encode
from pathlib import Path

import pandas as pd
import pytest
import yaml

from conftest import REPO
from pipeline import lock, resume
from pipeline.divergence import AllRunsDiverged, check_some_run_trained
from pipeline.config import (ConfigError, check_decoding_menu, check_device, check_yaml_syntax,
                             non_finite_keys)

needs_proc = pytest.mark.skipif(not Path("/proc/self/ns/pid").exists(), reason="needs Linux /proc")


def dead_pid() -> int:
    """The pid of a process that has exited and been reaped."""
    child = subprocess.Popen(["true"])
    child.wait()
    return child.pid


# --- the run lock --------------------------------------------------------------
@needs_proc
def test_this_process_is_not_gone_and_a_reaped_child_is():
    here = lock.this_process()
    assert here.start_ticks == lock.start_ticks(os.getpid()) is not None
    assert not lock.is_gone(here, here)
    assert lock.is_gone(dataclasses.replace(here, pid=dead_pid()), here)


@needs_proc
def test_a_reused_pid_is_gone():
    here = lock.this_process()
    assert lock.is_gone(dataclasses.replace(here, start_ticks=here.start_ticks - 1), here)


@needs_proc
@pytest.mark.parametrize("field", ["boot_id", "pid_namespace"])
def test_an_owner_elsewhere_is_never_gone(field, tmp_path):
    """Another host (boot) or PID namespace: its pid means nothing here, even when no such pid exists."""
    here = lock.this_process()
    elsewhere = dataclasses.replace(here, pid=dead_pid(), **{field: "somewhere else"})
    assert not lock.is_gone(elsewhere, here)
    unknown = dataclasses.replace(here, pid=dead_pid(), **{field: None})
    assert not lock.is_gone(unknown, here)
    snakemake_locks(tmp_path)
    lock.record_owner(tmp_path, elsewhere)
    with pytest.raises(lock.LockHeld, match="another host or in another PID namespace.*cannot be checked"):
        lock.release_if_stale(tmp_path, here)


def test_owner_record_round_trip(tmp_path):
    owner = lock.this_process()
    lock.record_owner(tmp_path / "locks", owner)
    assert lock.read_owner(tmp_path / "locks") == owner
    (tmp_path / "locks" / lock.OWNER_FILE).write_text("{not json")
    assert lock.read_owner(tmp_path / "locks") is None


def snakemake_locks(lock_dir: Path) -> None:
    lock_dir.mkdir(parents=True, exist_ok=True)
    (lock_dir / "0.input.lock").write_text("results/task/graph.parquet\n")
    (lock_dir / "0.output.lock").write_text("results/tables/runs.parquet\n")


@needs_proc
def test_the_lock_of_a_killed_run_is_removed(tmp_path):
    here = lock.this_process()
    snakemake_locks(tmp_path)
    lock.record_owner(tmp_path, dataclasses.replace(here, pid=dead_pid()))
    note = lock.release_if_stale(tmp_path, here)
    assert "no longer running" in note
    assert list(tmp_path.iterdir()) == []


@needs_proc
def test_the_lock_of_a_live_run_is_kept_and_the_message_says_what_to_run(tmp_path):
    here = lock.this_process()
    snakemake_locks(tmp_path)
    lock.record_owner(tmp_path, here)
    with pytest.raises(lock.LockHeld) as held:
        lock.release_if_stale(tmp_path, here)
    assert f"locked by a run that is still running (pid {here.pid} on host {here.host}" in str(held.value)
    assert f"kill {here.pid}" in str(held.value) and "--unlock" not in str(held.value)
    assert len(list(tmp_path.glob("*.lock"))) == 2


@needs_proc
def test_unlock_is_refused_while_the_owner_provably_runs_and_says_how_to_force_it(tmp_path):
    here = lock.this_process()
    snakemake_locks(tmp_path)
    lock.record_owner(tmp_path, here)  # this process: alive
    with pytest.raises(lock.LockHeld, match=rf"Refusing to unlock.*pid {here.pid}(.|\n)*rm -r {tmp_path}"):
        lock.refuse_unlock_if_alive(tmp_path, here)
    lock.record_owner(tmp_path, dataclasses.replace(here, pid=dead_pid()))  # gone: unlock goes ahead
    lock.refuse_unlock_if_alive(tmp_path, here)
    lock.record_owner(tmp_path, dataclasses.replace(here, boot_id="another boot"))  # unknown: the user decides
    lock.refuse_unlock_if_alive(tmp_path, here)
    assert len(list(tmp_path.glob("*.lock"))) == 2  # refusing or not, this never removes anything


def test_a_lock_without_owner_is_kept(tmp_path):
    snakemake_locks(tmp_path)
    with pytest.raises(lock.LockHeld, match="did not record itself.*\n.*owner is unknown"):
        lock.release_if_stale(tmp_path, lock.this_process())
    assert len(list(tmp_path.glob("*.lock"))) == 2


def test_no_lock_no_note(tmp_path):
    assert lock.release_if_stale(tmp_path / "locks", lock.this_process()) is None


# --- resuming after a kill -----------------------------------------------------
def mark_incomplete(meta: Path, key: str, chunk: int = 0) -> None:
    """A marker as snakemake.persistence.file writes it (a long name split into @-directories)."""
    name = urlsafe_b64encode(key.encode()).decode()
    parts = [name] if not chunk else [name[i:i + chunk] for i in range(0, len(name), chunk)]
    parts = ["@" + p for p in parts[:-1]] + parts[-1:]
    path = meta.joinpath("incomplete", *parts)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text('{"external_jobid": null}')


def mark_built(meta: Path, key: str) -> None:
    """A metadata record as Snakemake writes one for each output it built."""
    path = meta / "metadata" / urlsafe_b64encode(key.encode()).decode()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text('{"rule": "score"}')


def test_what_a_kill_deletion_or_damage_left_is_found_and_marked_for_rerun(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    meta = tmp_path / ".snakemake"
    killed = "results/runs/tpp/2e9/L1-d32-h2/seed0/samples_raw.parquet"
    killed_long = "results/runs/tpp/6e9/L1-d32-h2/seed0/samples_raw.parquet"
    mark_incomplete(meta, killed)
    mark_incomplete(meta, killed_long, chunk=10)
    mark_incomplete(meta, "results/tables/runs.parquet")  # present: Snakemake's rerun-incomplete reruns it
    mark_incomplete(meta, "/etc/outside.parquet")  # never written outside the working directory
    (meta / "incomplete" / "migration_underway").write_text("")
    deleted = "results/runs/tpp/2e9/L1-d32-h2/seed0/metrics.parquet"
    mark_built(meta, deleted)
    mark_built(meta, "results/runs/tpp/9e9/L1-d32-h2/seed0/metrics.parquet")  # another grid's: no rule makes it
    Path("results/tables").mkdir(parents=True)
    Path("results/tables/runs.parquet").write_text("half a table")
    Path("results/tuning/tpp").mkdir(parents=True)
    Path("results/tuning/tpp/best.json").write_text('{"lr": 0.0')
    Path("results/tuning/tpp/model.pt").write_bytes(b"PK\x03\x04 truncated")

    def is_output(path):
        return "9e9" not in path

    redo = resume.files_to_redo(Path("results"), meta, is_output)
    assert [(str(p), why.split(" (")[0]) for p, why in redo] == [
        (deleted, "missing, though built before"),
        (killed, "missing, its job killed"),
        (killed_long, "missing, its job killed"),
        ("results/tuning/tpp/best.json", "damaged"),
        ("results/tuning/tpp/model.pt", "damaged"),
    ]
    resume.mark_for_rerun(meta, [p for p, _ in redo])
    assert all(p.stat().st_size == 0 for p, _ in redo)
    assert set(map(str, resume.marked_incomplete(meta))) == {str(p) for p, _ in redo} | {"results/tables/runs.parquet"}
    # marked, they are Snakemake's incomplete outputs now: nothing more to do here
    assert resume.files_to_redo(Path("results"), meta, is_output) == []


def test_a_marker_is_what_snakemake_writes(tmp_path):
    """The marker round-trips through Snakemake's own reader."""
    from snakemake.persistence.file import FilePersistence  # noqa: F401  (the module that reads it)

    key = "results/runs/" + "x" * 400 + "/samples_raw.parquet"  # longer than a file name may be
    resume.mark_incomplete(tmp_path, Path(key))
    assert resume.marked_incomplete(tmp_path) == [Path(key)]
    assert json.loads(next(p for p in (tmp_path / "incomplete").rglob("*") if p.is_file()).read_text()) == {
        "external_jobid": None}


def test_damage_is_found_by_suffix_and_whole_files_and_temporaries_are_not(tmp_path):
    import torch

    table = pd.DataFrame({"run_id": ["a", "b"], "loss": [1.0, 2.0]})
    table.to_parquet(tmp_path / "whole.parquet")
    data = (tmp_path / "whole.parquet").read_bytes()
    (tmp_path / "runs").mkdir()
    (tmp_path / "runs" / "truncated.parquet").write_bytes(data[: len(data) // 2])
    (tmp_path / "empty.parquet").write_bytes(b"")
    (tmp_path / ".whole.1a2b3c4d.tmp.parquet").write_bytes(data[:10])
    torch.save({"w": torch.zeros(10)}, tmp_path / "model.pt")
    model = (tmp_path / "model.pt").read_bytes()
    (tmp_path / "runs" / "model.pt").write_bytes(model[:-30])
    (tmp_path / "best.json").write_text('{"lr": 1}')
    (tmp_path / "runs" / "best.json").write_text('{"lr": ')
    (tmp_path / "figure.png").write_bytes(b"not checked")
    damaged = resume.damaged_files(tmp_path)
    assert [p.relative_to(tmp_path).as_posix() for p, _ in damaged] == [
        "empty.parquet", "runs/best.json", "runs/model.pt", "runs/truncated.parquet"]
    assert all(why for _, why in damaged)


# --- parse-time config checks --------------------------------------------------
def test_non_finite_numbers_are_named_by_key():
    cfg = {"train": {"lr": math.nan, "betas": [0.9, math.inf], "batch_size": 16}, "seed": 0, "name": "x",
           "budgets": {"min": -math.inf, "max": 1e12}}
    assert non_finite_keys(cfg) == ["train.lr", "train.betas.1", "budgets.min"]
    assert non_finite_keys({"train": {"lr": 1e-3}}) == []


def test_yaml_error_names_file_line_and_column(tmp_path):
    path = tmp_path / "preset.yaml"
    path.write_text("seed: 0\ngraph:\n  num_nodes: [30\n  num_labels: 6\n")
    with pytest.raises(ConfigError) as err:
        check_yaml_syntax(path)
    assert str(err.value) == (f"{path}, line 4, column 13: YAML syntax error: expected ',' or ']', but got ':' "
                              "(while parsing a flow sequence at line 3, column 14)")
    path.write_text("seed: 0\n")
    check_yaml_syntax(path)


def default_config() -> dict:
    return yaml.safe_load((REPO / "config.yaml").read_text())


@pytest.mark.parametrize("multipliers", [[1, 2, 4], [2, 4], [0.5, 1], [3]])
def test_decoding_menu_is_refused_exactly_when_a_default_decoding_is_missing(multipliers):
    from analysis.labels import DEFAULT_DECODING
    from models.decoding import decoding_settings

    cfg = default_config()
    cfg["architectures"] = ["tpp", "ebt_system1", "ebt_system2"]
    cfg["decoding"]["ebt"]["steps_multipliers"] = multipliers
    names = {arch: {s.name for s in decoding_settings(arch, cfg["decoding"])} for arch in ("tpp", "ebt")}
    if all(DEFAULT_DECODING[arch] in names[arch] for arch in names):
        check_decoding_menu(cfg)
    else:
        with pytest.raises(ConfigError, match=r"decoding\.ebt\.steps_multipliers: .* lacks 1.*ebt_system1, ebt_system2"):
            check_decoding_menu(cfg)
    cfg["architectures"] = ["tpp"]  # no EBT in the grid: nothing reads think_x1
    check_decoding_menu(cfg)


def test_cuda_without_a_cuda_build_is_refused():
    import torch

    cfg = default_config()
    cfg["resources"]["device"] = "cuda"
    if torch.backends.cuda.is_built():
        check_device(cfg)
    else:
        with pytest.raises(ConfigError, match="resources.device: cuda"):
            check_device(cfg)
    cfg["resources"]["device"] = "cpu"
    check_device(cfg)


# --- a grid in which every run diverged ----------------------------------------
def test_all_diverged_is_refused_with_each_run_and_step_and_some_diverged_is_not():
    runs = pd.DataFrame({"run_id": ["tpp_2e9", "ebt_3e9"], "status": ["diverged", "diverged"],
                         "diverged_step": [3.0, 7.0]})
    with pytest.raises(AllRunsDiverged) as err:
        check_some_run_trained(runs)
    assert "every run diverged (2 of 2)" in str(err.value)
    assert "tpp_2e9: loss not finite at step 3" in str(err.value) and "ebt_3e9: loss not finite at step 7" in str(err.value)
    check_some_run_trained(runs.assign(status=["diverged", "ok"]))
    check_some_run_trained(runs.iloc[:0])


def test_leftover_temporaries_are_exactly_the_names_atomic_path_uses(tmp_path):
    from creativity.io import atomic_path

    leftovers = []
    for name in ("model.pt", "samples.parquet", "excluded_runs.csv", "pareto.png"):
        with pytest.raises(KeyboardInterrupt):
            with atomic_path(tmp_path / "runs" / name) as tmp:
                leftovers.append(Path(tmp).name)
                raise KeyboardInterrupt  # atomic_path removes its own file; a kill -9 would not
    for name in leftovers:
        (tmp_path / "runs" / name).write_bytes(b"half")
    (tmp_path / "runs" / ".hidden.parquet").write_bytes(b"not ours")
    (tmp_path / "runs" / "model.pt").write_bytes(b"finished")
    assert sorted(p.name for p in resume.leftover_temporaries(tmp_path)) == sorted(leftovers)


# --- results of different presets never mix ----------------------------------------
def test_each_preset_keeps_its_results_apart():
    from pipeline.presets import DEFAULTS, results_dir

    assert results_dir([]) == "results" and results_dir([DEFAULTS]) == "results"
    assert results_dir([REPO / "workflow/presets/tiny.yaml"]) == "results-tiny"
    assert results_dir(["a/tiny.yaml", "b/gpu.yml"]) == "results-tiny+gpu"


def test_a_report_without_the_presets_run_is_refused_naming_where_the_runs_are(tmp_path):
    """The README's report command after a preset run: refused, not a report whose front page
    describes the default grid beside the preset's figures."""
    from conftest import run_snakemake

    (tmp_path / "config.yaml").write_text((REPO / "config.yaml").read_text())
    (tmp_path / "results-tiny/tables").mkdir(parents=True)
    (tmp_path / "results-tiny/tables/fits.parquet").write_bytes(b"")
    result = run_snakemake(tmp_path, "--cores", "1", "--report", "results/report.html", timeout=120)
    assert result.returncode == 1
    assert ("--report: results/ holds no finished run of this config (results/tables/fits.parquet is missing). "
            "Finished runs: results-tiny/tables/fits.parquet") in result.stderr, result.stderr[-2000:]
    assert not (tmp_path / "results").exists()
