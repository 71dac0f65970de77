import pandas as pd

from analysis.fits import compute_fits, excluded_runs
from creativity.io import atomic_path, redirect_log, write_parquet

with redirect_log(snakemake.log[0]):
    runs = pd.read_parquet(snakemake.input.runs)
    with atomic_path(snakemake.output.excluded) as tmp:
        excluded_runs(runs).to_csv(tmp, index=False)
    fits = compute_fits(
        runs,
        pd.read_parquet(snakemake.input.metrics),
        samples=pd.read_parquet(snakemake.input.samples),
        baseline=pd.read_parquet(snakemake.input.baseline),
        loss_floor=pd.read_parquet(snakemake.input.loss_floor),
        n_boot=snakemake.params.n_boot,
        seed=snakemake.params.seed,
        min_correct=snakemake.params.min_correct,
    )
    write_parquet(fits, snakemake.output.fits)
    print(fits.groupby(["kind", "parameter"]).size().to_string())
