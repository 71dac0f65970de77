"""Intervals that keep their coverage with few seeds.

A run's value on the test prompts varies for two reasons: the seed (initialisation, data
order: a random effect shared by every prompt of that run) and the prompts (a finite
sample of the task, the same prompts for every seed). A percentile bootstrap over 3 seeds
covers a seed mean's true value about 71% of the time at a nominal 95%: three seeds
cannot show the seed spread's tails. So every seed-level quantity here is

    estimate ± sqrt((t(S-1)·sd_seed)² + (z·sd_prompt)²)

* sd_seed² = s² / S, from the S seeds' values on the observed prompts (for a paired
  difference, of the per-seed differences, seeds paired by seed value). It holds the seed
  effect and the part of the prompt noise that differs between seeds; with S - 1 degrees
  of freedom it takes Student's t (4.30 at S = 3).
* sd_prompt² = the variance, over prompt resamples (the same resampled prompts for every
  seed and both arms, so paired on prompt id), of the mean over seeds. It holds the noise
  of the shared prompt set that the seeds cannot see, because it moves every seed alike;
  estimated from many prompts, it takes the normal quantile.

The seed × prompt interaction is counted in both terms, so the interval errs wide, never
narrow. With one seed (or one seed pair) there is no interval: the row says so.
`simulate_coverage` checks the coverage on data shaped like a run
(`python -m analysis.intervals` prints it); tests/test_intervals.py asserts >= 90%.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.stats import norm
from scipy.stats import t as t_dist

from analysis.resample import CI_LEVEL

METHOD = "t_seeds_plus_prompt_bootstrap"
# Ranges a quantity cannot leave: its interval is clipped to them (which never lowers coverage).
SHARES = ("correct_rate", "validity", "copy_rate", "copy_share", "combinatorial_novelty", "uses_heldout_rate",
          "revisit_rate", "novelty_lc")
NON_NEGATIVE = ("creativity", "creativity_lc", "novelty_valid", "novelty_correct", "utility", "hypervolume")


def bounds(metric: str, difference: bool = False) -> tuple[float, float]:
    """The range of a metric (of a difference of two values of it, if difference)."""
    if metric in SHARES or metric.startswith("error_"):
        return (-1.0, 1.0) if difference else (0.0, 1.0)
    if metric in NON_NEGATIVE and not difference:
        return (0.0, np.inf)
    return (-np.inf, np.inf)


@dataclass(frozen=True)
class Interval:
    estimate: float
    low: float
    high: float
    n_seeds: int
    df: float  # of the seed term
    note: str = ""

    def fields(self) -> dict:
        """The fits.parquet columns this interval fills."""
        has = np.isfinite(self.low)
        return dict(estimate=self.estimate, ci_low=self.low, ci_high=self.high, ci_method=METHOD if has else "",
                    note=self.note)


def seed_interval(per_seed: np.ndarray, limits: tuple[float, float] = (-np.inf, np.inf)) -> Interval:
    """Interval of the mean over seeds. per_seed: (1 + resamples, seeds), row 0 on the
    observed prompts, rows 1.. on prompt resamples; NaN where a seed has no value.
    limits: the range the quantity cannot leave (bounds()); the interval is clipped to it."""
    per_seed = np.atleast_2d(np.asarray(per_seed, float))
    observed = per_seed[0]
    keep = np.isfinite(observed)
    n = int(keep.sum())
    if n == 0:
        return Interval(np.nan, np.nan, np.nan, 0, np.nan, "no seed has a value")
    estimate = float(observed[keep].mean())
    if n < 2:
        return Interval(estimate, np.nan, np.nan, n, np.nan, "1 seed: no interval")
    v_seed = float(observed[keep].var(ddof=1) / n)
    boot = per_seed[1:, keep]
    boot = boot[np.isfinite(boot).all(axis=1)].mean(axis=1) if len(boot) else np.zeros(0)
    v_prompt = float(boot.var(ddof=1)) if len(boot) >= 2 else 0.0
    total = v_seed + v_prompt
    if total == 0:  # every seed and every resample agree: the value is exact
        return Interval(estimate, estimate, estimate, n, np.inf)
    q = 0.5 + CI_LEVEL / 2
    half = float(np.hypot(t_dist.ppf(q, n - 1) * np.sqrt(v_seed), norm.ppf(q) * np.sqrt(v_prompt)))
    return Interval(estimate, max(estimate - half, limits[0]), min(estimate + half, limits[1]), n, float(n - 1))


def paired_interval(treatment: np.ndarray, baseline: np.ndarray,
                    limits: tuple[float, float] = (-np.inf, np.inf)) -> Interval:
    """Interval of the mean over seeds of treatment − baseline, each (1 + resamples, seeds)
    with the same seed columns and prompt resamples; seeds missing on either side are left out."""
    return seed_interval(np.asarray(treatment, float) - np.asarray(baseline, float), limits)


# ------------------------------------------------------------------ coverage simulation

@dataclass(frozen=True)
class RunShape:
    """A synthetic study shaped like the default run: each seed answers the same test
    prompts; a prompt's value is a shared prompt effect, an arm × prompt effect, a seed
    random effect and a seed × prompt effect. Scales are in units of the per-prompt noise."""

    n_seeds: int = 3
    n_prompts: int = 200
    sd_seed: float = 0.5
    sd_prompt: float = 1.0
    sd_arm_prompt: float = 0.5
    sd_seed_prompt: float = 1.0
    effect: float = 0.3  # true treatment − baseline
    nested: bool = False  # True: every seed answers its own prompts (prompts nested in seeds)


def _simulate_arms(shape: RunShape, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(seeds, prompts) values of the two arms; the true means are effect and 0."""
    s, p = shape.n_seeds, shape.n_prompts
    shared = rng.normal(0, shape.sd_prompt, (s, p) if shape.nested else (1, p))
    arms = []
    for mean in (shape.effect, 0.0):
        arms.append(mean + shared + rng.normal(0, shape.sd_arm_prompt, (s, p) if shape.nested else (1, p))
                    + rng.normal(0, shape.sd_seed, (s, 1)) + rng.normal(0, shape.sd_seed_prompt, (s, p)))
    return arms[0], arms[1]


