import pandas as pd

from analysis import plots
from creativity.io import redirect_log

with redirect_log(snakemake.log[0]):
    tables = {name: pd.read_parquet(path) for name, path in snakemake.input.items()}
    getattr(plots, snakemake.params.function)(**tables, out_path=snakemake.output[0])
