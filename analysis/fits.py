"""All fits of the study in one tidy long table (fits.parquet); every figure and the
findings page read it, nothing refits.

`compute_fits(runs, metrics, samples, baseline, loss_floor, matched_null, n_boot, seed,
min_correct)` returns one row per estimated quantity. Columns:

    kind        what was fitted (see below)
    arch        "tpp" | "ebt" | "baseline" | "task" (loss floor); "ebt/tpp" for the exponent ratio
    variant     "tpp" | "system1" | "system2" (runs.variant); "<variant>/tpp" for the ratio.
                Fits group by (arch, variant): two EBT variants are never pooled.
    decoding    decoding setting; "-" where none applies; "<a> vs <b>" for paired rows
    metric      the fitted quantity: correct_rate, creativity, creativity_lc, validity (walk
                validity), novelty_valid, novelty_lc, excess_loss, ...
    x           the independent variable, shape axis, comparison, or split
    subset      "frontier" (compute-optimal or best cell per budget) | "all_runs" for power laws, else ""
    scope       loss_floor rows: "validation" (the validation sample every run is scored on) |
                "corpus" (every loss-bearing token); else ""
    x_value     the x of a power_law_curve point, else NaN
    budget      FLOP budget for per-budget rows, else NaN
    run_id      for per-run rows and Pareto-front points, else ""
    level       utility level (Pareto rows), else NaN
    parameter   which number of the fit this row holds (exponent, delta, hypervolume, ...)
    estimate    the number on the observed data (NaN when it could not be estimated; see note)
    ci_low, ci_high   95% interval; ci_method says which kind ("" = no interval)
    ci_method   "t_seeds_plus_prompt_bootstrap" (intervals.py) | "bootstrap_percentile" |
                "prompt_bootstrap_percentile" | "nls_t" | "monte_carlo" | ""
    n           points, units, prompts or correct walks used (the kind says which)
    n_seeds     seeds behind a seed-level interval (1: no interval)
    n_excluded_diverged  runs of that (arch, variant) left out because status != "ok"
    n_boot      prompt resamples; seed: the bootstrap's RNG seed
    method      the model: glm_log | glm_logit | ols_loglog_excess | parabola | ...
    note        why an estimate is NaN ("not estimable: ...", "not comparable: ..."), or a caveat

Kinds (module that computes them):

    loss_floor            (loss) the task's Bayes-optimal loss per scope, copied from loss_floor.parquet.
    excess_loss           (loss) per (arm, budget): val_loss − validation floor of the compute-optimal shape.
    power_law (excess_loss)  (loss) exponent of L − floor against FLOPs, one fit per seed.
    scaling_rate          (loss) EBT over Transformer++ excess-loss exponent, per seed pair.
    training              (loss) epochs and train–val gap of the compute-optimal runs, when runs has them.
    crossover             (crossover, from loss and scaling) per EBT variant and metric excess_loss |
                          creativity: log10 of the training FLOPs at which its law meets the
                          Transformer++'s, with a Fieller interval; the note is the sentence shown.
    paired_delta          (paired) EBT minus Transformer++ per shared budget; x = default_decoding
                          | matched_inference_flops; parameters delta, treatment (EBT),
                          baseline (tpp), n_correct rows, *_inference_flops.
    paired_delta_change   (paired) delta at the largest comparable budget minus at the smallest, per seed.
    power_law, power_law_curve  (scaling) correct_rate, validity, creativity against
                          flops_measured, params, tokens, on the frontier and all runs.
    isoflop_optimum       (isoflop) per (arch, variant, budget, metric, axis in params, d/L).
    isoflop_power_law     optimum params = prefactor·budget^exponent through interior vertices.
    tradeoff_slope        (tradeoff) per (run, decoding) and the null: slope and net_slope.
    tradeoff_net          (tradeoff) per (arm, budget): mean net slope over seeds.
    tradeoff_scaling      (tradeoff) per (arch, variant): slope_per_ln_flops, intercept.
    pareto_hypervolume, pareto_front, pareto_hv_delta   (pareto) per level, fronts per seed.
    thinking_effect, error_share, error_shift   (thinking) EBT think_xK against think_x1.
    summary               per (arch, variant, budget, split) at the default decoding on the
                          compute-optimal shape: seed mean of each SUMMARY_METRICS, n_correct,
                          and beside the length-matched null (parameters null, minus_null);
                          level1_correct_rate: correct_rate on the level-1 (unconstrained) prompts.

Seed-level intervals (analysis/intervals.py) keep their coverage at 3 seeds. Comparisons are
refused where an arm has fewer than min_correct correct walks (config fit.min_correct).
IsoFLOP creativity uses each architecture's default decoding (greedy, think_x1), not its
best: the max over ~10 noisy settings is biased upward.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis import crossover, intervals, isoflop, loss, paired, pareto, powerlaw, resample, scaling, thinking, tradeoff
from analysis.labels import DEFAULT_DECODING, FITS_COLUMNS, LABEL, default_decoding, in_distribution, with_labels
from models.architectures import TPP

NO_DECODING = "-"
COLUMNS = FITS_COLUMNS
_DEFAULTS = {
    "arch": "", "variant": "", "decoding": NO_DECODING, "metric": "", "x": "", "subset": "", "scope": "",
    "x_value": np.nan, "budget": np.nan, "run_id": "", "level": np.nan, "estimate": np.nan, "ci_low": np.nan,
    "ci_high": np.nan, "ci_method": "", "n": 0, "n_seeds": 0, "n_excluded_diverged": 0, "n_boot": 0, "seed": -1,
    "method": "", "note": "",
}
MIN_CORRECT = 20  # config fit.min_correct's default
RUN_COLUMNS = ["run_id", "arch", "variant", "budget", "depth", "width", "seed", "params", "tokens", "flops_measured",
               "val_loss", "status"]
METRIC_COLUMNS = ["run_id", "arch", "variant", "budget", "depth", "width", "params", "flops_measured", "decoding",
                  "level", "creativity", "validity", "novelty_valid", "utility"]
SUMMARY_METRICS = ("correct_rate", "validity", "creativity", "creativity_lc", "novelty_valid", "novelty_lc",
                   "copy_rate", "copy_share", "combinatorial_novelty", "uses_heldout_rate", "revisit_rate")
NULL_COMPARED = ("copy_rate", "combinatorial_novelty", "novelty_valid", "novelty_lc")  # shown beside the matched null
SATURATED = 0.95  # a metric the null reaches this often cannot tell a model from the null
_TEXT = ("run_id", "arch", "variant", "decoding", "status", "split")


def ensure_columns(table: pd.DataFrame | None, columns: list[str]) -> pd.DataFrame:
    """A table with no rows may come without columns (an empty Parquet file): add them."""
    table = pd.DataFrame() if table is None else table
    missing = [c for c in columns if c not in table.columns]
    if missing and len(table) == 0:
        table = table.assign(**{c: pd.Series(dtype=object if c in _TEXT else float) for c in missing})
    return table


def _row(**fields) -> dict:
    return _DEFAULTS | fields


def ok_runs(runs: pd.DataFrame) -> pd.DataFrame:
    return runs[runs["status"] == "ok"]


def _n_excluded(runs: pd.DataFrame, **match) -> int:
    bad = runs["status"] != "ok"
    for col, value in match.items():
        bad &= runs[col] == value
    return int(bad.sum())


def _power_law_rows(budgets: pd.Series, ys, n_boot, seed, note: str = "", **labels) -> list[dict]:
    """isoflop_power_law rows: an OLS power law of ys against budget with a bootstrap over its
    points. With < 2 budgets the fit is not identified and only the caller's note (saying
    why) is kept; otherwise the fit's own note is appended to it."""
    fit = powerlaw.fit_power_law(budgets, ys)  # not identified with < 2 distinct budgets
    if np.isfinite(fit.exponent):
        boot_b, boot_a = powerlaw.bootstrap_power_law(budgets, ys, n_boot, seed)
    else:
        boot_b = boot_a = powerlaw.BootstrapCI(np.nan, np.nan, 0, seed)
    if budgets.nunique() >= 2:
        note = "; ".join(p for p in (note, fit.note) if p)
    common = labels | {"kind": "isoflop_power_law", "ci_method": "bootstrap_percentile", "n": fit.n_points,
                       "seed": seed, "note": note}
    return [_row(**common, parameter="exponent", estimate=fit.exponent, ci_low=boot_b.low, ci_high=boot_b.high,
                 n_boot=boot_b.n_boot),
            _row(**common, parameter="prefactor", estimate=fit.prefactor, ci_low=boot_a.low, ci_high=boot_a.high,
                 n_boot=boot_a.n_boot)]


