"""Power laws in one variable, their confidence intervals, and the EBT scaling rate.

* y = a·X^b by OLS of log y on log X (statsmodels); b's CI is the OLS t-interval.
* The same fit bootstrapped over runs (rows resampled with replacement, fixed
  seed) gives percentile CIs that do not assume log-normal errors.
* y = E + A·X^(-b) by nonlinear least squares, for curves that flatten to a floor.
* `batch_glm`: the same curve for many bootstrap resamples at once, as a
  generalised linear model in u = ln X, so zeros are data rather than dropped:
  link "log" fits E[y] = A·X^b (quasi-Poisson; creativity, which is 0 for a run
  whose outputs are all invalid), link "logit" fits logit E[y] = a + b·ln X
  (quasi-binomial; validity, a share that can be 0 or 1). `batch_ols` is the
  closed-form least-squares line, for log-loss against ln X.

The OLS power law drops (and counts) points that cannot be logged; the callers
in fits.py use it only where y > 0 by construction (loss, optimal sizes).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import statsmodels.api as sm
from scipy.optimize import curve_fit
from scipy.stats import t as t_dist

from analysis.resample import CI_LEVEL, percentile_ci


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
    lo, hi = percentile_ci(values)
    return BootstrapCI(float(lo), float(hi), len(values), seed)


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


def batch_ols(u: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(intercept, slope) of y on u per row; u, y are (resamples, points), NaN = missing.
    NaN where a row has < 2 distinct u."""
    m = np.isfinite(u) & np.isfinite(y)
    n = m.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        ub = np.where(m, u, 0).sum(axis=1) / n
        yb = np.where(m, y, 0).sum(axis=1) / n
        du = np.where(m, u - ub[:, None], 0)
        sxx = (du * du).sum(axis=1)
        slope = (du * np.where(m, y - yb[:, None], 0)).sum(axis=1) / sxx
    slope = np.where(sxx > 1e-12, slope, np.nan)
    return yb - slope * ub, slope


LINKS = ("log", "logit")


def batch_glm(u: np.ndarray, y: np.ndarray, link: str, iterations: int = 50) -> tuple[np.ndarray, np.ndarray]:
    """(intercept, slope) of a canonical-link GLM of y on u, per row, by Newton's method.

    link "log": E[y] = exp(a + b·u), y >= 0; "logit": E[y] = 1/(1 + exp(-a - b·u)), 0 <= y <= 1.
    Rows where the fit is not identified (< 2 distinct u; y all 0, or all 1 for logit;
    no convergence or a curve running off to a boundary, i.e. separation) give NaN.
    """
    if link not in LINKS:
        raise ValueError(f"link must be one of {LINKS}")
    u, y = np.atleast_2d(np.asarray(u, float)), np.atleast_2d(np.asarray(y, float))
    m = np.isfinite(u) & np.isfinite(y)
    uu, yy = np.where(m, u, 0.0), np.where(m, y, 0.0)
    n = m.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        centre = uu.sum(axis=1) / n
    uc = np.where(m, uu - np.nan_to_num(centre)[:, None], 0.0)
    # Start from least squares on the linked data, nudged off the boundary.
    lo = 0.5 / np.maximum(n, 1)[:, None]
    z = np.log(np.maximum(yy, lo)) if link == "log" else np.log(np.clip(yy, lo, 1 - lo) / (1 - np.clip(yy, lo, 1 - lo)))
    a, b = batch_ols(np.where(m, uc, np.nan), np.where(m, z, np.nan))
    a, b = np.nan_to_num(a), np.nan_to_num(b)
    for _ in range(iterations):
        eta = np.clip(a[:, None] + b[:, None] * uc, -50, 50)
        mu = np.exp(eta) if link == "log" else 1 / (1 + np.exp(-eta))
        var = (mu if link == "log" else mu * (1 - mu)) * m
        r = (yy - mu) * m
        g0, g1 = r.sum(axis=1), (r * uc).sum(axis=1)
        h00, h01, h11 = var.sum(axis=1), (var * uc).sum(axis=1), (var * uc * uc).sum(axis=1)
        det = h00 * h11 - h01**2
        with np.errstate(invalid="ignore", divide="ignore"):
            da, db = (h11 * g0 - h01 * g1) / det, (h00 * g1 - h01 * g0) / det
        step = np.nan_to_num(np.maximum(np.abs(da), np.abs(db)), nan=0.0)
        shrink = np.minimum(1.0, 5.0 / np.maximum(step, 1e-300))  # damp wild first steps
        a, b = a + np.nan_to_num(da) * shrink, b + np.nan_to_num(db) * shrink
    converged = step < 1e-6
    if u.shape[1]:  # range of the used u per row; NaN where a row uses none
        used_u = np.where(m, u, np.nan)
        u_range = np.nanmax(used_u, axis=1) - np.nanmin(used_u, axis=1)
    else:
        u_range = np.full(len(u), np.nan)
    distinct = u_range > 1e-12
    has_signal = (yy.sum(axis=1) > 0) & ((link == "log") | ((yy * m).sum(axis=1) < n))
    # A curve that changes by more than e^30 over the data's range has run off to a boundary
    # (e.g. zeros at one end only): that is separation, not an estimate.
    span = np.nan_to_num(u_range)
    bounded = np.abs(b) * span < 30
    ok = converged & distinct & has_signal & bounded & (n >= 2)
    with np.errstate(invalid="ignore"):
        return np.where(ok, a - b * centre, np.nan), np.where(ok, b, np.nan)
