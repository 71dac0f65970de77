"""Vectorised bootstrap over test prompts and seeds.

Every bootstrapped quantity in fits.parquet is a function of per-prompt sums, so a
resample is a weight vector, not a new table:

* `PromptStats` holds, for every unit = (run_id, decoding) and every test prompt,
  the sum of a statistic over that prompt's samples and how many samples it counts
  (creativity over all samples; novelty, copy rate, ... over valid ones).
* A prompt resample is a row of multinomial counts W[b, p]; the unit's value is
  Σ_p W·sum / Σ_p W·count, for all resamples at once by one matrix product. Row 0
  is all ones: the estimate on the observed data.
* Every unit shares the same W, so comparisons between runs are paired on prompt id;
  the feasible-set baseline answers the same prompts and is paired the same way.
* Seeds are resampled the same way (counts S[b, s] over the seed values, shared by
  every cell), and `cell_values` averages a cell's seeds with those weights.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

CI_LEVEL = 0.95
# statistic -> (sample column, the samples it is averaged over: all, or only valid or correct ones)
STATISTICS = {
    "creativity": ("creativity", "all"),
    "creativity_lc": ("creativity_lc", "all"),  # E[U · novelty_lc]: creativity with walk length controlled
    "correct_rate": ("correct", "all"),  # a valid walk that meets its include and exclude constraints
    "validity": ("valid", "all"),  # walk validity: a walk from u to v, constraints not checked
    "utility": ("utility", "all"),
    "novelty_valid": ("novelty", "valid"),
    "novelty_lc": ("novelty_lc", "valid"),
    "novelty_correct": ("novelty", "correct"),
    "copy_rate": ("copied", "valid"),
    "copy_share": ("copy_share", "valid"),  # share of a valid walk's hops inside copied demonstrations
    "combinatorial_novelty": ("combinatorial_novelty", "valid"),
    "uses_heldout_rate": ("uses_heldout", "valid"),
    "revisit_rate": ("error_type", "all"),  # share of samples whose error is a revisit
}
ERROR_PREFIX = "error_"  # error_<type>: share of samples whose first failed check is <type>


def percentile_ci(values: np.ndarray, axis: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """95% percentile interval over resamples, ignoring NaN (resamples with nothing to fit)."""
    tail = 100 * (1 - CI_LEVEL) / 2
    with warnings.catch_warnings():  # an all-NaN column gives NaN, which is the answer
        warnings.simplefilter("ignore", RuntimeWarning)
        lo, hi = np.nanpercentile(values, [tail, 100 - tail], axis=axis)
    return lo, hi


def nanmean_rows(values: np.ndarray) -> np.ndarray:
    """Mean over columns (e.g. runs, cells) per row (resample), NaN entries left out; NaN
    (without a warning) where a row has no finite value."""
    finite = np.isfinite(values)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(finite, values, 0).sum(axis=1) / finite.sum(axis=1)


def count_weights(n_items: int, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """(n_boot + 1, n_items) resampling counts; row 0 is the observed data (all ones)."""
    draws = rng.multinomial(n_items, np.full(n_items, 1.0 / n_items), size=n_boot) if n_items else \
        np.zeros((n_boot, 0))
    return np.vstack([np.ones((1, n_items)), draws]).astype(float)


@dataclass(frozen=True)
class Draws:
    """One joint bootstrap: prompt counts (resamples, prompts) and seed counts (resamples, seeds)."""

    prompt: np.ndarray
    seed: np.ndarray
    seeds: np.ndarray  # the seed values, in the order of seed's columns

    @property
    def n_boot(self) -> int:
        return len(self.prompt) - 1


def draw(n_prompts: int, seeds, n_boot: int, seed: int) -> Draws:
    """Prompts and seeds resampled jointly (one generator, fixed seed)."""
    rng = np.random.default_rng(seed)
    seeds = np.sort(np.unique(np.asarray(seeds)))
    return Draws(count_weights(n_prompts, n_boot, rng), count_weights(len(seeds), n_boot, rng), seeds)


@dataclass
class PromptStats:
    units: pd.DataFrame  # one row per (run_id, decoding), in the arrays' row order
    prompt_ids: np.ndarray
    levels: np.ndarray  # utility level of each prompt
    sums: dict[str, np.ndarray]  # statistic -> (units, prompts)
    counts: dict[str, np.ndarray]

    def unit_index(self, run_id: str, decoding: str) -> int:
        hit = np.flatnonzero((self.units["run_id"] == run_id).to_numpy() & (self.units["decoding"] == decoding).to_numpy())
        return int(hit[0]) if len(hit) else -1

    def values(self, statistic: str, weights: np.ndarray, rows=None, level: int | None = None) -> np.ndarray:
        """(resamples, units) value of a statistic under prompt weights (resamples, prompts).

        rows: a subset of unit rows; level: only the prompts of that utility level.
        NaN where a unit has nothing to count (e.g. novelty with no valid sample).
        """
        s, c = self.sums[statistic], self.counts[statistic]
        if rows is not None:
            s, c = s[rows], c[rows]
        if level is not None:
            keep = self.levels == level
            s, c, weights = s[:, keep], c[:, keep], weights[:, keep]
        with np.errstate(invalid="ignore", divide="ignore"):
            return (weights @ s.T) / (weights @ c.T)


def with_derived_columns(samples: pd.DataFrame) -> pd.DataFrame:
    """Columns older tables lack, derived where the definition allows: `correct` is utility > 0
    (utility is gated by validity and both constraint checks, and is >= 1 when they pass);
    creativity_lc = U · novelty_lc (0 for a walk that is not correct)."""
    data = samples
    if "correct" not in data.columns and "utility" in data.columns:
        data = data.assign(correct=data["utility"].astype(float) > 0)
    if "creativity_lc" not in data.columns and {"novelty_lc", "utility"} <= set(data.columns):
        data = data.assign(creativity_lc=(data["utility"].astype(float) * data["novelty_lc"].astype(float)).fillna(0.0))
    return data


def prompt_stats(samples: pd.DataFrame) -> PromptStats:
    """Per (run_id, decoding) × prompt sums and counts of every statistic in STATISTICS
    that the samples table has, and of each error type's share; prompts (columns) in sorted id order."""
    data = with_derived_columns(samples).copy()
    masks = {"all": None, "valid": data["valid"].astype(bool)}
    if "correct" in data.columns:
        masks["correct"] = data["correct"].fillna(False).astype(bool)
    columns = {name: spec for name, spec in STATISTICS.items() if spec[0] in data.columns and spec[1] in masks}
    if "error_type" in data.columns:
        columns |= {f"{ERROR_PREFIX}{t}": ("error_type", "all") for t in sorted(data["error_type"].dropna().unique())
                    if t != "none"}
    present = {}
    for name, (column, over) in columns.items():
        if name == "revisit_rate":
            value = (data["error_type"] == "revisit").astype(float)
        elif name.startswith(ERROR_PREFIX):
            value = (data["error_type"] == name[len(ERROR_PREFIX):]).astype(float)
        else:
            value = data[column].astype(float)
        if masks[over] is not None:
            value = value.where(masks[over])
        data[f"_s_{name}"], data[f"_c_{name}"] = value.fillna(0.0), value.notna().astype(float)
        present[name] = None
    prompt_ids = np.sort(data["prompt_id"].unique())
    cols = [f"_{k}_{n}" for n in present for k in ("s", "c")]
    grouped = data.groupby(["run_id", "decoding", "prompt_id"], sort=True)[cols].sum()
    wide = grouped.unstack("prompt_id").fillna(0.0)
    units = wide.index.to_frame(index=False)
    levels = data.drop_duplicates("prompt_id").set_index("prompt_id")["level"].reindex(prompt_ids).to_numpy()
    sums, counts = {}, {}
    for name in present:
        sums[name] = wide[f"_s_{name}"].reindex(columns=prompt_ids, fill_value=0.0).to_numpy(float)
        counts[name] = wide[f"_c_{name}"].reindex(columns=prompt_ids, fill_value=0.0).to_numpy(float)
    return PromptStats(units, np.asarray(prompt_ids), levels, sums, counts)


