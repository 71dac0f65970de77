import pandas as pd

from creativity.io import redirect_log, write_parquet
from creativity.task import load_graph, scorer_for, sequence_limits, tokenizer_from_tables
from models.experiment import sample_run

with redirect_log(snakemake.log[0]):
    p = snakemake.params
    prompts = pd.read_parquet(snakemake.input.prompts)
    labels = pd.read_parquet(snakemake.input.labels)
    graph = load_graph(pd.read_parquet(snakemake.input.graph), labels, p.num_nodes, p.task["node_tokens"])
    samples = sample_run(
        run=p.run,
        status=pd.read_parquet(snakemake.input.summary)["status"].iloc[0],
        model_path=snakemake.input.model,
        prompts=prompts,
        tokenizer=tokenizer_from_tables(labels, p.num_nodes, p.task["node_tokens"]),
        decoding_cfg=p.decoding,
        scorer=scorer_for(graph, prompts, p.scoring, p.task["allow_revisits"]),
        max_new_tokens=sequence_limits(p.task)[0],
        device=p.device,
        threads=snakemake.threads,
    )
    write_parquet(samples, snakemake.output.samples)
    print(samples.groupby("decoding").size().to_string())
