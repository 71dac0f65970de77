import pandas as pd

from creativity.io import redirect_log, write_parquet
from creativity.task import load_graph, scorer_for, tokenizer_from_tables
from models.experiment import sample_run

with redirect_log(snakemake.log[0]):
    p = snakemake.params
    prompts = pd.read_parquet(snakemake.input.prompts)
    labels = pd.read_parquet(snakemake.input.labels)
    graph = load_graph(pd.read_parquet(snakemake.input.graph), labels, p.num_nodes, p.node_tokens)
    scorer = scorer_for(graph, prompts, p.scoring, p.allow_revisits) if p.scoring else None
    measured = {}  # decode-step FLOPs, measured once per setting cost for the whole batch
    for run, model, summary, out in zip(p.runs, snakemake.input.models, snakemake.input.summaries,
                                        snakemake.output.samples):
        samples = sample_run(
            run=run,
            status=pd.read_parquet(summary)["status"].iloc[0],
            model_path=model,
            prompts=prompts,
            tokenizer=tokenizer_from_tables(labels, p.num_nodes, p.node_tokens),
            decoding_cfg=p.decoding,
            scorer=scorer,
            max_new_tokens=p.max_new_tokens,
            device=p.device,
            threads=snakemake.threads,
            measured=measured,
        )
        write_parquet(samples, out)
        print(run["run_id"], samples.groupby("decoding").size().to_dict())
