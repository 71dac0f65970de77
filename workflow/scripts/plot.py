import importlib

import pandas as pd

from creativity.io import redirect_log

with redirect_log(snakemake.log[0]):
    module, function = snakemake.params.function.split(".")
    tables = {name: pd.read_parquet(path) for name, path in snakemake.input.items()}
    getattr(importlib.import_module(f"analysis.{module}"), function)(**tables, out_path=snakemake.output[0])