def seed_matrix(stats: PromptStats, runs: pd.DataFrame, decoding: str, statistic: str, weights: np.ndarray,
                seeds: np.ndarray, level: int | None = None) -> np.ndarray:
    """(resamples, seeds) value of a statistic for one run per seed (runs: run_id, seed) at a
    decoding, in the order of `seeds`; NaN where a seed has no run or no value."""
    out = np.full((len(weights), len(seeds)), np.nan)
    if statistic not in stats.sums:
        return out
    pos = {s: i for i, s in enumerate(seeds)}
    for run_id, seed in zip(runs["run_id"], runs["seed"]):
        row = stats.unit_index(run_id, decoding)
        if row >= 0 and seed in pos:
            out[:, pos[seed]] = stats.values(statistic, weights, rows=[row], level=level)[:, 0]
    return out


def n_correct(stats: PromptStats, run_ids, decoding: str) -> int:
    """Correct walks of these runs at a decoding (all test prompts); 0 without a correct column."""
    if "correct_rate" not in stats.sums:
        return 0
    rows = [r for r in (stats.unit_index(run_id, decoding) for run_id in run_ids) if r >= 0]
    return int(stats.sums["correct_rate"][rows].sum()) if rows else 0


@dataclass
class Cells:
    """Runs grouped into cells (a grid point without its seed): cell × seed -> unit row or -1."""

    table: pd.DataFrame  # one row per cell with its keys and seed-mean of numeric run columns
    index: np.ndarray  # (cells, seeds) row into the per-run arrays, -1 where missing
    seeds: np.ndarray


def make_cells(runs: pd.DataFrame, keys: list[str], seeds=None) -> Cells:
    """Group runs by `keys` (e.g. budget, depth, width); runs need a `seed` column. The
    position of each run in `runs` is what the index points to; `seeds` (Draws.seeds)
    fixes the seed columns so they line up with the seed weights."""
    runs = runs.reset_index(drop=True)
    seeds = np.sort(runs["seed"].unique()) if seeds is None else np.asarray(seeds)
    seed_pos = {s: i for i, s in enumerate(seeds)}
    table = runs.groupby(keys, sort=True, dropna=False).mean(numeric_only=True).reset_index()
    cell_of = runs.groupby(keys, sort=True, dropna=False).ngroup().to_numpy()
    index = np.full((len(table), len(seeds)), -1)
    for row, (cell, seed) in enumerate(zip(cell_of, runs["seed"])):
        index[cell, seed_pos[seed]] = row
    return Cells(table, index, seeds)


def cell_values(run_values: np.ndarray, cells: Cells, seed_weights: np.ndarray) -> np.ndarray:
    """(resamples, cells): the seed-weighted mean of each cell's runs in every resample.

    run_values: (resamples, runs), in the order make_cells was given; seed_weights:
    (resamples, seeds). Runs that are missing or NaN carry no weight.
    """
    gathered = np.where(cells.index >= 0, run_values[:, np.maximum(cells.index, 0)], np.nan)  # (B, cells, seeds)
    w = seed_weights[:, None, :] * np.isfinite(gathered)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.nansum(np.nan_to_num(gathered) * w, axis=2) / w.sum(axis=2)
