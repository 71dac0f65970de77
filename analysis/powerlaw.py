"""Power laws in one variable, their confidence intervals, and the EBT scaling rate.

* y = a·X^b by OLS of log y on log X (statsmodels); b's CI is the OLS t-interval.
* The same fit bootstrapped over runs (rows resampled with replacement, fixed
  seed) gives percentile CIs that do not assume log-normal errors.
* y = E + A·X^(-b) by nonlinear least squares, for curves that flatten to a floor.
* The scaling-rate ratio of ebt.md: slope_ebt / slope_tpp - 1, where each slope is
  that of log(perplexity) = val_loss (in nats) against log X; computed for any
  pair of groups, e.g. each EBT variant against Transformer++.

Points that cannot be logged (x or y <= 0, or non-finite) are dropped and
counted, never silently: creativity is exactly 0 for a run whose outputs are all
invalid, and such runs say something the caller should see.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import statsmodels.api as sm
from scipy.optimize import curve_fit
from scipy.stats import t as t_dist

CI_LEVEL = 0.95


@dataclass(frozen=True)
class PowerLawFit:
    """y = prefactor · X^exponent. NaN estimates come with a note saying why."""

    exponent: float
    prefactor: float
    exponent_ci: tuple[float, float]  # OLS t-interval
    prefactor_ci: tuple[float, float]  # OLS t-interval, mapped back from log space
    n_points: int  # points used in the fit
    n_dropped: int  # points that could not be logged
    note: str = ""

    @classmethod
    def unidentified(cls, n_points: int, n_dropped: int, note: str) -> "PowerLawFit":
        return cls(np.nan, np.nan, (np.nan, np.nan), (np.nan, np.nan), n_points, n_dropped, note)


@dataclass(frozen=True)
class BootstrapCI:
    low: float
    high: float
    n_boot: int  # resamples whose refit succeeded (the percentiles use these)
    seed: int


def loggable(x, y) -> np.ndarray:
    """Mask of points with finite, positive x and y."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    return np.isfinite(x) & np.isfinite(y) & (x > 0) & (y > 0)


def fit_power_law(x, y) -> PowerLawFit:
    """OLS of log y on log x."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    ok = loggable(x, y)
    n, n_dropped = int(ok.sum()), int((~ok).sum())
    if len(np.unique(x[ok])) < 2:
        return PowerLawFit.unidentified(n, n_dropped, f"need >= 2 distinct x with y > 0; have {len(np.unique(x[ok]))}")
    res = sm.OLS(np.log(y[ok]), sm.add_constant(np.log(x[ok]))).fit()
    log_a, b = res.params
    note = ""
    if n > 2:
        (log_a_lo, log_a_hi), (b_lo, b_hi) = res.conf_int(alpha=1 - CI_LEVEL)
    else:  # a line through two points has no residual degrees of freedom
        log_a_lo = log_a_hi = b_lo = b_hi = np.nan
        note = "2 points: exact fit, no OLS interval"
    return PowerLawFit(float(b), float(np.exp(log_a)), (float(b_lo), float(b_hi)),
                       (float(np.exp(log_a_lo)), float(np.exp(log_a_hi))), n, n_dropped, note)


def _log_slope_intercept(log_x: np.ndarray, log_y: np.ndarray) -> tuple[float, float]:
    """Closed-form OLS, for the thousands of bootstrap refits."""
    dx = log_x - log_x.mean()
    sxx = dx @ dx
    if sxx == 0:
        return np.nan, np.nan
    slope = dx @ (log_y - log_y.mean()) / sxx
    return float(slope), float(log_y.mean() - slope * log_x.mean())


def bootstrap_power_law(x, y, n_boot: int, seed: int) -> tuple[BootstrapCI, BootstrapCI]:
    """Percentile CIs of (exponent, prefactor) from resampling the loggable points.

    Resamples whose x are all equal cannot be fitted and are skipped; n_boot in the
    result counts only the refits used.
    """
    x, y = np.asarray(x, float), np.asarray(y, float)
    ok = loggable(x, y)
    log_x, log_y = np.log(x[ok]), np.log(y[ok])
    rng = np.random.default_rng(seed)
    fits = []
    if len(np.unique(log_x)) >= 2:
        for _ in range(n_boot):
            idx = rng.integers(0, len(log_x), len(log_x))
            fits.append(_log_slope_intercept(log_x[idx], log_y[idx]))
    fits = np.array([f for f in fits if np.isfinite(f[0])]).reshape(-1, 2)
    return _percentile_ci(fits[:, 0], seed), _percentile_ci(np.exp(fits[:, 1]), seed)


def _percentile_ci(values: np.ndarray, seed: int) -> BootstrapCI:
    if len(values) == 0:
        return BootstrapCI(np.nan, np.nan, 0, seed)
    tail = 100 * (1 - CI_LEVEL) / 2
    lo, hi = np.percentile(values, [tail, 100 - tail])
    return BootstrapCI(float(lo), float(hi), len(values), seed)


def power_law_band(x, y, x_grid, n_boot: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Pointwise percentile band of the fitted line at x_grid, for plots."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    ok = loggable(x, y)
    log_x, log_y = np.log(x[ok]), np.log(y[ok])
    log_grid = np.log(np.asarray(x_grid, float))
    rng = np.random.default_rng(seed)
    curves = []
    for _ in range(n_boot):
        idx = rng.integers(0, len(log_x), len(log_x))
        slope, icpt = _log_slope_intercept(log_x[idx], log_y[idx])
        if np.isfinite(slope):
            curves.append(np.exp(icpt + slope * log_grid))
    if not curves:
        nan = np.full(len(log_grid), np.nan)
        return nan, nan
    tail = 100 * (1 - CI_LEVEL) / 2
    lo, hi = np.percentile(np.array(curves), [tail, 100 - tail], axis=0)
    return lo, hi


@dataclass(frozen=True)
class SaturatingFit:
    """y = E + A · X^(-b); CIs are E ± t·se from curve_fit's covariance."""

    E: float
    A: float
    b: float
    ci: dict[str, tuple[float, float]]
    n_points: int
    note: str = ""


