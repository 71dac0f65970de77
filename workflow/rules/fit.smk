# Power laws, IsoFLOP optima, scaling-rate ratio, trade-off slopes and Pareto fronts.
rule fit:
    input:
        runs=f"{RESULTS}/tables/runs.parquet",
        metrics=f"{RESULTS}/tables/metrics.parquet",
    output:
        fits=f"{RESULTS}/tables/fits.parquet",
        excluded=report(
            f"{RESULTS}/tables/excluded_runs.csv",
            caption="../report/excluded_runs.rst",
            category="Tables",
        ),
    params:
        n_boot=config["fit"]["n_boot"],
        seed=config["fit"]["seed"],
    log:
        f"{RESULTS}/logs/fit.log",
    resources:
        mem_mb=2000,
        runtime=10,
    script:
        "../scripts/fit.py"
