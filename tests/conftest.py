import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = str(Path(sys.executable).with_name("snakemake"))


DELETE = object()  # as a value in write_config: remove the key


def write_config(workdir: Path, base: Path, **changes) -> None:
    """workdir/config.yaml = config.yaml with the preset `base` merged in (as --configfile
    merges it), and dotted keys ("train.lr") changed."""
    import yaml

    from pipeline.presets import load_config

    cfg = load_config(base)
    for dotted, value in changes.items():
        node, *path = cfg, *dotted.split(".")
        for key in path[:-1]:
            node = node[key]
        if value is DELETE:
            del node[path[-1]]
        else:
            node[path[-1]] = value
    (workdir / "config.yaml").write_text(yaml.safe_dump(cfg))


def run_snakemake(workdir: Path, *args, timeout=900) -> subprocess.CompletedProcess:
    """Run snakemake on the repository's Snakefile with `workdir` as working directory."""
    cmd = [SNAKEMAKE, "--snakefile", str(REPO / "Snakefile"), "--directory", str(workdir), *args]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)


@pytest.fixture
def workdir(tmp_path):
    """A scratch working directory holding a copy of the default config."""
    shutil.copy(REPO / "config.yaml", tmp_path / "config.yaml")
    return tmp_path


def read_table(workdir: Path, name: str):
    import pandas as pd

    return pd.read_parquet(workdir / "results/tables" / f"{name}.parquet")


TIMING_COLUMNS = ["wall_seconds", "tokens_per_second"]


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory):
    """The whole DAG on the tiny preset, run once per test session."""
    workdir = tmp_path_factory.mktemp("tiny")
    write_config(workdir, REPO / "workflow/presets/tiny.yaml")
    result = run_snakemake(workdir, "--cores", "2")
    assert result.returncode == 0, result.stderr[-3000:]
    return workdir
