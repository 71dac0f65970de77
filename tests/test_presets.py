"""Presets as overlays on config.yaml: short, merged as Snakemake merges them, and valid."""
from pathlib import Path

import pytest

from pipeline.config import check_schema, coerce_scientific
from pipeline.presets import load_config, merge

REPO = Path(__file__).resolve().parents[1]
SCHEMA = REPO / "workflow/schemas/config.schema.yaml"
PRESETS = sorted((REPO / "workflow/presets").glob("*.yaml"))


def test_merge_replaces_lists_and_values_and_merges_dicts():
    defaults = {"a": {"x": 1, "y": [1, 2]}, "b": 3, "c": {"z": 1}}
    merged = merge(defaults, {"a": {"y": [9]}, "b": {"new": 1}})
    assert merged == {"a": {"x": 1, "y": [9]}, "b": {"new": 1}, "c": {"z": 1}}
    assert defaults["a"]["y"] == [1, 2]  # the defaults are not changed


@pytest.mark.parametrize("preset", PRESETS, ids=lambda p: p.name)
def test_each_preset_is_a_short_overlay_that_validates(preset):
    text = preset.read_text()
    assert len(text.splitlines()) <= 60  # it lists what it changes, not the whole config
    assert "null" not in text  # no workarounds for keys it cannot remove
    check_schema(coerce_scientific(load_config(preset)), SCHEMA)


def test_tiny_overlay_changes_only_what_it_lists():
    tiny, default = load_config(REPO / "workflow/presets/tiny.yaml"), load_config()
    assert tiny["graph"]["num_nodes"] == 30 and tiny["graph"]["zipf_exponent"] == default["graph"]["zipf_exponent"]
    assert tiny["architectures"] == default["architectures"]
