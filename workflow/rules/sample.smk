# One job per trained run: generate answers to every test prompt under each decoding setting.
rule sample:
    input:
        model=f"{RUN_DIR}/model.pt",
        summary=f"{RUN_DIR}/train_summary.parquet",
        prompts=f"{RESULTS}/task/prompts.parquet",
        graph=f"{RESULTS}/task/graph.parquet",
        labels=f"{RESULTS}/task/labels.parquet",
    output:
        samples=f"{RUN_DIR}/samples_raw.parquet",
    params:
        run=run_spec,
        num_nodes=config["graph"]["num_nodes"],
        task=config["task"],
        decoding=config["decoding"],
        scoring=config["scoring"],
        device=config["resources"]["device"],
    log:
        f"{RUN_DIR}/sample.log",
    benchmark:
        f"{RUN_DIR}/sample.benchmark.tsv"
    threads: config["resources"]["threads_per_job"]
    resources:
        mem_mb=config["resources"]["train_mem_mb"],
        runtime=config["resources"]["train_runtime_min"],
        gpu=1 if USES_GPU else 0,
    script:
        "../scripts/sample.py"