def fit_saturating_power_law(x, y) -> SaturatingFit:
    """Nonlinear least squares of y = E + A·X^(-b).

    X is rescaled by its geometric mean inside the fit so A stays O(y) whatever
    the units of X (FLOPs are ~1e15): A is reported for the unscaled X.
    """
    x, y = np.asarray(x, float), np.asarray(y, float)
    ok = np.isfinite(x) & np.isfinite(y) & (x > 0)
    x, y = x[ok], y[ok]
    nan_ci = {k: (np.nan, np.nan) for k in ("E", "A", "b")}
    if len(np.unique(x)) < 4:
        return SaturatingFit(np.nan, np.nan, np.nan, nan_ci, len(x), "need >= 4 distinct x for 3 parameters")
    scale = np.exp(np.mean(np.log(x)))
    u = x / scale

    def model(u, E, A, b):
        return E + A * u ** (-b)

    p0 = (0.9 * y.min(), max(y.max() - y.min(), 1e-12), 0.3)
    try:
        (E, A_u, b), cov = curve_fit(model, u, y, p0=p0, maxfev=20_000)
    except RuntimeError as err:  # did not converge
        return SaturatingFit(np.nan, np.nan, np.nan, nan_ci, len(x), f"curve_fit failed: {err}")
    half = t_dist.ppf(0.5 + CI_LEVEL / 2, max(len(x) - 3, 1)) * np.sqrt(np.diag(cov))
    # A·u^(-b) = A·scale^b · X^(-b); the CI of A is mapped the same way (b held at its estimate).
    to_x = scale**b
    ci = {"E": (E - half[0], E + half[0]), "A": ((A_u - half[1]) * to_x, (A_u + half[1]) * to_x), "b": (b - half[2], b + half[2])}
    return SaturatingFit(float(E), float(A_u * to_x), float(b), {k: tuple(map(float, v)) for k, v in ci.items()}, len(x))


@dataclass(frozen=True)
class ScalingRate:
    """ratio = slope_ebt / slope_tpp - 1 (> 0: EBT's loss falls faster with X)."""

    ratio: float
    ci: BootstrapCI
    slope_ebt: float
    slope_tpp: float
    n_ebt: int
    n_tpp: int
    note: str = ""


def _semi_log_slope(log_x: np.ndarray, val_loss: np.ndarray) -> float:
    return _log_slope_intercept(log_x, val_loss)[0]


def scaling_rate_ratio(runs: pd.DataFrame, x_col: str, n_boot: int, seed: int, group_col: str = "arch",
                       treatment: str = "ebt", baseline: str = "tpp") -> ScalingRate:
    """Scaling rate of `treatment` against `baseline` on X = runs[x_col].

    The two groups are the rows with runs[group_col] equal to treatment and to
    baseline; to compare one EBT variant with Transformer++, pass a column holding
    the (arch, variant) label, e.g. group_col="arch_label", treatment="ebt-system2".
    The ScalingRate fields named *_ebt hold the treatment, *_tpp the baseline.

    runs needs columns group_col, val_loss and x_col; the caller chooses the rows
    (e.g. non-diverged runs). The bootstrap resamples each group's runs
    separately, so both slopes keep their own sample size.
    """
    data = {}
    for arch, name in (("ebt", treatment), ("tpp", baseline)):
        sub = runs[runs[group_col] == name]
        ok = np.isfinite(sub["val_loss"].to_numpy(float)) & (sub[x_col].to_numpy(float) > 0)
        data[arch] = (np.log(sub[x_col].to_numpy(float)[ok]), sub["val_loss"].to_numpy(float)[ok])
    n_ebt, n_tpp = len(data["ebt"][0]), len(data["tpp"][0])
    s_ebt, s_tpp = (_semi_log_slope(*data[a]) if len(data[a][0]) else np.nan for a in ("ebt", "tpp"))
    if not (np.isfinite(s_ebt) and np.isfinite(s_tpp)) or s_tpp == 0:
        note = f"slope not identified (distinct x: ebt {len(np.unique(data['ebt'][0]))}, tpp {len(np.unique(data['tpp'][0]))})"
        return ScalingRate(np.nan, BootstrapCI(np.nan, np.nan, 0, seed), s_ebt, s_tpp, n_ebt, n_tpp, note)
    rng = np.random.default_rng(seed)
    ratios = []
    for _ in range(n_boot):
        slopes = []
        for arch in ("ebt", "tpp"):
            lx, vl = data[arch]
            idx = rng.integers(0, len(lx), len(lx))
            slopes.append(_semi_log_slope(lx[idx], vl[idx]))
        if np.isfinite(slopes).all() and slopes[1] != 0:
            ratios.append(slopes[0] / slopes[1] - 1)
    return ScalingRate(s_ebt / s_tpp - 1, _percentile_ci(np.array(ratios), seed), s_ebt, s_tpp, n_ebt, n_tpp)
