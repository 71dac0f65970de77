from creativity.io import write_parquet, redirect_log
from creativity.task import build_task_tables

with redirect_log(snakemake.log[0]):
    p = snakemake.params
    tables = build_task_tables(p.graph, p.task, p.corpus, p.seed)
    for name, table in tables.items():
        write_parquet(table, snakemake.output[name])
        print(f"{name}: {len(table)} rows -> {snakemake.output[name]}")
