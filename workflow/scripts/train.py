import json

import pandas as pd

from creativity.io import redirect_log, write_parquet
from creativity.task import sequence_limits, tokenizer_from_tables
from models.experiment import train_run

with redirect_log(snakemake.log[0]):
    p = snakemake.params
    # A grid run trains with its architecture's tuned setting; a tuning run with its own.
    tuned = snakemake.input.get("tuned")
    setting = json.load(open(tuned))["setting"] if tuned else p.setting
    summary, curve = train_run(
        run=p.run,
        corpus=pd.read_parquet(snakemake.input.corpus),
        tokenizer=tokenizer_from_tables(pd.read_parquet(snakemake.input.labels), p.num_nodes, p.task["node_tokens"]),
        max_seq_len=sequence_limits(p.task)[1],
        model_cfg=p.model,
        train_cfg=p.train,
        ebt_cfg=p.ebt,
        setting=setting,
        device=p.device,
        threads=snakemake.threads,
        run_dir=snakemake.output.model.rsplit("/", 1)[0],
    )
    write_parquet(curve, snakemake.output.curve)
    write_parquet(pd.DataFrame([summary]), snakemake.output.summary)
    print(pd.Series(summary).to_string())
