# Helpers and config validation. Validation runs when the Snakefile is parsed,
# so a bad config fails before any job runs and before anything is written.
import sys
from pathlib import Path

import jsonschema
import yaml

sys.path.insert(0, str(Path(workflow.basedir)))

RESULTS = "results"


class ConfigError(Exception):
    pass


def _key_path(error) -> str:
    path = ".".join(str(p) for p in error.absolute_path)
    if error.validator == "additionalProperties":
        unknown = sorted(set(error.instance) - set(error.schema.get("properties", {})))
        return ".".join(filter(None, [path, unknown[0] if unknown else ""]))
    if error.validator == "required":
        return ".".join(filter(None, [path, error.message.split("'")[1]]))
    return path or "<top level>"


def validate_config(cfg: dict, schema_path: str) -> None:
    schema = yaml.safe_load(Path(schema_path).read_text())
    errors = sorted(jsonschema.Draft202012Validator(schema).iter_errors(cfg), key=lambda e: list(e.absolute_path))
    if errors:
        lines = [f"  {_key_path(e)}: {e.message}" for e in errors]
        raise ConfigError("invalid config (workflow/schemas/config.schema.yaml):\n" + "\n".join(lines))
    task, graph = cfg["task"], cfg["graph"]
    if task["min_hops"] > task["max_hops"]:
        raise ConfigError(f"task.min_hops={task['min_hops']} exceeds task.max_hops={task['max_hops']}")
    if graph["num_labels"] < task["levels"]:
        raise ConfigError(
            f"graph.num_labels={graph['num_labels']} is smaller than task.levels={task['levels']}: "
            f"a level-{task['levels']} prompt needs {task['levels'] - 1} constraint labels besides a label on its walk"
        )


try:
    validate_config(config, str(Path(workflow.basedir) / "workflow/schemas/config.schema.yaml"))
except ConfigError as err:
    sys.exit(f"ConfigError: {err}")
