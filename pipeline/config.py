"""Parse-time checks of the config: each refusal names the key (or file, line and column).

workflow/rules/common.smk runs these when the Snakefile is parsed, so a bad config stops
before any job runs and before anything is written. The JSON schema checks types and
ranges; the checks here are the ones a schema cannot express.
"""
from __future__ import annotations

import math
import re
import sys
from pathlib import Path

import jsonschema
import yaml


class ConfigError(Exception):
    pass


def _where(mark) -> str:
    return f"line {mark.line + 1}, column {mark.column + 1}"


def check_yaml_syntax(path) -> None:
    """Snakemake reports a YAML error without the file, line or column; say all three."""
    try:
        yaml.safe_load(Path(path).read_text())
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        # The parser notices a mistake where it can no longer go on; the context says where it began.
        context = f" ({err.context} at {_where(err.context_mark)})" if err.context and err.context_mark else ""
        raise ConfigError(f"{path}, {_where(mark)}: YAML syntax error: {err.problem or err.context}{context}") from None
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: YAML syntax error: {err}") from None


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
        error = max(error.context, key=lambda e: len(e.absolute_path))
    return error


def check_schema(cfg: dict, schema_path) -> None:
    schema = yaml.safe_load(Path(schema_path).read_text())
    errors = sorted(
        (_deepest(e) for e in jsonschema.Draft202012Validator(schema).iter_errors(cfg)),
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
    (its training step count) exists only if decoding.ebt.steps_multipliers holds 1. Checked on
    the config itself: importing models.decoding would load torch at every parse."""
    ebts = [arch for arch in cfg["architectures"] if arch != "tpp"]
    multipliers = cfg["decoding"]["ebt"]["steps_multipliers"]
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


def check_task_feasible(cfg: dict) -> None:
    """Build the graph and a few prompts per level now, so a too-sparse graph fails before any job."""
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


def check_config(cfg: dict, schema_path) -> None:
    """All value checks but the grid's (pipeline.grid.plan_grid), in the order that gives the
    clearest first message. The device is checked when jobs are about to start (check_device,
    from common.smk's onstart), so that a dry run on a machine without CUDA can still plan a
    GPU grid."""
    check_finite(cfg)
    check_schema(cfg, schema_path)
    check_related_keys(cfg)
    check_decoding_menu(cfg)
    check_task_feasible(cfg)


def exit_on_yaml_error(path) -> None:
    """For the Snakefile, before its `configfile:` reads `path`."""
    if Path(path).exists():
        try:
            check_yaml_syntax(path)
        except ConfigError as err:
            sys.exit(f"ConfigError: {err}")


if __name__ == "__main__":
    # Snakemake reads a --configfile before the workflow, and says only "not valid JSON or YAML":
    #   python -m pipeline.config workflow/presets/mine.yaml   names the line and column.
    for arg in sys.argv[1:]:
        try:
            check_yaml_syntax(arg)
        except (ConfigError, OSError) as err:
            sys.exit(f"ConfigError: {err}")
        print(f"{arg}: valid YAML")
