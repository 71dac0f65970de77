"""Parse-time checks of the config: each refusal names the key (or file, line and column).

workflow/rules/common.smk runs these when the Snakefile is parsed, so a bad config stops
before any job runs and before anything is written. The JSON schema checks types and
ranges; the checks here are the ones a schema cannot express.
"""
from __future__ import annotations

import collections
import math
import re
import sys
from pathlib import Path

import jsonschema
import numpy as np
import yaml

from models.architectures import ARCHITECTURES, EBT_FAMILY


class ConfigError(Exception):
    pass


def _where(mark) -> str:
    return f"line {mark.line + 1}, column {mark.column + 1}"


def check_yaml_syntax(path) -> None:
    """Snakemake reports a YAML error without the file, line or column; say all three.
    An alias (*name) is refused too, where it is written: see check_no_aliases."""
    try:
        for event in yaml.parse(Path(path).read_text()):  # events only: an alias is never expanded here
            if isinstance(event, yaml.AliasEvent):
                raise ConfigError(f"{path}, {_where(event.start_mark)}: YAML alias *{event.anchor} is not "
                                  "allowed in a config; write the value out")
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        # The parser notices a mistake where it can no longer go on; the context says where it began.
        context = f" ({err.context} at {_where(err.context_mark)})" if err.context and err.context_mark else ""
        raise ConfigError(f"{path}, {_where(mark)}: YAML syntax error: {err.problem or err.context}{context}") from None
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: YAML syntax error: {err}") from None


def check_no_aliases(cfg) -> None:
    """Refuse a config in which one dict or list appears twice, which only a YAML alias
    (&name ... *name) makes. Nested aliases multiply (a "billion laughs"): every walk over the
    config, this module's included, would take exponential time and memory, so this runs
    first and visits each object once."""
    seen: set[int] = set()
    queue = collections.deque([("", cfg)])  # breadth first: the shallowest repeat is named
    while queue:
        key, value = queue.popleft()
        if not isinstance(value, (dict, list)):
            continue
        if id(value) in seen:
            raise ConfigError(f"{key or '<top level>'}: repeats a value by YAML alias (*name); "
                              "aliases are not allowed in a config, write the value out")
        seen.add(id(value))
        items = value.items() if isinstance(value, dict) else enumerate(value)
        queue.extend((f"{key}.{name}" if key else str(name), v) for name, v in items)


_SCIENTIFIC = re.compile(r"^[-+]?\d+(\.\d*)?[eE][-+]?\d+$")


def coerce_scientific(value):
    """YAML 1.1 reads 3e12 (no dot, no exponent sign) as a string; make it the number meant."""
    if isinstance(value, dict):
        return {k: coerce_scientific(v) for k, v in value.items()}
    if isinstance(value, list):
        return [coerce_scientific(v) for v in value]
    if isinstance(value, str) and _SCIENTIFIC.match(value):
        return float(value)
    return value


def non_finite_keys(value, key: str = "") -> list[str]:
    """Dotted keys of every NaN or infinite number in a nested config (`.nan`, `.inf` in YAML)."""
    if isinstance(value, dict):
        return [k for name, v in value.items() for k in non_finite_keys(v, f"{key}.{name}" if key else str(name))]
    if isinstance(value, list):
        return [k for i, v in enumerate(value) for k in non_finite_keys(v, f"{key}.{i}")]
    if isinstance(value, float) and not math.isfinite(value):
        return [key]
    return []


def check_finite(cfg: dict) -> None:
    bad = non_finite_keys(cfg)
    if bad:
        raise ConfigError("non-finite number (nan or inf) where a finite one is needed: " + ", ".join(bad))


def _key_path(error) -> str:
    path = ".".join(str(p) for p in error.absolute_path)
    if error.validator == "additionalProperties":
        unknown = sorted(set(error.instance) - set(error.schema.get("properties", {})))
        return ".".join(filter(None, [path, unknown[0] if unknown else ""]))
    if error.validator == "required":
        return ".".join(filter(None, [path, error.message.split("'")[1]]))
    return path or "<top level>"


def _deepest(error):
    """For oneOf, the alternative that got deepest into the value says most about the mistake."""
    while error.context:
        # on a tie, an alternative of the right type says more than "is not of type"
        error = max(error.context, key=lambda e: (len(e.absolute_path), e.validator != "type"))
    return error


