"""One registry names the architectures (models/architectures.py); these fail when a spelling
elsewhere drifts from it."""
import ast
import re
import subprocess
import sys

import pandas as pd
import pytest
import yaml

from analysis.labels import ARCH_NAMES, DEFAULT_DECODING, LABEL, LABEL_FAMILY, with_labels
from analysis.plotting import ARCH_COLORS, ARCH_ORDER
from conftest import REPO
from models.architectures import ARCHITECTURES, EBT_FAMILY, EBT_VARIANTS, FAMILIES, TPP, TPP_FAMILY, of_model
from models.model import EBTConfig

SCHEMA = yaml.safe_load((REPO / "workflow/schemas/config.schema.yaml").read_text())
CONFIG = yaml.safe_load((REPO / "config.yaml").read_text())


def test_the_schema_lists_exactly_the_registry():
    """The schema cannot import Python, so it spells the names itself: the architectures enum,
    one tuning search space per architecture (the EBT one for each EBT), and one decoding
    section per family."""
    props = SCHEMA["properties"]
    assert props["architectures"]["items"]["enum"] == list(ARCHITECTURES)
    search = props["tuning"]["properties"]["search"]["properties"]
    assert list(search) == list(ARCHITECTURES)
    for name, arch in ARCHITECTURES.items():
        assert search[name]["$ref"] == ("#/$defs/search_ebt" if arch.is_ebt else "#/$defs/search_tpp"), name
    assert sorted(props["decoding"]["required"]) == sorted(["num_samples", *FAMILIES])


def test_the_default_config_trains_and_tunes_every_registered_architecture():
    assert CONFIG["architectures"] == list(ARCHITECTURES)
    assert list(CONFIG["tuning"]["search"]) == list(ARCHITECTURES)


def test_every_architecture_has_its_own_label_name_colour_and_default_decoding():
    labels = [a.label for a in ARCHITECTURES.values()]
    assert len(set(labels)) == len(labels)
    assert len({a.colour for a in ARCHITECTURES.values()}) == len(ARCHITECTURES)
    for arch in ARCHITECTURES.values():
        assert ARCH_NAMES[arch.label] == arch.display
        assert ARCH_COLORS[arch.label] == arch.colour
        assert LABEL_FAMILY[arch.label] == arch.family
        assert DEFAULT_DECODING[arch.family]
    assert list(ARCH_ORDER[: len(labels)]) == labels
    assert set(DEFAULT_DECODING) == set(FAMILIES)


def test_a_tables_arch_and_variant_columns_map_back_to_the_registry():
    """A run's summary writes (arch, variant) = (family, variant); the figures' label of that
    pair is the registry's, and the pair names exactly one architecture."""
    table = pd.DataFrame({"arch": [a.family for a in ARCHITECTURES.values()],
                          "variant": [a.variant for a in ARCHITECTURES.values()]})
    assert with_labels(table)[LABEL].tolist() == [a.label for a in ARCHITECTURES.values()]
    for arch in ARCHITECTURES.values():
        assert of_model(arch.family, arch.variant if arch.is_ebt else None) is arch
    assert TPP.family == TPP_FAMILY and not TPP.is_ebt
    with pytest.raises(ValueError, match="no architecture"):
        of_model(EBT_FAMILY, "system3")


def test_an_ebt_config_takes_exactly_the_registered_variants():
    base = {**CONFIG["ebt"], "alpha": 1.0}
    for variant in EBT_VARIANTS:
        assert EBTConfig(variant=variant, **base).variant == variant
    with pytest.raises(ValueError, match="EBT variant"):
        EBTConfig(variant="system3", **base)


# Packages whose code must spell an architecture only through the registry.
PACKAGES = ("creativity", "models", "analysis", "pipeline", "workflow")
REGISTRY = REPO / "models/architectures.py"
RESPELLED = re.compile(r"ebt_system\d+|system\d+|ebt-system\d+")  # a config name, variant or label


def string_literals(path) -> list[tuple[int, str]]:
    """(line, value) of every string constant in a Python file's code, docstrings left out
    (they may show a spelling as an example). A Snakemake file is not Python: every quoted
    string on a line that is not a comment."""
    text = path.read_text()
    if path.suffix == ".smk":
        return [(n, m.group(1)) for n, line in enumerate(text.splitlines(), 1) if not line.lstrip().startswith("#")
                for m in re.finditer(r"[\"']([^\"']*)[\"']", line)]
    tree = ast.parse(text)
    docstrings = {id(node.value) for node in ast.walk(tree) if isinstance(node, ast.Expr)}
    return [(node.lineno, node.value) for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings]


def test_no_code_outside_the_registry_spells_a_config_name_variant_or_label():
    found = [f"{path.relative_to(REPO)}:{line}: {value!r}"
             for package in PACKAGES for path in sorted((REPO / package).rglob("*"))
             if path.suffix in (".py", ".smk") and path != REGISTRY
             for line, value in string_literals(path) if RESPELLED.fullmatch(value)]
    assert not found, "spell these through models/architectures.py:\n" + "\n".join(found)


def test_the_drift_check_sees_a_respelled_name(tmp_path):
    """The scan above finds a spelling in code and in a Snakemake rule, not in a docstring."""
    (tmp_path / "module.py").write_text('"""Labels such as "ebt-system1"."""\nVARIANT = "system2"\n')
    (tmp_path / "rule.smk").write_text('# "ebt_system1" in a comment\nARCH = "ebt_system1"\n')
    assert string_literals(tmp_path / "module.py") == [(2, "system2")]
    assert string_literals(tmp_path / "rule.smk") == [(2, "ebt_system1")]


def test_the_registry_and_the_labels_load_without_torch():
    """The parse-time checks and every analysis job import them; torch takes seconds to load."""
    code = "import sys, models.architectures, analysis.labels; sys.exit('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], cwd=REPO).returncode == 0
