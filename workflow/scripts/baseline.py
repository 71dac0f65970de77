from creativity.baseline import baseline_samples
from creativity.evaluate import metrics_table
from creativity.io import redirect_log, write_parquet
from creativity.length_control import score_run
from creativity.task import load_task_scorer, max_answer_hops
from models.experiment import SAMPLE_COLUMNS

with redirect_log(snakemake.log[0]):
    p = snakemake.params
    prompts, scorer = load_task_scorer(snakemake.input, p.num_nodes, p.task, p.scoring)
    hop_cap = max_answer_hops(p.task)
    raw = baseline_samples(scorer.graph, prompts, hop_cap, p.task["allow_revisits"], p.num_samples, p.seed)
    raw = raw.reindex(columns=SAMPLE_COLUMNS)  # a run's columns; model-only ones (FLOPs, energies) NaN
    scored = score_run(raw, prompts, scorer, p.seed)
    write_parquet(scored, snakemake.output.scored)
    write_parquet(metrics_table(scored, ["run_id", "decoding"]).assign(hop_cap=hop_cap), snakemake.output.metrics)
    print(f"{len(scored)} baseline walks for {scored['prompt_id'].nunique()} prompts, at most {hop_cap} hops")
