import pandas as pd

from creativity.evaluate import metrics_table, score_samples
from creativity.io import redirect_log, write_parquet
from creativity.task import load_graph, scorer_for

with redirect_log(snakemake.log[0]):
    p = snakemake.params
    prompts = pd.read_parquet(snakemake.input.prompts)
    graph = load_graph(pd.read_parquet(snakemake.input.graph), pd.read_parquet(snakemake.input.labels), p.num_nodes)
    scored = score_samples(pd.read_parquet(snakemake.input.samples), prompts, scorer_for(graph, prompts, p.scoring))
    write_parquet(scored, snakemake.output.scored)
    write_parquet(metrics_table(scored, ["run_id", "decoding"]), snakemake.output.metrics)
