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


def run_snakemake(workdir: Path, *args, timeout=900, repo: Path = REPO) -> subprocess.CompletedProcess:
    """Run snakemake on `repo`'s Snakefile, with its packages, in working directory `workdir`."""
    cmd = [SNAKEMAKE, "--snakefile", str(repo / "Snakefile"), "--directory", str(workdir), *args]
    env = {**os.environ, "PYTHONPATH": str(repo)}
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)


def copy_run(src: Path, dst: Path) -> None:
    """A finished tiny run in a new directory: config, results and Snakemake's metadata."""
    for name in ("config.yaml", "results", ".snakemake"):
        (shutil.copytree if (src / name).is_dir() else shutil.copy2)(src / name, dst / name)
    shutil.rmtree(dst / ".snakemake/log", ignore_errors=True)


def default_model_config(**fields):
    """A ModelConfig with config.yaml's model section; `fields` give the rest (vocab_size, the
    shape, max_seq_len). The dataclasses have no defaults of their own for what config.yaml sets."""
    from models.model import ModelConfig
    from pipeline.presets import load_config

    return ModelConfig(**{**load_config()["model"], **fields})


def default_ebt_config(variant: str, **changes):
    """The EBTConfig of the EBT of `variant` as the pipeline builds it from config.yaml: the ebt
    section, and alpha the first value that architecture's tuning sweep tries; `changes` on top."""
    from models.architectures import ARCHITECTURES
    from models.model import EBTConfig
    from pipeline.presets import load_config

    cfg = load_config()
    arch = next(a.name for a in ARCHITECTURES.values() if a.is_ebt and a.variant == variant)
    alpha = cfg["tuning"]["search"][arch]["alpha"][0]
    return EBTConfig(**{**cfg["ebt"], "variant": variant, "alpha": alpha, **changes})


def default_train_config(**changes):
    """config.yaml's train section as a TrainConfig, lr the Transformer++'s first swept value;
    `changes` on top."""
    from models.architectures import TPP
    from models.train import GRID_PLANNING_KEYS, TrainConfig
    from pipeline.presets import load_config

    cfg = load_config()
    train = {k: v for k, v in cfg["train"].items() if k not in GRID_PLANNING_KEYS}
    lr = cfg["tuning"]["search"][TPP.name]["lr"][0]
    return TrainConfig(**{**train, "betas": tuple(train["betas"]), "lr": lr, **changes})


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
