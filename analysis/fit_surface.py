"""Fit the Chinchilla loss surface L(N, D) = E + A/N^alpha + B/D^beta (Approach 3).

Usage:
    python -m analysis.fit_surface TABLE --n-col COL --d-col COL --loss-col COL
        [--c-col COL] [--drop-highest K] [--bootstrap B] [--seed S] [--json OUT]

The fit follows shared/reference/scaling-laws.md (and Besiroglu et al. 2024):
  * log L_hat = logsumexp(a - alpha*log N, b - beta*log D, e), with A = e^a,
    B = e^b, E = e^e, so all three terms stay positive without constraints;
  * Huber loss (delta = 1e-3) on log L - log L_hat, SUMMED over points; the mean
    scales the gradient down by 1/n and L-BFGS stops early (Epoch AI's finding);
  * L-BFGS-B from the 4,500-point start grid, keeping the best.

Speed: the objective and its gradient are vectorised and analytic. The objective
is first evaluated on all grid starts at once (one array operation); L-BFGS-B is
then run only from the best N_STARTS of them. Bootstrap refits start from the
full-data optimum, which is already close to every resample's optimum.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict, dataclass
from itertools import product
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.optimize import minimize
from scipy.special import logsumexp
from threadpoolctl import threadpool_limits

HUBER_DELTA = 1e-3
N_PARAMS = 5  # e, a, b, alpha, beta
# Start grid of Hoffmann et al. (2022), as used by Epoch AI.
GRID_ALPHA = GRID_BETA = np.arange(0.0, 2.0 + 1e-9, 0.5)
GRID_E = np.arange(-1.0, 1.0 + 1e-9, 0.5)
GRID_A = GRID_B = np.arange(0.0, 25.0 + 1e-9, 5.0)
# L-BFGS-B runs from this many of the best grid starts. On the Chinchilla data
# each of the 10 best starts already reaches the optimum that the full 4,500-start
# grid finds (Epoch AI's published L-BFGS-B result); 20 leaves margin for other data.
N_STARTS = 20


class InputError(ValueError):
    """The input table cannot be fitted; the message names the problem."""


@dataclass(frozen=True)
class SurfaceFit:
    E: float
    A: float
    B: float
    alpha: float
    beta: float
    objective: float  # summed Huber loss at the optimum
    n_points: int

    @property
    def a_exponent(self) -> float:
        """N_opt ∝ C^a with a = beta / (alpha + beta)."""
        return self.beta / (self.alpha + self.beta)

    @property
    def b_exponent(self) -> float:
        """D_opt ∝ C^b with b = alpha / (alpha + beta)."""
        return self.alpha / (self.alpha + self.beta)

    def as_dict(self) -> dict:
        return {**asdict(self), "a_exponent": self.a_exponent, "b_exponent": self.b_exponent}


def _huber(r: np.ndarray) -> np.ndarray:
    absr = np.abs(r)
    return np.where(absr <= HUBER_DELTA, 0.5 * r**2, HUBER_DELTA * (absr - 0.5 * HUBER_DELTA))


def _terms(theta: np.ndarray, log_n: np.ndarray, log_d: np.ndarray) -> np.ndarray:
    """The three log-terms, shape (..., n_points, 3); theta is (..., 5) = (e, a, b, alpha, beta)."""
    e, a, b, alpha, beta = np.moveaxis(theta, -1, 0)
    t_n = a[..., None] - alpha[..., None] * log_n
    t_d = b[..., None] - beta[..., None] * log_d
    t_e = np.broadcast_to(e[..., None], t_n.shape)
    return np.stack([t_n, t_d, t_e], axis=-1)


def _objective_and_grad(theta, log_n, log_d, log_l):
    """Summed Huber loss of the log residuals and its analytic gradient.

    Written out by hand (rather than scipy's logsumexp/softmax) because L-BFGS calls
    it thousands of times on a few hundred points, where call overhead dominates.
    """
    e, a, b, alpha, beta = theta
    t_n = a - alpha * log_n
    t_d = b - beta * log_d
    m = np.maximum(np.maximum(t_n, t_d), e)  # for a stable logsumexp
    x_n, x_d, x_e = np.exp(t_n - m), np.exp(t_d - m), np.exp(e - m)
    total = x_n + x_d + x_e
    resid = log_l - (m + np.log(total))
    # d pred / d term_k is the softmax weight x_k / total; Huber'(r) = clip(r, ±delta).
    g = np.clip(resid, -HUBER_DELTA, HUBER_DELTA) / total
    g_n, g_d = g * x_n, g * x_d
    grad = -np.array([np.sum(g * x_e), np.sum(g_n), np.sum(g_d), -(g_n @ log_n), -(g_d @ log_d)])
    return float(np.sum(_huber(resid))), grad


def start_grid() -> np.ndarray:
    """All 4,500 starts as rows (e, a, b, alpha, beta)."""
    return np.array(list(product(GRID_E, GRID_A, GRID_B, GRID_ALPHA, GRID_BETA)))


def _grid_objectives(grid, log_n, log_d, log_l, chunk: int = 500) -> np.ndarray:
    """The objective at every start, in chunks of starts to bound memory on big tables."""
    out = []
    for lo in range(0, len(grid), chunk):
        resid = log_l - logsumexp(_terms(grid[lo:lo + chunk], log_n, log_d), axis=-1)
        out.append(_huber(resid).sum(axis=-1))
    return np.concatenate(out)


def _one_blas_thread():
    """scipy's L-BFGS-B calls BLAS on 5-vectors; a multithreaded OpenBLAS then spends its
    time waking threads (10-20x slower on a busy 2-core machine). Run _lbfgs under this."""
    return threadpool_limits(limits=1, user_api="blas")


def _lbfgs(theta0, log_n, log_d, log_l):
    return minimize(
        _objective_and_grad,
        theta0,
        args=(log_n, log_d, log_l),
        jac=True,
        method="L-BFGS-B",
        # The summed Huber objective is ~1e-3 at the optimum and scipy's ftol is
        # relative to max(|f|, 1), so the default tolerance would stop ~1e-5 early in E.
        options={"maxiter": 10_000, "ftol": 1e-15, "gtol": 1e-12},
    )


def _to_fit(theta, objective, n) -> SurfaceFit:
    e, a, b, alpha, beta = theta
    return SurfaceFit(float(np.exp(e)), float(np.exp(a)), float(np.exp(b)), float(alpha), float(beta), float(objective), n)


def fit_surface(n, d, loss, n_starts: int = N_STARTS) -> SurfaceFit:
    """Fit L(N, D) from arrays of parameters, tokens and loss (all > 0)."""
    log_n, log_d, log_l = (np.log(np.asarray(v, dtype=float)) for v in (n, d, loss))
    grid = start_grid()
    best_starts = grid[np.argsort(_grid_objectives(grid, log_n, log_d, log_l))[:n_starts]]
    with _one_blas_thread():
        results = [_lbfgs(t0, log_n, log_d, log_l) for t0 in best_starts]
    best = min(results, key=lambda r: r.fun)
    return _to_fit(best.x, best.fun, len(log_l))


def bootstrap_surface(n, d, loss, start: SurfaceFit, n_boot: int, seed: int) -> pd.DataFrame:
    """Refit on n_boot resamples of the points (with replacement); one row per resample."""
    log_n, log_d, log_l = (np.log(np.asarray(v, dtype=float)) for v in (n, d, loss))
    theta0 = np.array([np.log(start.E), np.log(start.A), np.log(start.B), start.alpha, start.beta])
    rng = np.random.default_rng(seed)
    rows = []
    with _one_blas_thread():
        for _ in range(n_boot):
            idx = rng.integers(0, len(log_l), len(log_l))
            res = _lbfgs(theta0, log_n[idx], log_d[idx], log_l[idx])
            rows.append(_to_fit(res.x, res.fun, len(idx)).as_dict())
    return pd.DataFrame(rows)


def read_table(path: Path) -> pd.DataFrame:
    if not path.exists():
        raise InputError(f"table not found: {path}")
    if path.suffix.lower() == ".parquet":
        return pd.read_parquet(path)
    if path.suffix.lower() == ".csv":
        return pd.read_csv(path)
    raise InputError(f"unsupported table format {path.suffix!r}; use .csv or .parquet")


def prepare_points(
    table: pd.DataFrame,
    n_col: str,
    loss_col: str,
    d_col: str | None = None,
    c_col: str | None = None,
    drop_highest: int = 0,
) -> pd.DataFrame:
    """Return columns N, D, L ready to fit, or raise InputError naming the problem."""
    if d_col is None and c_col is None:
        raise InputError("give --d-col, or --c-col to derive D = C/(6N)")
    needed = [n_col, loss_col, d_col if d_col is not None else c_col]
    missing = [c for c in needed if c not in table.columns]
    if missing:
        raise InputError(f"missing column(s) {missing}; table has {list(table.columns)}")
    pts = pd.DataFrame({"N": table[n_col], "L": table[loss_col]}).astype(float)
    if d_col is not None:
        pts["D"] = table[d_col].astype(float)
    else:
        pts["D"] = table[c_col].astype(float) / (6.0 * pts["N"])
    for col, src in (("N", n_col), ("D", d_col or c_col), ("L", loss_col)):
        bad = ~np.isfinite(pts[col]) | (pts[col] <= 0)
        if bad.any():
            raise InputError(f"column {src!r} has {int(bad.sum())} non-positive or non-finite value(s); logs need > 0")
    if drop_highest < 0:
        raise InputError("--drop-highest must be >= 0")
    if drop_highest:
        pts = pts.drop(pts["L"].nlargest(drop_highest).index)
    if len(pts) < N_PARAMS:
        raise InputError(f"{len(pts)} point(s) left to fit but the model has {N_PARAMS} parameters")
    return pts.reset_index(drop=True)


def summarise(fit: SurfaceFit, boot: pd.DataFrame | None) -> dict:
    """Point estimates plus 95% percentile bootstrap intervals (when boot is given)."""
    keys = ["E", "A", "B", "alpha", "beta", "a_exponent", "b_exponent"]
    point = fit.as_dict()
    out = {"n_points": fit.n_points, "objective": fit.objective, "n_boot": 0 if boot is None else len(boot)}
    for k in keys:
        out[k] = point[k]
        lo, hi = (np.nan, np.nan) if boot is None or boot.empty else np.percentile(boot[k], [2.5, 97.5])
        out[f"{k}_ci"] = [float(lo), float(hi)]
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m analysis.fit_surface", description=__doc__.splitlines()[0])
    p.add_argument("table", type=Path, help="CSV or Parquet table, one row per training run")
    p.add_argument("--n-col", required=True, help="column with parameter count N")
    p.add_argument("--d-col", help="column with training tokens D")
    p.add_argument("--c-col", help="column with training FLOPs C; used for D = C/(6N) when --d-col is absent")
    p.add_argument("--loss-col", required=True, help="column with the final loss")
    p.add_argument("--drop-highest", type=int, default=0, help="drop the K highest-loss points first")
    p.add_argument("--bootstrap", type=int, default=100, help="bootstrap resamples for the 95%% CIs (0: none)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", type=Path, help="also write the results here")
    args = p.parse_args(argv)
    try:
        pts = prepare_points(read_table(args.table), args.n_col, args.loss_col, args.d_col, args.c_col, args.drop_highest)
    except InputError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2

    t0 = time.perf_counter()
    fit = fit_surface(pts["N"], pts["D"], pts["L"])
    boot = bootstrap_surface(pts["N"], pts["D"], pts["L"], fit, args.bootstrap, args.seed) if args.bootstrap else None
    result = summarise(fit, boot) | {"seconds": time.perf_counter() - t0, "seed": args.seed}

    print(f"L(N, D) = E + A/N^alpha + B/D^beta  ({result['n_points']} points, {result['n_boot']} bootstrap resamples)")
    for k in ["E", "A", "B", "alpha", "beta", "a_exponent", "b_exponent"]:
        lo, hi = result[f"{k}_ci"]
        ci = f"  95% CI [{lo:.4g}, {hi:.4g}]" if result["n_boot"] else ""
        print(f"  {k:<11}{result[k]:.4g}{ci}")
    print("  N_opt ∝ C^a_exponent, D_opt ∝ C^b_exponent")
    print(f"  fit took {result['seconds']:.2f} s")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
