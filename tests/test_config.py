"""A bad config fails before any job runs, names the offending key, and writes nothing."""
import subprocess
import sys

import pytest

from conftest import DELETE, REPO, run_snakemake, write_config


BAD = {
    "negative node count": ({"graph.num_nodes": -5}, "graph.num_nodes"),
    "unknown key": ({"graph.num_nodez": 5}, "graph.num_nodez"),
    "wrong type": ({"train.batch_size": "sixty-four"}, "train.batch_size"),
    "missing key": ({"train.lr": DELETE}, "train.lr"),
    "zero budget": ({"budgets": [0, 1e12]}, "budgets.0"),
    "negative budget range": ({"budgets": {"min": -1.0, "max": 1e12, "num": 2}}, "budgets.min"),
    "width not divisible by heads": ({"shapes": [{"depth": 2, "width": 64, "heads": 3}]}, "width 64 is not divisible by heads 3"),
    "empty grid": ({"architectures": []}, "architectures"),
    "budget below one step": ({"budgets": [1000.0], "isoflop.shapes": []}, "fewer than train.min_steps"),
    "budget range upside down": ({"budgets": {"min": 1e13, "max": 1e12, "num": 2}}, "budgets.min=1e+13 exceeds"),
    "IsoFLOP budget off the grid": ({"isoflop.budget": 3e11}, "isoflop.budget: 3e+11 is not one of the budgets"),
    "too sparse graph": ({"graph.mean_degree": 0.2, "task.min_hops": 4}, "graph.mean_degree"),
    "too few labels": ({"graph.num_labels": 3, "task.levels": 5}, "graph.num_labels"),
    "nan learning rate": ({"train.lr": float("nan")}, "non-finite number (nan or inf) where a finite one is needed: train.lr"),
    "infinite learning rate": ({"train.lr": float("inf")}, "needed: train.lr"),
    "infinite number in a list": ({"train.betas": [0.9, float("inf")]}, "needed: train.betas.1"),
    "EBT without its default decoding": (
        {"decoding.ebt.steps_multipliers": [2, 4]}, "decoding.ebt.steps_multipliers: [2, 4] lacks 1"),
}


@pytest.mark.parametrize("case", list(BAD), ids=list(BAD))
def test_bad_config_fails_fast_naming_the_key(workdir, case):
    changes, expected = BAD[case]
    write_config(workdir, REPO / "config.yaml", **changes)
    result = run_snakemake(workdir, "--cores", "1", timeout=60)
    assert result.returncode != 0
    assert expected in result.stderr + result.stdout, result.stderr[-2000:]
    assert_nothing_written(workdir)


def assert_nothing_written(workdir):
    """Snakemake opens its own log before it reads the Snakefile; besides that, nothing."""
    written = {p.relative_to(workdir).as_posix() for p in workdir.rglob("*") if p.is_file()}
    assert {p for p in written if not p.startswith(".snakemake/log/")} == {"config.yaml"}, written


def test_cuda_without_a_cuda_torch_fails_fast(workdir):
    import torch

    if torch.backends.cuda.is_built():
        pytest.skip("this torch is built with CUDA")
    write_config(workdir, REPO / "config.yaml", **{"resources.device": "cuda"})
    result = run_snakemake(workdir, "--cores", "1", timeout=60)
    assert result.returncode != 0
    assert "resources.device: cuda, but the installed torch" in result.stderr, result.stderr[-2000:]
    assert_nothing_written(workdir)


def test_yaml_error_names_file_line_and_column(workdir):
    text = (workdir / "config.yaml").read_text().replace("  lr: 2.4e-3\n", "  lr: [2.4e-3\n", 1)
    assert text != (workdir / "config.yaml").read_text()
    (workdir / "config.yaml").write_text(text)
    line = text.splitlines().index("  lr: [2.4e-3") + 2  # the parser notices on the next line
    result = run_snakemake(workdir, "--cores", "1", timeout=60)
    assert result.returncode != 0
    assert f"ConfigError: config.yaml, line {line}, column" in result.stderr, result.stderr[-2000:]
    assert_nothing_written(workdir)


def test_yaml_error_in_a_preset_is_located_by_the_checker(tmp_path):
    """Snakemake reads a --configfile before the workflow and names no line; the README points here."""
    preset = tmp_path / "preset.yaml"
    preset.write_text("train:\n  lr: [1e-3\n  batch_size: 16\n")
    result = subprocess.run([sys.executable, "-m", "pipeline.config", str(preset)], capture_output=True, text=True,
                            cwd=REPO)
    assert result.returncode == 1
    assert f"ConfigError: {preset}, line 3, column 13: YAML syntax error" in result.stderr


def test_missing_config_file_is_named(workdir):
    (workdir / "config.yaml").unlink()
    result = run_snakemake(workdir, "--cores", "1", "--configfile", str(workdir / "nope.yaml"), timeout=60)
    assert result.returncode != 0
    assert "nope.yaml" in result.stderr + result.stdout
    assert not (workdir / "results").exists()


def test_default_config_is_valid(workdir):
    result = run_snakemake(workdir, "--cores", "1", "-n", timeout=60)
    assert result.returncode == 0, result.stderr[-2000:]


def test_paper_preset_plans_its_grid_on_a_machine_without_cuda(workdir):
    """The paper preset is an overlay on config.yaml; its dry run plans the whole grid here,
    where torch has no CUDA (the device is checked only when jobs are about to start).
    Every architecture gets the same 10 budgets."""
    result = run_snakemake(workdir, "--cores", "1", "-n", "--configfile", str(REPO / "workflow/presets/paper.yaml"),
                           timeout=180)
    assert result.returncode == 0, result.stderr[-2000:]
    train_jobs = [line for line in result.stdout.splitlines() if line.split()[:1] == ["train"]]
    # 3 architectures x 10 budgets x 17 shapes (depths x ratios inside 1M-100M params) x 3 seeds
    assert train_jobs and int(train_jobs[0].split()[1]) == 3 * 10 * 17 * 3


SCHEMA = REPO / "workflow/schemas/config.schema.yaml"
RELATED = {
    "min above max hops": ({"task": {"min_hops": 5, "max_hops": 3}}, r"task.min_hops=5 exceeds task.max_hops=3"),
    "fewer labels than levels": ({"graph": {"num_labels": 3}, "task": {"levels": 5}},
                                 r"graph.num_labels=3 is smaller than task.levels=5: a level-5 prompt needs 4"),
    "EBT step range upside down": ({"ebt": {"random_steps": [3, 2]}}, r"ebt.random_steps=\[3, 2\]: min exceeds max"),
    "too sparse a graph": ({"graph": {"mean_degree": 0.2}, "task": {"min_hops": 4}}, r"graph.mean_degree"),
}


@pytest.mark.parametrize("case", list(RELATED), ids=list(RELATED))
def test_keys_valid_alone_but_not_together_are_refused(case):
    """The same checks as the Snakemake cases above, called directly: pipeline.config.check_config."""
    from pipeline.config import ConfigError, check_config
    from pipeline.presets import load_config, merge

    changes, message = RELATED[case]
    cfg = load_config()
    check_config(cfg, SCHEMA)  # the default passes
    with pytest.raises(ConfigError, match=message):
        check_config(merge(cfg, changes), SCHEMA)
