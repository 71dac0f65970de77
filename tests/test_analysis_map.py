"""The map in analysis/__init__.py cannot rot: every function it names exists, every kind it
names is a documented kind of fits.parquet, its figures are exactly plot.smk's, each drawn
by the function it names, and every analysis module is on it."""
import importlib
import re

import analysis
from analysis import fits
from conftest import REPO

MODULES = {path.stem for path in (REPO / "analysis").glob("*.py")} - {"__init__"}
NAMED = re.compile(r"\b([a-z_]+)\.([a-z_]\w*)\b")  # module.function


def named_functions(text: str) -> set[tuple[str, str]]:
    """(module, function) for every module.function in text whose module is an analysis module."""
    return {(m, f) for m, f in NAMED.findall(text) if m in MODULES and f not in ("py", "png", "parquet", "html")}


def map_entries(text: str) -> dict[str, list[tuple[str, str]]]:
    """fit / figure / page -> [(module.function, the rest of its line)], continuation lines
    (indented, no label) belonging to the label above them."""
    entries, label = {"fit": [], "figure": [], "page": []}, None
    for line in text.splitlines():
        match = re.match(r"^ {4}(?:(fit|figure|page):)?\s+(\S.*)$", line)
        if not match:
            label = None
            continue
        label = match.group(1) or label
        if label:
            first, _, rest = match.group(2).partition("  ")
            entries[label].append((first.strip(), rest.strip()))
    return entries


def test_every_function_the_map_names_exists():
    named = named_functions(analysis.__doc__)
    assert len(named) > 25, named  # the map was read at all
    missing = [f"{m}.{f}" for m, f in sorted(named) if not hasattr(importlib.import_module(f"analysis.{m}"), f)]
    assert not missing, f"analysis/__init__.py names what does not exist: {missing}"


def test_every_kind_the_map_names_is_a_kind_of_fits_parquet():
    documented = {kind for line in fits.__doc__.split("Kinds")[1].splitlines()
                  for kind in re.findall(r"^ {4}([a-z_]+(?:, [a-z_]+)*)", line) for kind in kind.split(", ")}
    kinds = {kind for _, rest in map_entries(analysis.__doc__)["fit"]
             for kind in re.findall(r"[a-z_]+", rest.split("(")[0])}  # "(called by ...)" is a remark
    assert kinds and kinds <= documented, kinds - documented


def test_the_maps_figures_are_plot_smks_each_drawn_by_the_function_named():
    drawn = {rest.removesuffix(".png"): first for first, rest in map_entries(analysis.__doc__)["figure"]
             if first != "-"}
    rules = dict(re.findall(r'"(\w+)": \("([\w.]+)"', (REPO / "workflow/rules/plot.smk").read_text()))
    assert rules and drawn == rules


def test_every_analysis_module_is_on_the_map():
    """A new module is placed: named in a question's row, or among the shared pieces."""
    shared = set(re.findall(r"^(\w+) {2,}", analysis.__doc__.split("Shared pieces:")[1], flags=re.M))
    assert shared <= MODULES, shared - MODULES
    assert MODULES == shared | {m for m, _ in named_functions(analysis.__doc__)}


def test_the_map_reader_finds_a_misnamed_function():
    """The check above can fail: a name that does not exist is found and reported."""
    text = "    fit:    paired.paired_rows     paired_delta\n    page:   findings.no_such_sentence\n"
    named = named_functions(text)
    assert named == {("paired", "paired_rows"), ("findings", "no_such_sentence")}
    assert not hasattr(importlib.import_module("analysis.findings"), "no_such_sentence")
    assert map_entries(text)["fit"] == [("paired.paired_rows", "paired_delta")]
