"""Presets are overlays on config.yaml, which holds every default in one place.

`snakemake --configfile PRESET` merges a preset into config.yaml key by key: a dict merges
into the dict it replaces, anything else (a number, a list) replaces the default whole.
merge() calls the function Snakemake merges with (snakemake.utils.update_config), so tests
and tools see exactly the config a run would.

Each preset's run keeps its results apart (results_dir): results of different presets never
mix in one table or report. Within one directory, a changed value reruns exactly the jobs that
read it (Snakemake's params trigger), so editing a preset needs no new directory.
"""
from __future__ import annotations

import copy
from pathlib import Path

import yaml
from snakemake.utils import update_config

DEFAULTS = Path(__file__).resolve().parents[1] / "config.yaml"


def merge(defaults: dict, overlay: dict) -> dict:
    """`overlay` merged into a copy of `defaults`; neither argument is changed."""
    out = copy.deepcopy(defaults)
    update_config(out, copy.deepcopy(overlay))  # in place; it would share the overlay's lists
    return out


def load_config(preset=None) -> dict:
    """config.yaml, with a preset file merged in if given."""
    cfg = yaml.safe_load(DEFAULTS.read_text())
    if preset is not None and Path(preset).resolve() != DEFAULTS:
        cfg = merge(cfg, yaml.safe_load(Path(preset).read_text()) or {})
    return cfg


def results_dir(configfiles) -> str:
    """Where a run with these --configfile presets keeps its results: results/ for config.yaml
    alone, results-<preset name>/ (names joined by +) with presets."""
    names = [Path(f).stem for f in configfiles if Path(f).resolve() != DEFAULTS]
    return "results-" + "+".join(names) if names else "results"
