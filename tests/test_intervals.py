"""Seed-level intervals (analysis/intervals.py): hand values and coverage by simulation."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import norm, t

from analysis import intervals


def test_seed_interval_hand_value():
    # 3 seeds 1, 2, 3 on the observed prompts; resamples move every seed by ±0.1.
    observed = np.array([1.0, 2.0, 3.0])
    per_seed = np.vstack([observed, observed + 0.1, observed - 0.1])
    got = intervals.seed_interval(per_seed)
    v_seed, v_prompt = 1.0 / 3, np.var([2.1, 1.9], ddof=1)
    half = np.hypot(t.ppf(0.975, 2) * np.sqrt(v_seed), norm.ppf(0.975) * np.sqrt(v_prompt))
    assert got.estimate == 2.0 and got.n_seeds == 3
    assert (got.low, got.high) == pytest.approx((2 - half, 2 + half))


def test_one_seed_has_no_interval_and_nan_seeds_are_left_out():
    one = intervals.seed_interval(np.array([[0.5, np.nan], [0.6, np.nan], [0.4, np.nan]]))
    assert one.estimate == 0.5 and np.isnan(one.low) and "1 seed" in one.note
    assert one.fields()["ci_method"] == ""
    none = intervals.seed_interval(np.full((3, 2), np.nan))
    assert np.isnan(none.estimate) and none.n_seeds == 0


def test_paired_interval_cancels_a_shared_seed_effect():
    # The same seed effect in both arms: the per-seed differences are all 0.3.
    seed_effect = np.array([0.0, 5.0, -5.0])
    base = np.vstack([seed_effect] * 4)
    got = intervals.paired_interval(base + 0.3, base)
    assert got.estimate == pytest.approx(0.3) and got.low == pytest.approx(0.3) and got.high == pytest.approx(0.3)
    wide = intervals.seed_interval(base + 0.3)
    assert wide.high - wide.low > 10


@pytest.mark.parametrize("nested", [False, True])
def test_nominal_95_intervals_cover_at_least_90_percent_with_3_seeds(nested):
    """Data shaped like a run: 3 seeds, a seed random effect, prompt effects shared by the
    seeds (or nested in them), seed × prompt noise. The old percentile bootstrap over seeds
    and prompts jointly under-covers on the same data, so the test can tell them apart."""
    shape = intervals.RunShape(n_seeds=3, n_prompts=100, nested=nested)
    cover = intervals.simulate_coverage(shape, n_studies=300, n_boot=100, seed=1)
    print(f"coverage (nested={nested}): {cover}")
    assert cover["seed_mean"] >= 0.90 and cover["paired_difference"] >= 0.90
    assert cover["percentile_seed_mean"] < 0.88


def test_intervals_stay_inside_what_a_quantity_can_be():
    # A rate near 0 over 3 noisy seeds: the t-interval would reach below 0.
    rates = np.array([[0.0, 0.01, 0.09]] * 3)
    raw = intervals.seed_interval(rates)
    clipped = intervals.seed_interval(rates, intervals.bounds("correct_rate"))
    assert raw.low < 0 and clipped.low == 0.0 and clipped.high == raw.high
    assert intervals.bounds("correct_rate", difference=True) == (-1.0, 1.0)
    assert intervals.bounds("error_parse") == (0.0, 1.0) and intervals.bounds("creativity")[0] == 0.0
    assert intervals.bounds("creativity", difference=True) == (-np.inf, np.inf)
