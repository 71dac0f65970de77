import pandas as pd

from creativity.evaluate import metrics_table
from creativity.io import redirect_log, write_parquet
from creativity.length_control import score_run
from creativity.task import load_task_scorer

with redirect_log(snakemake.log[0]):
    p = snakemake.params
    prompts, scorer = load_task_scorer(snakemake.input, p.num_nodes, p.task, p.scoring)
    scored = score_run(pd.read_parquet(snakemake.input.samples), prompts, scorer, p.seed)
    write_parquet(scored, snakemake.output.scored)
    write_parquet(metrics_table(scored, ["run_id", "decoding"]), snakemake.output.metrics)
