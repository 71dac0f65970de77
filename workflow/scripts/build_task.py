from creativity.io import write_parquet, redirect_log
from creativity.task import build_task

with redirect_log(snakemake.log[0]):
    p = snakemake.params
    tables = build_task(p.graph, p.task, p.corpus, p.seed)
    for name, table in tables.items():
        write_parquet(table, snakemake.output[name])
        print(f"{name}: {len(table)} rows -> {snakemake.output[name]}")
    print(tables["loss_floor"].to_string(index=False))
