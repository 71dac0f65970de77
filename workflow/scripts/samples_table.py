from pathlib import Path

import pandas as pd

from analysis.samples_table import sample_rows, samples_html
from creativity.io import atomic_path, redirect_log

with redirect_log(snakemake.log[0]):
    tables = {name: pd.read_parquet(path) for name, path in snakemake.input.items()}
    rows = sample_rows(**tables, seed=snakemake.params.seed)
    with atomic_path(snakemake.output[0]) as tmp:
        Path(tmp).write_text(samples_html(rows), encoding="utf-8")
    print(f"{len(rows)} rows")
