import json

import pandas as pd

from creativity.io import redirect_log, write_parquet
from creativity.task import tokenizer_from_tables
from models.experiment import train_runs

with redirect_log(snakemake.log[0]):
    p = snakemake.params
    # A grid batch trains with its architecture's tuned setting; a tuning batch, one setting a run.
    tuned = snakemake.input.get("tuned")
    settings = [json.load(open(tuned))["setting"]] * len(p.runs) if tuned else p.settings
    results = train_runs(
        runs=p.runs,
        settings=settings,
        corpus=pd.read_parquet(snakemake.input.corpus),
        tokenizer=tokenizer_from_tables(pd.read_parquet(snakemake.input.labels), p.num_nodes, p.node_tokens),
        max_seq_len=p.max_seq_len,
        model_cfg=p.model,
        train_cfg=p.train,
        ebt_cfg=p.ebt,
        device=p.device,
        threads=snakemake.threads,
        run_dirs=[path.rsplit("/", 1)[0] for path in snakemake.output.models],
    )
    for (summary, curve), summary_path, curve_path in zip(results, snakemake.output.summaries, snakemake.output.curves):
        write_parquet(curve, curve_path)
        write_parquet(pd.DataFrame([summary]), summary_path)
    print(pd.DataFrame([summary for summary, _ in results]).T.to_string())
