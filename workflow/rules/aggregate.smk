# Concatenate the per-run tables into results/tables/.
rule aggregate:
    input:
        summaries=per_run("train_summary.parquet"),
        curves=per_run("curve.parquet"),
        samples=per_run("samples.parquet"),
        metrics=per_run("metrics.parquet"),
    output:
        runs=f"{RESULTS}/tables/runs.parquet",
        samples=f"{RESULTS}/tables/samples.parquet",
        metrics=f"{RESULTS}/tables/metrics.parquet",
        curves=f"{RESULTS}/tables/curves.parquet",
    params:
        decoding=config["decoding"],
        code=fingerprint.code_version("workflow/scripts/aggregate.py"),
    log:
        f"{RESULTS}/logs/aggregate.log",
    resources:
        mem_mb=4000,
        runtime=10,
    script:
        "../scripts/aggregate.py"
