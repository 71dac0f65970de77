from pathlib import Path

import pandas as pd

from analysis.findings import findings_html
from creativity.io import atomic_path, redirect_log

with redirect_log(snakemake.log[0]):
    tuning = pd.read_parquet(snakemake.input.tuning)
    with atomic_path(snakemake.output[0]) as tmp:
        Path(tmp).write_text(findings_html(pd.read_parquet(snakemake.input.fits), tuning), encoding="utf-8")
