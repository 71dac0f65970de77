rule build_task:
    output:
        graph=f"{RESULTS}/task/graph.parquet",
        labels=f"{RESULTS}/task/labels.parquet",
        prompts=f"{RESULTS}/task/prompts.parquet",
        corpus=f"{RESULTS}/task/corpus.parquet",
    params:
        graph=config["graph"],
        task=config["task"],
        corpus=config["corpus"],
        seed=config["seed"],
    log:
        f"{RESULTS}/logs/build_task.log",
    resources:
        mem_mb=2000,
        runtime=10,
    script:
        "../scripts/build_task.py"