def isoflop_tables(ok: pd.DataFrame, level0: pd.DataFrame) -> list[tuple[str, bool, pd.DataFrame]]:
    """(metric, maximize, table): val_loss over runs, creativity at each architecture's default decoding."""
    return [("val_loss", False, ok), ("creativity", True, default_decoding(level0))]


def _isoflop_rows(runs, ok, level0, n_boot, seed) -> list[dict]:
    rows = []
    for metric, maximize, table in isoflop_tables(ok, level0):
        for axis in isoflop.FIT_AXES:
            optima = isoflop.isoflop_optima(table, metric, axis, maximize, n_boot=n_boot, seed=seed)
            for opt in optima.itertuples(index=False):
                decoding = NO_DECODING if metric == "val_loss" else DEFAULT_DECODING.get(opt.arch, "")
                common = dict(kind="isoflop_optimum", arch=opt.arch, variant=opt.variant, budget=opt.budget,
                              decoding=decoding, metric=metric, x=axis, n=opt.n_points, method=opt.method,
                              n_excluded_diverged=_n_excluded(runs, arch=opt.arch, variant=opt.variant,
                                                              budget=opt.budget))
                ci_note = opt.ci_note if opt.method == "parabola" else ""
                rows.append(_row(**common, parameter="optimum", estimate=opt.optimum, ci_low=opt.ci_low,
                                 ci_high=opt.ci_high, ci_method="bootstrap_percentile" if opt.n_boot else "",
                                 n_boot=opt.n_boot, seed=seed, note="; ".join(p for p in (opt.note, ci_note) if p)))
                rows += [_row(**common, parameter=p, estimate=getattr(opt, p), note=opt.note)
                         for p in ("edge_distance", "metric_at_optimum", "best_grid_point")]
                rows += [_row(**common, parameter=p, estimate=c) for p, c in zip(("c2", "c1", "c0"), opt.coefficients)]
            if axis == "params":
                rows += _isoflop_power_law_rows(runs, optima, metric, n_boot, seed)
    return rows


