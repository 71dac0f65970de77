# One job trains one (architecture, budget, shape, seed) to its FLOP budget, with the
# architecture's tuned setting. It checkpoints into its run directory; a rerun resumes there.
rule train:
    input:
        corpus=f"{RESULTS}/task/corpus.parquet",
        labels=f"{RESULTS}/task/labels.parquet",
        tuned=f"{RESULTS}/tuning/{{arch}}/best.json",
    output:
        model=f"{RUN_DIR}/model.pt",
        summary=f"{RUN_DIR}/train_summary.parquet",
        curve=f"{RUN_DIR}/curve.parquet",
    params:
        run=run_spec,
        num_nodes=config["graph"]["num_nodes"],
        task=config["task"],
        model=config["model"],
        train=config["train"],
        ebt=config["ebt"],
        device=config["resources"]["device"],
    log:
        f"{RUN_DIR}/train.log",
    benchmark:
        f"{RUN_DIR}/train.benchmark.tsv"
    threads: config["resources"]["threads_per_job"]
    resources:
        mem_mb=config["resources"]["train_mem_mb"],
        runtime=config["resources"]["train_runtime_min"],
        gpu=1 if USES_GPU else 0,
    script:
        "../scripts/train.py"
