import pandas as pd

from analysis.tables import assemble_tables, concat
from creativity.io import redirect_log, write_parquet
from models.architectures import FAMILIES
from models.decoding import decoding_settings, settings_table
from pipeline.divergence import check_some_run_trained

with redirect_log(snakemake.log[0]):
    settings = pd.concat(
        [settings_table(decoding_settings(family, snakemake.params.decoding)) for family in FAMILIES],
        ignore_index=True,
    )
    runs = concat(snakemake.input.summaries)
    check_some_run_trained(runs)
    tables = assemble_tables(
        runs=runs,
        curves=concat(snakemake.input.curves),
        samples=concat(snakemake.input.samples),
        metrics=concat(snakemake.input.metrics),
        settings=settings,
    )
    for name, table in tables.items():
        write_parquet(table, snakemake.output[name])
        print(f"{name}: {len(table)} rows")
