from pathlib import Path

import pandas as pd

from analysis.findings import FIGURES, findings_html
from creativity.io import atomic_path, redirect_log

with redirect_log(snakemake.log[0]):
    tuning = pd.read_parquet(snakemake.input.tuning)
    figures = {name: getattr(snakemake.input, name) for name in FIGURES}
    with atomic_path(snakemake.output[0]) as tmp:
        Path(tmp).write_text(findings_html(pd.read_parquet(snakemake.input.fits), tuning, figures), encoding="utf-8")
