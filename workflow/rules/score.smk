TASK_TABLES = {name: f"{RESULTS}/task/{name}.parquet" for name in ("prompts", "graph", "labels", "heldout")}


# Score every sample of one run with the task metrics, and aggregate per (decoding, split, level).
rule score:
    input:
        samples=f"{RUN_DIR}/samples_raw.parquet",
        **TASK_TABLES,
    output:
        scored=f"{RUN_DIR}/samples.parquet",
        metrics=f"{RUN_DIR}/metrics.parquet",
    params:
        code=fingerprint.code_version("workflow/scripts/score.py"),
        num_nodes=config["graph"]["num_nodes"],
        task=config["task"],
        scoring=config["scoring"],
        seed=config["seed"],  # the length-matched reference walks (creativity/length_control.py)
    log:
        f"{RUN_DIR}/score.log",
    resources:
        mem_mb=2000,
        runtime=10,
    script:
        "../scripts/score.py"


# The feasible-set null: k walks per test and ood prompt drawn uniformly from those that
# answer it in at most max_answer_hops hops (its metrics' hop_cap column), scored like a run
# (run_id feasible_baseline, decoding uniform_feasible).
rule baseline:
    input:
        **TASK_TABLES,
    output:
        scored=f"{RESULTS}/baseline/samples.parquet",
        metrics=f"{RESULTS}/baseline/metrics.parquet",
    params:
        code=fingerprint.code_version("workflow/scripts/baseline.py"),
        num_nodes=config["graph"]["num_nodes"],
        task=config["task"],
        scoring=config["scoring"],
        num_samples=config["decoding"]["num_samples"],
        seed=config["seed"],
    log:
        f"{RESULTS}/logs/baseline.log",
    resources:
        mem_mb=2000,
        runtime=10,
    script:
        "../scripts/baseline.py"