def _isoflop_power_law_rows(runs, optima: pd.DataFrame, metric: str, n_boot: int, seed: int) -> list[dict]:
    """Approach 2: a power law of the interior parabola optima over params against budget."""
    rows = []
    for (arch, variant), grp in optima.groupby(["arch", "variant"], sort=True):
        parabola = grp[grp["method"] == "parabola"]
        inside = parabola[parabola["edge_distance"] >= 0]
        notes = []
        if len(parabola) > len(inside):
            notes.append(f"{len(parabola) - len(inside)} vertex(es) outside the grid left out")
        if len(grp) > len(parabola):
            notes.append(f"{len(grp) - len(parabola)} budget(s) without a parabola vertex")
        n_budgets = inside["budget"].nunique()
        if n_budgets < 2:
            notes.append(f"{n_budgets} budget(s) with an interior optimum; need >= 2")
        rows += _power_law_rows(inside["budget"], inside["optimum"], n_boot, seed, arch=arch, variant=variant,
                                metric=metric, x="budget", method="parabola_vertices",
                                decoding=NO_DECODING if metric == "val_loss" else DEFAULT_DECODING.get(arch, ""),
                                n_excluded_diverged=_n_excluded(runs, arch=arch, variant=variant),
                                note="; ".join(notes))
    return rows


