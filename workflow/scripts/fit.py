import pandas as pd

from analysis.fits import compute_fits
from creativity.io import redirect_log, write_parquet

with redirect_log(snakemake.log[0]):
    fits = compute_fits(
        pd.read_parquet(snakemake.input.runs),
        pd.read_parquet(snakemake.input.metrics),
        n_boot=snakemake.params.n_boot,
        seed=snakemake.params.seed,
    )
    write_parquet(fits, snakemake.output.fits)
    print(fits.to_string())
