# Score every sample of one run with the task metrics, and aggregate per (decoding, level).
rule score:
    input:
        samples=f"{RUN_DIR}/samples_raw.parquet",
        prompts=f"{RESULTS}/task/prompts.parquet",
        graph=f"{RESULTS}/task/graph.parquet",
        labels=f"{RESULTS}/task/labels.parquet",
    output:
        scored=f"{RUN_DIR}/samples.parquet",
        metrics=f"{RUN_DIR}/metrics.parquet",
    params:
        num_nodes=config["graph"]["num_nodes"],
        scoring=config["scoring"],
    log:
        f"{RUN_DIR}/score.log",
    resources:
        mem_mb=2000,
        runtime=10,
    script:
        "../scripts/score.py"