def _run_values(ok: pd.DataFrame, stats: resample.PromptStats, draws: resample.Draws) -> dict[str, np.ndarray]:
    """(resamples, runs) of each scaling.MODELS metric at each run's default decoding."""
    idx = np.array([stats.unit_index(r, DEFAULT_DECODING.get(a, "")) for r, a in zip(ok["run_id"], ok["arch"])])
    out = {}
    for metric in [m for m in scaling.MODELS if m in stats.sums]:
        v = stats.values(metric, draws.prompt, rows=np.maximum(idx, 0))
        out[metric] = np.where(idx >= 0, v, np.nan)
    return out


def _scaling_rows(runs, ok, stats, draws) -> list[dict]:
    values = _run_values(ok, stats, draws)
    rows = []
    for label in sorted(set(ok[LABEL])):
        mask = (ok[LABEL] == label).to_numpy()
        sub = ok[mask]
        arch = sub["arch"].iloc[0]
        ids = dict(arch=arch, variant=sub["variant"].iloc[0], decoding=DEFAULT_DECODING[arch],
                   n_excluded_diverged=_n_excluded(runs, arch=arch, variant=sub["variant"].iloc[0]))
        rows += scaling.power_law_rows(sub, {m: v[:, mask] for m, v in values.items()}, draws, ids)
    return rows + _creativity_crossover_rows(ok, values, draws)


def _creativity_crossover_rows(ok, values, draws) -> list[dict]:
    """Where each EBT's creativity law would meet the Transformer++'s (analysis/crossover.py)."""
    if "creativity" not in values or TPP.label not in set(ok[LABEL]):
        return []
    laws = {}
    for label in sorted(set(ok[LABEL])):
        mask = (ok[LABEL] == label).to_numpy()
        laws[label] = scaling.law_coefficients(ok[mask], values["creativity"][:, mask], draws, "creativity")
    (tpp_law, tpp_budgets, tpp_gate) = laws.pop(TPP.label)
    rows = []
    for label, (law, budgets, gate) in laws.items():
        variant = ok.loc[ok[LABEL] == label, "variant"].iloc[0]
        shared = np.intersect1d(budgets, tpp_budgets)
        rows.append(crossover.crossover_row("creativity", variant, law, tpp_law, shared, gate or tpp_gate))
    return rows


