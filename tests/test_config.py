"""A bad config fails before any job runs, names the offending key, and writes nothing."""
import re
import subprocess
import sys

import pytest

from conftest import DELETE, REPO, run_snakemake, write_config


BAD = {
    "negative node count": ({"graph.num_nodes": -5}, "graph.num_nodes"),
    "unknown key": ({"graph.num_nodez": 5}, "graph.num_nodez"),
    "wrong type": ({"train.batch_size": "sixty-four"}, "train.batch_size"),
    "missing key": ({"train.batch_size": DELETE}, "train.batch_size"),
    "zero budget": ({"budgets": [0, 1e12]}, "budgets.0"),
    "negative budget range": ({"budgets": {"min": -1.0, "max": 1e12, "num": 2}}, "budgets.min"),
    "width not divisible by heads": ({"shapes": [{"depth": 2, "width": 64, "heads": 3}]}, "width 64 is not divisible by heads 3"),
    "empty grid": ({"architectures": []}, "architectures"),
    "budget below one step": ({"budgets": [1000.0], "isoflop.budget": 1000.0}, "fewer than train.min_steps"),
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
    text = (workdir / "config.yaml").read_text().replace("  batch_size: 32\n", "  batch_size: [32\n", 1)
    assert text != (workdir / "config.yaml").read_text()
    (workdir / "config.yaml").write_text(text)
    line = text.splitlines().index("  batch_size: [32") + 2  # the parser notices on the next line
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
    """... and its dry run says, once, how much training it plans (pipeline.grid.planned_training_line)."""
    result = run_snakemake(workdir, "--cores", "1", "-n", timeout=60)
    assert result.returncode == 0, result.stderr[-2000:]
    assert len(re.findall(r"Training: \d+ runs in \d+ jobs and \d+ tuning runs in \d+ jobs, \S+ FLOPs planned",
                          result.stderr)) == 1, result.stderr[-2000:]


def test_paper_preset_plans_its_grid_on_a_machine_without_cuda(workdir):
    """The paper preset is an overlay on config.yaml; its dry run plans the whole grid here,
    where torch has no CUDA (the device is checked only when jobs are about to start).
    Every architecture gets the same 6 budgets, each with the shapes that stay within
    train.max_epochs there."""
    result = run_snakemake(workdir, "--cores", "1", "-n", "--configfile", str(REPO / "workflow/presets/paper.yaml"),
                           timeout=180)
    assert result.returncode == 0, result.stderr[-2000:]
    train_jobs = [line for line in result.stdout.splitlines() if line.split()[:1] == ["train"]]
    # 3 architectures x 6 budgets x the 17 shapes (depths x ratios inside 1M-100M params) less
    # those a budget would take past 4 epochs (the smallest shapes at the larger budgets),
    # each job a batch of the 3 seeds; no epoch limit would give 3 x 6 x 17 = 306
    assert train_jobs and 3 * 6 * 3 < int(train_jobs[0].split()[1]) < 3 * 6 * 17


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


# Every bad input the issue-18 probe tried, each refused by the parse-time checks that
# common.smk runs (read_config, check_config, plan_grid), naming the key. Called directly:
# the Snakemake cases above show that a refusal there stops the run before anything is written.
PARSE_TIME = {
    "tuning heads not dividing the width": (
        {"tuning": {"shape": {"depth": 2, "width": 32, "heads": 3}}}, r"tuning.shape: width 32 is not divisible by heads 3"),
    "tuning head dimension odd": (
        {"tuning": {"shape": {"depth": 2, "width": 30, "heads": 2}}}, r"tuning.shape: head dimension 15 must be even"),
    "tuning budget too small": ({"tuning": {"budget": 1}}, r"tuning.budget: 1 FLOPs gives tpp at shape L2-d32-h2 about 0"),
    "tuning negative lr": (
        {"tuning": {"search": {"tpp": {"lr": [-1e-3, 1e-3, 2e-3, 4e-3]}}}}, r"tuning.search.tpp.lr.0: -0.001 is less than"),
    "tuning huge seed": ({"tuning": {"seed": 2**70}}, r"tuning.seed: \d+ is greater than the maximum of 4294967295"),
    "tuning batch size 0": (
        {"tuning": {"search": {"tpp": {"lr": [1e-3, 2e-3], "batch_size": [0, 16]}}}},
        r"tuning.search.tpp.batch_size.0: 0 is less than the minimum of 1"),
    "tuning batch size 2.5": (
        {"tuning": {"search": {"tpp": {"lr": [1e-3, 2e-3], "batch_size": [2.5, 16]}}}},
        r"tuning.search.tpp.batch_size.0: 2.5 is not of type 'integer'"),
    "tuning warm-up fraction 5": (
        {"tuning": {"search": {"tpp": {"lr": [1e-3, 2e-3], "warmup_fraction": [5.0, 0.1]}}}},
        r"tuning.search.tpp.warmup_fraction.0: 5.0 is greater than the maximum of 1"),
    "tuning unknown architecture": (
        {"tuning": {"search": {"ebt_sytem2": {"lr": [1e-3]}}}}, r"tuning.search.ebt_sytem2: Additional properties"),
    "tuning EBT key for the Transformer++": (
        {"tuning": {"search": {"tpp": {"lr": [1e-3, 2e-3], "alpha": [1.0, 2.0]}}}}, r"tuning.search.tpp.alpha"),
    "tuning unequal effort": ({"tuning": {"search": {"tpp": {"lr": [1e-3]}}}}, r"tuning.search: architectures get different"),
    "a swept key also set in its section": ({"train": {"lr": 1e-3}}, r"train.lr: also swept under tuning.search.tpp.lr"),
    "tuning batch too large for min_steps": (
        {"tuning": {"search": {"tpp": {"lr": [1e-3, 2e-3], "batch_size": [32, 100000]}}}},
        r"tuning.budget: 1.5e\+11 FLOPs gives tpp .* \(batch_size 100000\)"),
    "seed a float": ({"seeds": [1.0]}, r"seeds.0: 1.0 is not of type 'integer'"),
    "node count a float": ({"graph": {"num_nodes": 30.0}}, r"graph.num_nodes: 30.0 is not of type 'integer'"),
    "huge seed": ({"seed": 2**70}, r"seed: \d+ is greater than the maximum"),
    "huge grid seed": ({"seeds": [2**70]}, r"seeds.0: \d+ is greater than the maximum"),
    "IsoFLOP shapes an unknown mapping": ({"isoflop": {"shapes": {"foo": 1}}}, r"isoflop.shapes.foo: Additional properties"),
    "test prompts beyond the graph's endpoint pairs": (
        {"task": {"test_prompts_per_level": 100000}}, r"task.test_prompts_per_level=100000: 400000 test prompts"),
    "held-out fraction leaving no demonstration": (
        {"task": {"heldout_composition_fraction": 0.99}}, r"task.heldout_composition_fraction=0.99: a demonstration"),
    "YAML alias": ({"train": {"betas": "ALIAS"}}, r"ebt.random_steps: repeats a value by YAML alias"),
}


def parse_time_checks(cfg: dict) -> None:
    from pipeline import grid
    from pipeline.config import check_config, read_config

    cfg = read_config(cfg)
    check_config(cfg, SCHEMA)
    grid.plan_grid(cfg)


@pytest.mark.parametrize("case", list(PARSE_TIME), ids=list(PARSE_TIME))
def test_every_bad_input_is_refused_at_parse_time_naming_the_key(case):
    from pipeline.config import ConfigError
    from pipeline.presets import load_config, merge

    changes, message = PARSE_TIME[case]
    cfg = merge(load_config(), changes)
    if cfg["train"]["betas"] == "ALIAS":  # what `betas: &b [..]` and `random_steps: *b` load as
        cfg["train"]["betas"] = cfg["ebt"]["random_steps"] = [2, 3]
    with pytest.raises(ConfigError, match=message):
        parse_time_checks(cfg)


def test_the_presets_pass_the_parse_time_checks():
    from pipeline.presets import load_config

    for preset in (None, REPO / "workflow/presets/tiny.yaml"):
        parse_time_checks(load_config(preset))


def test_the_task_size_limits_sit_where_the_draw_gives_up():
    """The endpoint-pair count is exact on a small graph (checked by brute force), and the
    largest test_prompts_per_level the message suggests passes."""
    import itertools

    from creativity.task import task_graph
    from pipeline.config import ConfigError, check_task_size, endpoint_pairs
    from pipeline.presets import load_config, merge

    cfg = load_config()
    graph = task_graph(cfg["graph"], cfg["task"], cfg["seed"])
    near, far = cfg["task"]["min_endpoint_distance"], cfg["task"]["max_hops"]
    distance = {}
    for start in range(graph.num_nodes):
        seen, frontier = {start: 0}, [start]
        for hops in range(1, far + 1):
            frontier = [b for a in frontier for b, _ in graph.neighbours[a] if b not in seen]
            seen.update({b: hops for b in frontier})
        distance[start] = seen
    brute = sum(1 for u, v in itertools.combinations(range(graph.num_nodes), 2) if near <= distance[u].get(v, 99) <= far)
    assert endpoint_pairs(graph, near, far, enough=10**9) == brute
    with pytest.raises(ConfigError, match=rf"about {brute} endpoint pairs .* at most {brute // 8} per level"):
        check_task_size(merge(cfg, {"task": {"test_prompts_per_level": brute // 8 + 1}}), graph)
    check_task_size(merge(cfg, {"task": {"test_prompts_per_level": brute // 8}}), graph)
    check_task_size(merge(cfg, {"task": {"heldout_composition_fraction": 0.93}}), graph)  # usable about 0.015


def test_yaml_aliases_are_refused_where_written(tmp_path):
    """A YAML alias bomb (nested aliases) would take exponential time in any walk over the
    config; an alias is refused by line and column, in config.yaml or a preset, at once."""
    from pipeline.config import ConfigError, check_no_aliases, check_yaml_syntax

    levels = ["a: &a [x, x, x, x, x, x, x, x, x]"] + [
        f"{b}: &{b} [{', '.join(['*' + a] * 9)}]" for a, b in zip("abcdefgh", "bcdefghi")]
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text("lol:\n" + "".join(f"  {line}\n" for line in levels))
    with pytest.raises(ConfigError, match=rf"{bomb}, line 3, column 10: YAML alias \*a is not allowed"):
        check_yaml_syntax(bomb)
    import yaml

    with pytest.raises(ConfigError, match=r"lol.b.0: repeats a value by YAML alias"):
        check_no_aliases(yaml.safe_load(bomb.read_text()))  # linear: each object is visited once
    check_no_aliases({"a": [1, 1], "b": {"c": 1.0}, "d": 1.0})  # equal scalars are not aliases


def test_an_alias_bomb_preset_is_refused_by_snakemake_quickly(workdir, tmp_path):
    preset = tmp_path / "bomb.yaml"
    levels = ["a: &a [x, x, x, x, x, x, x, x, x]"] + [
        f"{b}: &{b} [{', '.join(['*' + a] * 9)}]" for a, b in zip("abcdefgh", "bcdefghi")]
    preset.write_text("lol:\n" + "".join(f"  {line}\n" for line in levels))
    result = run_snakemake(workdir, "--cores", "1", "-n", "--configfile", str(preset), timeout=60)
    assert result.returncode == 1
    assert f"ConfigError: {preset}, line 3, column 10: YAML alias *a is not allowed" in result.stderr, result.stderr[-2000:]


def test_every_sweep_names_the_keys_every_model_takes_from_it():
    """lr (and an EBT's alpha) exist only under tuning.search: a sweep without them would
    train with a default nobody set."""
    from models.tuning import check_search

    with pytest.raises(ValueError, match=r"tuning.search.tpp.lr: missing"):
        check_search({"tpp": {"batch_size": [16, 32]}}, ["tpp"])
    with pytest.raises(ValueError, match=r"tuning.search.ebt_system1.alpha: missing"):
        check_search({"ebt_system1": {"lr": [1e-3, 2e-3]}}, ["ebt_system1"])
    check_search({"tpp": {"lr": [1e-3]}, "ebt_system1": {"lr": [1e-3], "alpha": [50.0]}}, ["tpp", "ebt_system1"])


@pytest.mark.parametrize("section", ["model", "train", "ebt"])
def test_a_setting_config_yaml_holds_has_no_second_default_in_code(section):
    """config.yaml writes each setting's default once: a dataclass field that its train, model
    or ebt section (or a tuning sweep: lr, alpha) sets has no default of its own to disagree
    with it, and every key of the section is a field (min_steps plans the grid instead)."""
    import dataclasses

    from models.model import EBTConfig, ModelConfig
    from models.train import GRID_PLANNING_KEYS, TrainConfig
    from models.tuning import EBT_KEYS, TRAIN_KEYS
    from pipeline.presets import load_config

    cls, swept = {"model": (ModelConfig, ()), "train": (TrainConfig, TRAIN_KEYS), "ebt": (EBTConfig, EBT_KEYS)}[section]
    fields = {f.name: f for f in dataclasses.fields(cls)}
    keys = set(load_config()[section]) | set(swept)
    assert keys - set(fields) <= set(GRID_PLANNING_KEYS)
    set_by_config = keys & set(fields)
    assert set_by_config, "the check must cover some field"
    with_default = sorted(name for name in set_by_config if fields[name].default is not dataclasses.MISSING
                          or fields[name].default_factory is not dataclasses.MISSING)
    assert not with_default, f"{cls.__name__} repeats config.yaml's {section} defaults: {with_default}"