# JSON Schema counts 1.0 as an integer; Python does not (seeds: [1.0] names no run directory,
# graph.num_nodes: 30.0 no node), so an integer key takes a Python int and nothing else.
_Validator = jsonschema.validators.extend(
    jsonschema.Draft202012Validator,
    type_checker=jsonschema.Draft202012Validator.TYPE_CHECKER.redefine(
        "integer", lambda checker, value: isinstance(value, int) and not isinstance(value, bool)),
)


def check_schema(cfg: dict, schema_path) -> None:
    schema = yaml.safe_load(Path(schema_path).read_text())
    errors = sorted(
        (_deepest(e) for e in _Validator(schema).iter_errors(cfg)),
        key=lambda e: list(map(str, e.absolute_path)),
    )
    if errors:
        lines = [f"  {_key_path(e)}: {e.message}" for e in errors]
        raise ConfigError("invalid config (workflow/schemas/config.schema.yaml):\n" + "\n".join(lines))


def check_device(cfg: dict) -> None:
    """`cuda` with a torch built without CUDA fails in every train job; say so now.

    Only the build is checked: the main process may run on a login node without a GPU
    while its jobs run on GPU nodes."""
    if cfg["resources"]["device"] != "cuda":
        return
    import torch

    if not torch.backends.cuda.is_built():
        raise ConfigError(
            f"resources.device: cuda, but the installed torch {torch.__version__} is built without CUDA. "
            "Set resources.device to cpu or auto, or install a CUDA build "
            "(make install TORCH=torch==<version> TORCH_INDEX=https://download.pytorch.org/whl/cu128)."
        )


def check_decoding_menu(cfg: dict) -> None:
    """Every architecture's default decoding (analysis.labels.DEFAULT_DECODING), which the headline
    figures and fits read, is sampled. The Transformer++ always has greedy; the EBT's think_x1
    (its training step count) exists only if decoding.ebt.steps_multipliers holds 1."""
    ebts = [arch for arch in cfg["architectures"] if ARCHITECTURES[arch].is_ebt]
    multipliers = cfg["decoding"][EBT_FAMILY]["steps_multipliers"]
    if ebts and 1 not in multipliers:
        raise ConfigError(
            f"decoding.ebt.steps_multipliers: {multipliers} lacks 1, so think_x1, the default decoding of "
            f"{', '.join(ebts)} that the headline figures and fits read, would not be sampled. Add 1."
        )


def check_related_keys(cfg: dict) -> None:
    """Keys that are valid alone but not together."""
    task, graph = cfg["task"], cfg["graph"]
    if task["min_hops"] > task["max_hops"]:
        raise ConfigError(f"task.min_hops={task['min_hops']} exceeds task.max_hops={task['max_hops']}")
    if graph["num_labels"] < task["levels"]:
        raise ConfigError(
            f"graph.num_labels={graph['num_labels']} is smaller than task.levels={task['levels']}: "
            f"a level-{task['levels']} prompt needs {task['levels'] - 1} constraint labels besides a label on its walk"
        )
    low, high = cfg["ebt"]["random_steps"]
    if low > high:
        raise ConfigError(f"ebt.random_steps={cfg['ebt']['random_steps']}: min exceeds max")


def check_tuning(cfg: dict) -> None:
    """Equal tuning effort (models.tuning.check_search): every architecture has a search space,
    with the same number of settings. The values themselves are checked by the schema, and the
    tuning shape and budget by pipeline.grid.plan_grid."""
    from models.tuning import check_search

    try:
        check_search(cfg["tuning"]["search"], cfg["architectures"], cfg)
    except ValueError as err:
        raise ConfigError(str(err)) from None