def _summary_rows(ok: pd.DataFrame, samples: pd.DataFrame, matched_null: pd.DataFrame, n_boot: int,
                  seed: int) -> list[dict]:
    """Per (label, budget, split): seed means at the default decoding on the compute-optimal shape."""
    rows = []
    splits = sorted(samples["split"].unique()) if "split" in samples.columns else ["test"]
    for k, split in enumerate(splits):
        sub = samples[samples["split"] == split] if "split" in samples.columns else samples
        sub = sub[sub["run_id"].isin(ok["run_id"])]
        if sub.empty:
            continue
        nulls = _null_units(matched_null, split)
        stats = resample.prompt_stats(pd.concat([sub, nulls], ignore_index=True))
        draws = resample.draw(len(stats.prompt_ids), ok["seed"], n_boot, seed + 1 + k)
        for (label, budget), grp in ok.groupby([LABEL, "budget"], sort=True):
            best = paired.compute_optimal_runs(grp)
            decoding = DEFAULT_DECODING.get(grp["arch"].iloc[0], "")
            ids = dict(kind="summary", arch=grp["arch"].iloc[0], variant=grp["variant"].iloc[0], budget=float(budget),
                       decoding=decoding, x=str(split), n_boot=n_boot, seed=seed)
            n_answers = sum(int(stats.counts["validity"][i].sum()) for i in
                            (stats.unit_index(r, decoding) for r in best["run_id"]) if i >= 0)
            if n_answers == 0:
                continue
            rows += [_row(**ids, metric="n_correct", parameter="count",
                          estimate=float(resample.n_correct(stats, best["run_id"], decoding)), n=n_answers,
                          note="correct walks over the compared runs; n: answers")]
            null_runs = best.assign(run_id=best["run_id"] + tradeoff.NULL_SUFFIX)
            for metric in [m for m in SUMMARY_METRICS if m in stats.sums]:
                model = resample.seed_matrix(stats, best, decoding, metric, draws.prompt, draws.seeds)
                iv = intervals.seed_interval(model, intervals.bounds(metric))
                rows.append(_row(**ids, metric=metric, parameter="mean", n=len(best), n_seeds=iv.n_seeds,
                                 **iv.fields()))
                if metric in NULL_COMPARED and len(nulls):
                    null = resample.seed_matrix(stats, null_runs, decoding, metric, draws.prompt, draws.seeds)
                    rows += _null_rows(ids, metric, model, null)
            # The regime: can the arm answer unconstrained prompts at all (level 1: a walk from u to v)?
            level1 = resample.seed_matrix(stats, best, decoding, "correct_rate", draws.prompt, draws.seeds, level=1)
            if np.isfinite(level1[0]).any():
                iv = intervals.seed_interval(level1, intervals.bounds("correct_rate"))
                rows.append(_row(**ids, metric="level1_correct_rate", parameter="mean", level=1.0, n=len(best),
                                 n_seeds=iv.n_seeds, **iv.fields()))
    return rows


def _null_rows(ids: dict, metric: str, model: np.ndarray, null: np.ndarray) -> list[dict]:
    """The length-matched null's value of a metric and the model's difference from it."""
    if not np.isfinite(null[0]).any():
        return []
    at_null = intervals.seed_interval(null, intervals.bounds(metric))
    diff = intervals.paired_interval(model, null, intervals.bounds(metric, difference=True))
    saturated = (f"the null reaches {at_null.estimate:.2f} (>= {SATURATED}): not a headline"
                 if at_null.estimate >= SATURATED else "")
    return [_row(**ids, metric=metric, parameter="null", n_seeds=at_null.n_seeds, **at_null.fields())
            | {"note": "; ".join(p for p in (at_null.note, saturated) if p)},
            _row(**ids, metric=metric, parameter="minus_null", n_seeds=diff.n_seeds, **diff.fields())
            | {"note": "; ".join(p for p in (diff.note, saturated) if p)}]


NULL_LM = {"novelty": "novelty_null_lm", "copied": "copied_null_lm",
           "combinatorial_novelty": "combinatorial_novelty_null_lm"}  # creativity/length_control.py


def matched_null_samples(samples: pd.DataFrame) -> pd.DataFrame | None:
    """The length-matched null as scored samples, from the *_null_lm columns the scorer
    attaches to each valid sample (one null walk of the same prompt and hop count each);
    None when the samples have none."""
    present = {k: v for k, v in NULL_LM.items() if v in samples.columns}
    if "novelty" not in present:
        return None
    keys = [c for c in ("run_id", "decoding", "prompt_id", "sample_index", "level", "split") if c in samples.columns]
    valid = samples[samples["valid"].astype(bool)]
    return valid[keys].assign(valid=True, **{k: valid[v].to_numpy() for k, v in present.items()})


def _null_units(matched_null: pd.DataFrame | None, split: str | None = None) -> pd.DataFrame:
    """The length-matched null's scored samples as units "<run_id>@null" beside the model's."""
    if matched_null is None or matched_null.empty:
        return pd.DataFrame()
    null = matched_null if split is None or "split" not in matched_null.columns else \
        matched_null[matched_null["split"] == split]
    return null.assign(run_id=null["run_id"].astype(str) + tradeoff.NULL_SUFFIX)


