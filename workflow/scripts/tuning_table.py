from analysis.tables import concat
from creativity.io import redirect_log, write_parquet

with redirect_log(snakemake.log[0]):
    table = concat(snakemake.input.sweeps)
    write_parquet(table, snakemake.output[0])
    print(table.to_string())