def endpoint_pairs(graph, low: int, high: int, enough: int, sample: int = 256) -> int:
    """The unordered node pairs `low`..`high` hops apart: exact on graphs of up to `sample`
    nodes (a breadth-first search from each); on larger ones an estimate from `sample` seeded
    starts, each search stopping once its start has partners enough for `enough` pairs in all
    (on a paper-scale graph a full search from each start would take minutes)."""
    n = graph.num_nodes
    exact = n <= sample
    starts = range(n) if exact else np.random.default_rng(0).choice(n, sample, replace=False)
    cap = n if exact else -(-2 * enough // n) + 1
    partners = []
    for start in starts:
        seen, frontier, count = {int(start)}, [int(start)], 0
        for hops in range(1, high + 1):
            frontier = list(dict.fromkeys(b for a in frontier for b, _ in graph.neighbours[a] if b not in seen))
            seen.update(frontier)
            count += len(frontier) if hops >= low else 0
            if count >= cap or not frontier:
                break
        partners.append(min(count, cap))
    return int(round(n * np.mean(partners) / 2))


def check_task_size(cfg: dict, graph) -> None:
    """Refuse a task whose demonstrations cannot be drawn, naming the key that asks too much
    (creativity.prompts draws each set with a bounded number of attempts, and would say only
    that the graph is too sparse, after minutes).

    - A demonstration may not share its endpoints with a test prompt, so the test prompts
      may take at most half the endpoint pairs a base walk can join.
    - A demonstration may not use a held-out composition: a walk of h hops has h - 1, so it
      is usable with probability about (1 - fraction)^(h - 1). The draw gives up below one
      usable walk in 200 attempts; this refuses below one in 100."""
    t = cfg["task"]
    low, high = max(t["min_hops"], t["min_endpoint_distance"]), t["max_hops"]
    tests = t["test_prompts_per_level"] * t["levels"]
    pairs = endpoint_pairs(graph, low, high, enough=2 * tests)
    if tests > pairs / 2:
        raise ConfigError(
            f"task.test_prompts_per_level={t['test_prompts_per_level']}: {tests} test prompts (x task.levels={t['levels']}) "
            f"would take most of the about {pairs} endpoint pairs this graph has {low}..{high} hops apart, and no "
            f"demonstration may share a test prompt's endpoints; use at most {pairs // (2 * t['levels'])} per level, "
            "or a larger graph (graph.num_nodes)")
    fraction = t["heldout_composition_fraction"]
    usable = float(np.mean([(1 - fraction) ** (h - 1) for h in range(low, high + 1)]))
    if usable < 0.01:
        raise ConfigError(
            f"task.heldout_composition_fraction={fraction}: a demonstration of {low}..{high} hops avoids every "
            f"held-out composition with probability about {usable:.2g}, too rarely to draw "
            f"{t['train_prompts_per_level']} per level (task.train_prompts_per_level); lower the fraction")


def check_task_feasible(cfg: dict) -> None:
    """Build the graph and a few prompts per level now, so a too-sparse graph fails before any
    job; then check that the full counts can be drawn (check_task_size)."""
    from creativity.prompts import build_prompts
    from creativity.task import prompt_spec, task_graph

    t = cfg["task"]
    try:
        graph = task_graph(cfg["graph"], t, cfg["seed"])
        probe = min(10, t["test_prompts_per_level"], t["train_prompts_per_level"])
        probe_cfg = dict(t, test_prompts_per_level=probe, train_prompts_per_level=probe,
                         ood_prompts=min(probe, t["ood_prompts"]))
        build_prompts(graph, prompt_spec(probe_cfg, cfg["seed"] + 1))
    except ValueError as err:
        raise ConfigError(str(err)) from None
    check_task_size(cfg, graph)


def read_config(cfg: dict) -> dict:
    """The config as Snakemake loaded it, made ready for check_config: aliases refused before
    anything walks it, then numbers such as 3e12 made numbers."""
    check_no_aliases(cfg)
    return coerce_scientific(cfg)


def check_config(cfg: dict, schema_path) -> None:
    """All value checks but the grid's (pipeline.grid.plan_grid), in the order that gives the
    clearest first message. The device is checked when jobs are about to start (check_device,
    from common.smk's onstart), so that a dry run on a machine without CUDA can still plan a
    GPU grid."""
    check_finite(cfg)
    check_schema(cfg, schema_path)
    check_related_keys(cfg)
    check_decoding_menu(cfg)
    check_tuning(cfg)
    check_task_feasible(cfg)


def exit_on_yaml_error(*paths) -> None:
    """For the Snakefile, before its `configfile:` reads config.yaml, and for common.smk, on the
    --configfile presets Snakemake has read already."""
    for path in paths:
        if Path(path).exists():
            try:
                check_yaml_syntax(path)
            except ConfigError as err:
                sys.exit(f"ConfigError: {err}")


if __name__ == "__main__":
    # Snakemake reads a --configfile before the workflow, and says only "not valid JSON or YAML".
    import argparse

    parser = argparse.ArgumentParser(
        prog="python -m pipeline.config",
        description="Check that config files (config.yaml, a preset) are YAML that Snakemake can read, "
                    "naming the line and column of a syntax error or an alias. The values are checked "
                    "when the workflow is read: snakemake -n --configfile PRESET.")
    parser.add_argument("files", nargs="+", metavar="FILE", help="a config file, e.g. workflow/presets/tiny.yaml")
    for arg in parser.parse_args().files:
        try:
            check_yaml_syntax(arg)
        except (ConfigError, OSError) as err:
            sys.exit(f"ConfigError: {err}")
        print(f"{arg}: valid YAML")
