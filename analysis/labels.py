"""Names shared by the fits, the figures and the report pages: architecture labels and
display names (from the registry, models/architectures.py), default decodings, which
decodings are oracles, shape axes, selecting rows of fits.parquet. No fitting, no
matplotlib and no torch here, so every module can import it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from models.architectures import ARCHITECTURES, EBT_FAMILY, FAMILY_DISPLAY, TPP_FAMILY, label_of

LABEL = "arch_label"  # derived (arch, variant) column added to working copies of the tables
BASELINE_RUN = "feasible_baseline"  # run_id of the feasible-set null (results/baseline/)
# Each model family's default decoding (keyed by the tables' arch column): greedy for
# Transformer++, the training number of optimisation steps for the EBT.
DEFAULT_DECODING = {TPP_FAMILY: "greedy", EBT_FAMILY: "think_x1"}
# The reward tilt re-ranks samples by the scorer itself: an oracle, never compared.
ORACLE_PREFIXES = ("tilt_",)
# Columns of fits.parquet (documented in fits.py); here so figures can read an empty table.
FITS_COLUMNS = [
    "kind", "arch", "variant", "decoding", "metric", "x", "subset", "scope", "x_value", "budget", "run_id", "level",
    "parameter", "estimate", "ci_low", "ci_high", "ci_method", "n", "n_seeds", "n_excluded_diverged", "n_boot",
    "seed", "method", "note",
]
# Display name of every label: each architecture's, and each family's for rows of a family as a whole.
ARCH_NAMES = {**FAMILY_DISPLAY, **{a.label: a.display for a in ARCHITECTURES.values()}}
# The family (the tables' arch column) of every label.
LABEL_FAMILY = {**{family: family for family in FAMILY_DISPLAY}, **{a.label: a.family for a in ARCHITECTURES.values()}}
SHAPE_AXES = ("depth", "width", "width_depth_ratio", "params")
AXIS_LABELS = {"depth": "depth L (layers)", "width": "width d", "width_depth_ratio": "width/depth ratio d/L",
               "params": "parameters N (non-embedding)", "flops_measured": "training compute C (FLOPs, measured)",
               "tokens": "training tokens D"}


def arch_label(arch: str, variant) -> str:
    """Label of a table's (arch, variant) pair: "tpp", "ebt-system1", "ebt-system2"
    (models.architectures.label_of; a missing variant, NaN in a table, is no variant)."""
    if isinstance(variant, float) and np.isnan(variant):
        variant = None
    return label_of(str(arch), variant)


def arch_name(label: str) -> str:
    """Display name of an architecture label: "ebt-system1" -> "EBT System 1"."""
    return ARCH_NAMES.get(label, str(label))


def with_labels(table: pd.DataFrame) -> pd.DataFrame:
    """Copy of table with the LABEL column (arch alone when the variant is the arch or missing)."""
    arch = table["arch"] if "arch" in table.columns else pd.Series("", index=table.index, dtype=object)
    variant = table["variant"] if "variant" in table.columns else pd.Series(None, index=table.index, dtype=object)
    labels = [arch_label(a, v) for a, v in zip(arch, variant)]
    return table.assign(**{LABEL: pd.Series(labels, index=table.index, dtype=object)})


def fit_rows(fits: pd.DataFrame, **match) -> pd.DataFrame:
    """Rows of fits.parquet matching column=value pairs, with the architecture label."""
    if fits is None or fits.empty:
        return pd.DataFrame(columns=[*FITS_COLUMNS, LABEL])
    mask = np.ones(len(fits), dtype=bool)
    for col, value in match.items():
        mask &= (fits[col] == value).to_numpy()
    return with_labels(fits[mask])


def default_decoding(table: pd.DataFrame) -> pd.DataFrame:
    """Rows at their architecture's default decoding (DEFAULT_DECODING)."""
    return table[table["decoding"] == table["arch"].map(DEFAULT_DECODING)]


def is_oracle(decoding) -> np.ndarray | bool:
    """True for decodings that use the scorer (reward tilt): labelled, kept out of comparisons."""
    if isinstance(decoding, str):
        return decoding.startswith(ORACLE_PREFIXES)
    return pd.Series(decoding, dtype=object).astype(str).str.startswith(ORACLE_PREFIXES).to_numpy()


def shape_values(table: pd.DataFrame, axis: str) -> pd.Series:
    """The shape axis as a column; width_depth_ratio is width / depth (d / L)."""
    if axis == "width_depth_ratio":
        return table["width"].astype(float) / table["depth"].astype(float)
    if axis in SHAPE_AXES:
        return table[axis].astype(float)
    raise ValueError(f"unknown shape axis {axis!r}; choose from {SHAPE_AXES}")


def in_distribution(table: pd.DataFrame) -> pd.DataFrame:
    """Rows of the in-distribution test split (all rows when the table has no split column)."""
    return table[table["split"] == "test"] if "split" in table.columns else table


def flops_text(value: float, digits: int = 3) -> str:
    """`digits` significant digits without the exponent's plus sign and zero: 6e9, 1.39e12."""
    return f"{value:.{digits}g}".replace("e+0", "e").replace("e+", "e")
