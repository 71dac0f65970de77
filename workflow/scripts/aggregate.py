import pandas as pd

from analysis.tables import assemble_tables, concat
from creativity.io import redirect_log, write_parquet
from models.decoding import decoding_settings, settings_table

with redirect_log(snakemake.log[0]):
    settings = pd.concat(
        [settings_table(decoding_settings(arch, snakemake.params.decoding)) for arch in ("tpp", "ebt")],
        ignore_index=True,
    )
    tables = assemble_tables(
        runs=concat(snakemake.input.summaries),
        curves=concat(snakemake.input.curves),
        samples=concat(snakemake.input.samples),
        metrics=concat(snakemake.input.metrics),
        settings=settings,
    )
    for name, table in tables.items():
        write_parquet(table, snakemake.output[name])
        print(f"{name}: {len(table)} rows")
