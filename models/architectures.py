"""The architectures of the study: the one place each is named. Every other spelling of an
architecture, in the config, the models, the tables and the figures, is derived from here.

An architecture has one entry, which gives each of its spellings a use:

    name     the config's (`architectures`, tuning.search.<name>), the {arch} wildcard, run ids   ebt_system1
    family   the model it builds (models.model.build_model), its decoding.<family> config
             section, and the `arch` column of every table                                         ebt
    variant  how an EBT trains (EBTConfig.variant), and the `variant` column of every table;
             the Transformer++ has none, so its variant is its family                              system1
    label    family and variant in one string: how figures and fits group runs
             (analysis.labels.LABEL)                                                               ebt-system1
    display  what a reader sees in the figures and on the findings page                            EBT System 1
    colour   its colour, the same in every figure

No torch here: the parse-time config checks and the analysis import this module.
workflow/schemas/config.schema.yaml cannot import it and lists the names itself;
tests/test_architectures.py checks that the two agree.
"""
from __future__ import annotations

from dataclasses import dataclass

TPP_FAMILY = "tpp"  # Transformer++: next-token logits from an output head
EBT_FAMILY = "ebt"  # Energy-Based Transformer: a candidate distribution refined by descending an energy
FAMILY_DISPLAY = {TPP_FAMILY: "Transformer++", EBT_FAMILY: "EBT"}
FAMILIES = tuple(FAMILY_DISPLAY)
# How an EBT trains (the official ebt_s1.sh and ebt_s2.sh): System 1 takes a fixed number of
# steps, one energy landscape each; System 2 a random number on one landscape, with replay.
SYSTEM1, SYSTEM2 = "system1", "system2"


def label_of(family: str, variant: str | None) -> str:
    """The label of a (family, variant) pair: the family alone where there is no variant (the
    Transformer++, or rows of a family as a whole), else "family-variant"."""
    return family if variant in (None, "", family) else f"{family}-{variant}"


@dataclass(frozen=True)
class Architecture:
    name: str
    family: str
    variant: str
    display: str
    colour: str

    @property
    def label(self) -> str:
        return label_of(self.family, self.variant)

    @property
    def is_ebt(self) -> bool:
        return self.family == EBT_FAMILY


ARCHITECTURES = {a.name: a for a in (
    Architecture("tpp", TPP_FAMILY, TPP_FAMILY, "Transformer++", "#1f77b4"),
    Architecture("ebt_system1", EBT_FAMILY, SYSTEM1, "EBT System 1", "#ff7f0e"),
    Architecture("ebt_system2", EBT_FAMILY, SYSTEM2, "EBT System 2", "#2ca02c"),
)}
TPP = ARCHITECTURES["tpp"]  # the baseline arm of every EBT − Transformer++ comparison
EBT_VARIANTS = tuple(a.variant for a in ARCHITECTURES.values() if a.is_ebt)


def of_model(family: str, ebt_variant: str | None) -> Architecture:
    """The entry of a model family and, for an EBT, its EBTConfig.variant."""
    for arch in ARCHITECTURES.values():
        if arch.family == family and (not arch.is_ebt or arch.variant == ebt_variant):
            return arch
    raise ValueError(f"no architecture of family {family!r} and variant {ebt_variant!r}; "
                     f"known: {', '.join(ARCHITECTURES)} (models/architectures.py)")