def _per_seed_means(values: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """(1 + resamples, seeds) prompt-weighted means of (seeds, prompts) values."""
    return (weights @ values.T) / weights.sum(axis=1, keepdims=True)


def simulate_coverage(shape: RunShape = RunShape(), n_studies: int = 400, n_boot: int = 200,
                      seed: int = 0) -> dict[str, float]:
    """Share of simulated studies whose 95% interval covers the truth, for a seed mean
    (the treatment arm's) and for the paired difference; and, for contrast, of a percentile
    bootstrap over seeds and prompts jointly (what the study used before)."""
    rng = np.random.default_rng(seed)
    hits = {"seed_mean": 0, "paired_difference": 0, "percentile_seed_mean": 0}
    for _ in range(n_studies):
        treat, base = _simulate_arms(shape, rng)
        w = np.vstack([np.ones(shape.n_prompts),
                       rng.multinomial(shape.n_prompts, np.full(shape.n_prompts, 1 / shape.n_prompts), n_boot)])
        t_seeds, b_seeds = _per_seed_means(treat, w), _per_seed_means(base, w)
        mean = seed_interval(t_seeds)
        diff = paired_interval(t_seeds, b_seeds)
        hits["seed_mean"] += mean.low <= shape.effect <= mean.high
        hits["paired_difference"] += diff.low <= shape.effect <= diff.high
        seed_w = np.vstack([np.ones(shape.n_seeds),
                            rng.multinomial(shape.n_seeds, np.full(shape.n_seeds, 1 / shape.n_seeds), n_boot)])
        joint = (t_seeds * seed_w).sum(axis=1) / seed_w.sum(axis=1)
        lo, hi = np.percentile(joint[1:], [2.5, 97.5])
        hits["percentile_seed_mean"] += lo <= shape.effect <= hi
    return {k: float(v) / n_studies for k, v in hits.items()}


def main() -> None:
    for name, shape in (("shared prompts", RunShape()), ("prompts nested in seeds", RunShape(nested=True)),
                        ("no seed effect", RunShape(sd_seed=0.0)), ("seed effect dominates", RunShape(sd_seed=2.0))):
        cover = simulate_coverage(shape)
        print(f"{name:24s} 3 seeds: " + ", ".join(f"{k} {v:.3f}" for k, v in cover.items()))


if __name__ == "__main__":
    main()