def _inference_flops(test_samples: pd.DataFrame, metrics: pd.DataFrame) -> pd.DataFrame:
    """Mean inference FLOPs per sample of each (run, decoding), measured on that run: from the
    samples, else from the pooled metrics rows; empty (no matched-FLOP comparison) when neither has them."""
    keys = ["run_id", "decoding"]
    if "inference_flops" in test_samples.columns:
        return test_samples.groupby(keys, as_index=False)["inference_flops"].mean()
    if "inference_flops" in metrics.columns:
        return metrics.loc[metrics["level"] == 0, [*keys, "inference_flops"]]
    return pd.DataFrame(columns=[*keys, "inference_flops"])


def compute_fits(runs: pd.DataFrame, metrics: pd.DataFrame, samples: pd.DataFrame | None = None,
                 baseline: pd.DataFrame | None = None, loss_floor: pd.DataFrame | None = None,
                 matched_null: pd.DataFrame | None = None, n_boot: int = 200, seed: int = 0,
                 min_correct: int = MIN_CORRECT) -> pd.DataFrame:
    """Every fit of the study as one long table; see the module docstring for columns.

    samples, baseline: the scored samples of the runs and of the uniform feasible-set null;
    loss_floor: results/task/loss_floor.parquet; matched_null: scored samples of the
    length-matched null, one per valid model answer, with that answer's run_id and decoding
    (by default read from the samples' *_null_lm columns).
    Without samples only the loss and metrics-based fits (IsoFLOP, excess loss) are made.
    """
    runs = with_labels(ensure_columns(runs, RUN_COLUMNS))
    metrics = with_labels(in_distribution(ensure_columns(metrics, METRIC_COLUMNS)))
    ok = ok_runs(runs).reset_index(drop=True)
    if matched_null is None and samples is not None and len(samples):
        matched_null = matched_null_samples(samples)
    level0 = metrics[metrics["run_id"].isin(ok["run_id"]) & (metrics["level"] == 0)]
    rows = [_row(**r) for r in loss.floor_rows(loss_floor)
            + loss.excess_loss_rows(ok, loss.validation_floor(loss_floor))]
    rows += _isoflop_rows(runs, ok, level0, n_boot, seed)
    samples = ensure_columns(samples, ["run_id", "decoding", "prompt_id", "level", "valid"])
    test = in_distribution(samples[samples["run_id"].isin(ok["run_id"])])
    if len(test) and len(ok):
        base = in_distribution(baseline) if baseline is not None and len(baseline) else test.iloc[:0]
        nulls = _null_units(matched_null, "test")
        stats = resample.prompt_stats(pd.concat([test, base, nulls], ignore_index=True))
        draws = resample.draw(len(stats.prompt_ids), ok["seed"], n_boot, seed)
        refs = pareto.reference_points(pd.concat([test, base], ignore_index=True))
        rows += [_row(**r, seed=seed) for r in (
            _scaling_rows(runs, ok, stats, draws)
            + paired.paired_rows(ok, _inference_flops(test, metrics), stats, draws, min_correct)
            + tradeoff.tradeoff_rows(ok, stats, draws, min_correct)
            + pareto.pareto_rows(ok, stats, draws, refs, min_correct)
            + thinking.thinking_rows(ok, stats, draws, min_correct))]
        rows += _summary_rows(ok, samples, matched_null, n_boot, seed)
    fits = pd.DataFrame(rows, columns=COLUMNS)
    return fits.astype({"n": int, "n_seeds": int, "n_excluded_diverged": int, "n_boot": int, "seed": int,
                        "budget": float, "level": float, "estimate": float, "x_value": float})


def excluded_runs(runs: pd.DataFrame) -> pd.DataFrame:
    """The runs every fit leaves out (diverged or otherwise not ok), for the report."""
    cols = ["run_id", "arch", "variant", "budget", "depth", "width", "seed", "status", "diverged_step"]
    if runs.empty:
        return pd.DataFrame(columns=cols)
    return runs.loc[runs["status"] != "ok", [c for c in cols if c in runs.columns]]
