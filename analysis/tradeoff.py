"""The novelty–utility trade-off: how novelty of valid outputs changes with utility level.

Per run and decoding setting, OLS of the mean novelty of valid outputs
(metrics.novelty_valid) on the utility level (level >= 1; level 0 is the pooled
row). A negative slope means the model takes safer, less surprising walks when
the prompt carries more constraints. Levels with no valid output have NaN
novelty and are skipped.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
import statsmodels.api as sm

CI_LEVEL = 0.95


@dataclass(frozen=True)
class Slope:
    slope: float
    ci_low: float
    ci_high: float
    n_levels: int
    note: str = ""


def novelty_level_slope(levels, novelty) -> Slope:
    """OLS slope of novelty on level, with its t-interval (needs >= 3 levels for a CI)."""
    levels, novelty = np.asarray(levels, float), np.asarray(novelty, float)
    ok = np.isfinite(levels) & np.isfinite(novelty)
    lv, nv = levels[ok], novelty[ok]
    n = len(np.unique(lv))
    if n < 2:
        return Slope(np.nan, np.nan, np.nan, n, f"{n} level(s) with valid outputs; need >= 2")
    res = sm.OLS(nv, sm.add_constant(lv)).fit()
    if len(lv) <= 2:
        return Slope(float(res.params[1]), np.nan, np.nan, n, "2 points: exact fit, no interval")
    lo, hi = res.conf_int(alpha=1 - CI_LEVEL)[1]
    return Slope(float(res.params[1]), float(lo), float(hi), n)


def tradeoff_slopes(metrics: pd.DataFrame) -> pd.DataFrame:
    """One row per (run_id, decoding): slope, ci_low, ci_high, n_levels, note."""
    rows = []
    per_level = metrics[metrics["level"] >= 1]
    for (run_id, decoding), grp in per_level.groupby(["run_id", "decoding"], sort=True):
        rows.append({"run_id": run_id, "decoding": decoding} | asdict(novelty_level_slope(grp["level"], grp["novelty_valid"])))
    return pd.DataFrame(rows, columns=["run_id", "decoding", *Slope.__dataclass_fields__])
