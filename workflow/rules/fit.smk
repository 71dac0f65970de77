# Every fit in one table (fits.parquet), then the findings page that states the answer from it.
rule fit:
    input:
        runs=f"{RESULTS}/tables/runs.parquet",
        metrics=f"{RESULTS}/tables/metrics.parquet",
        samples=f"{RESULTS}/tables/samples.parquet",
        # The uniform feasible-set null (rule baseline): the Pareto reference point's least novelty of a
        # correct walk, and the trade-off's null where the samples carry no length-matched one (*_null_lm).
        baseline=f"{RESULTS}/baseline/samples.parquet",
        # The task's Bayes-optimal loss (rule build_task): loss laws are fitted above it.
        loss_floor=f"{RESULTS}/task/loss_floor.parquet",
    output:
        fits=f"{RESULTS}/tables/fits.parquet",
        excluded=report(
            f"{RESULTS}/tables/excluded_runs.csv",
            caption="../report/excluded_runs.rst",
            category="7. Tables",
            subcategory="Excluded runs",
        ),
    params:
        code=fingerprint.code_version("workflow/scripts/fit.py"),
        n_boot=config["fit"]["n_boot"],
        seed=config["fit"]["seed"],
        min_correct=config["fit"]["min_correct"],
    log:
        f"{RESULTS}/logs/fit.log",
    resources:
        mem_mb=4000,
        runtime=10,
    script:
        "../scripts/fit.py"


rule findings:
    input:
        fits=rules.fit.output.fits,
        # The tuning sweep's table (tune.smk, included before this file).
        tuning=rules.tuning_table.output[0],
        # The figures that answer the question, embedded in the page (plot.smk draws them).
        paired_deltas=f"{RESULTS}/figures/paired_deltas.png",
        pareto=f"{RESULTS}/figures/pareto.png",
        thinking=f"{RESULTS}/figures/thinking.png",
    output:
        report(
            f"{RESULTS}/report/findings.html",
            caption="../report/findings.rst",
            category="1. Findings",
            labels={"page": "findings"},
        ),
    params:
        code=fingerprint.code_version("workflow/scripts/findings.py"),
    log:
        f"{RESULTS}/logs/findings.log",
    resources:
        mem_mb=1000,
        runtime=5,
    script:
        "../scripts/findings.py"


rule samples_table:
    input:
        samples=f"{RESULTS}/tables/samples.parquet",
        runs=f"{RESULTS}/tables/runs.parquet",
        metrics=f"{RESULTS}/tables/metrics.parquet",
    output:
        report(
            f"{RESULTS}/report/samples.html",
            caption="../report/samples.rst",
            category="7. Tables",
            subcategory="Walks",
            labels={"table": "samples"},
        ),
    params:
        code=fingerprint.code_version("workflow/scripts/samples_table.py"),
        seed=config["fit"]["seed"],
    log:
        f"{RESULTS}/logs/samples_table.log",
    resources:
        mem_mb=2000,
        runtime=5,
    script:
        "../scripts/samples_table.py"
