"""The crossover compute of two log-linear trends, and its interval."""
import numpy as np
import pandas as pd
import pytest

from analysis import crossover
from analysis.findings import crossover_sentence
from analysis.labels import FITS_COLUMNS

LN10 = np.log(10)


def lines(intercepts, slopes):
    """(intercepts, slopes) as (1, seeds) arrays."""
    return np.array([intercepts], float), np.array([slopes], float)


def test_meeting_lines_give_the_hand_computed_crossover():
    # ln gap = 1 − 0.1·u per seed exactly: the EBT is worse (higher excess loss) until u = 10.
    tpp = lines([0.0, 0.0, 0.0], [-0.1, -0.1, -0.1])
    ebt = lines([1.0, 1.0, 1.0], [-0.2, -0.2, -0.2])
    budgets = np.exp([7.0, 8.0, 9.0])
    row = crossover.crossover_row("excess_loss", "system1", ebt, tpp, budgets)
    assert row["estimate"] == pytest.approx(10 / LN10)
    # the seeds agree exactly, so the interval shrinks to the grid points around the root
    assert row["ci_low"] <= row["estimate"] <= row["ci_high"]
    assert row["ci_high"] - row["ci_low"] < 0.05
    assert "the trends meet at 2.2e+04 FLOPs" in row["note"]
    assert "the EBT is behind at the largest budget" in row["note"]


def test_seed_spread_widens_the_interval_and_it_keeps_the_root():
    tpp = lines([0.0, 0.0, 0.0], [-0.1, -0.1, -0.1])
    ebt = lines([0.9, 1.0, 1.1], [-0.2, -0.19, -0.21])
    row = crossover.crossover_row("excess_loss", "system1", ebt, tpp, np.exp([7.0, 8.0, 9.0]))
    root = -1.0 / (-0.1) / LN10
    assert row["estimate"] == pytest.approx(root, rel=1e-6)
    assert row["ci_low"] < root < row["ci_high"]
    assert row["ci_high"] - row["ci_low"] > 0.1


def test_diverging_lines_have_no_crossover():
    tpp = lines([0.0, 0.0, 0.0], [-0.2, -0.2, -0.2])
    ebt = lines([1.0, 1.1, 0.9], [-0.1, -0.1, -0.1])  # worse and falling more slowly: never meets ahead
    row = crossover.crossover_row("excess_loss", "system2", ebt, tpp, np.exp([7.0, 8.0, 9.0]))
    assert np.isnan(row["estimate"])
    assert "no crossover within 3 decades of the largest budget at the fitted slopes" in row["note"]
    assert "the EBT is behind" in row["note"]


def test_creativity_higher_is_better():
    # ln C gap = −1 + 0.1·u: the EBT's creativity is lower until u = 10, so it is behind now.
    tpp = lines([0.0, 0.0], [0.1, 0.1])
    ebt = lines([-1.0, -1.0], [0.2, 0.2])
    row = crossover.crossover_row("creativity", "system1", ebt, tpp, np.exp([7.0, 9.0]))
    assert row["estimate"] == pytest.approx(10 / LN10)
    assert "creativity: the trends meet" in row["note"] and "behind" in row["note"]


def test_gated_laws_are_not_estimable():
    tpp = lines([0.0, 0.0], [-0.1, -0.1])
    row = crossover.crossover_row("excess_loss", "system1", tpp, tpp, np.exp([7.0, 8.0]),
                                  gate="not estimable: 2 budget(s) spanning 0.43 decade(s)")
    assert np.isnan(row["estimate"]) and "not estimable: 2 budget(s)" in row["note"]


def test_the_findings_page_shows_each_variants_crossover():
    tpp = lines([0.0, 0.0, 0.0], [-0.1, -0.1, -0.1])
    rows = [crossover.crossover_row("excess_loss", v, lines([1.0] * 3, [-0.2] * 3), tpp, np.exp([7.0, 8.0, 9.0]))
            for v in ("system1", "system2")]
    fits = pd.DataFrame([{c: r.get(c, np.nan) for c in FITS_COLUMNS} for r in rows])
    text = crossover_sentence(fits)
    assert text.count("the trends meet at 2.2e+04 FLOPs") == 2
    assert "EBT System 1 vs Transformer++" in text and "EBT System 2 vs Transformer++" in text
