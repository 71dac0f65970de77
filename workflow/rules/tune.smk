# The tuning stage. Every architecture gets the same number of sweep runs (config `tuning`:
# the product of its search values), all on one shape at one budget; the grid then trains
# with each architecture's best setting by val loss (results/tuning/{arch}/best.json).
from models.tuning import check_search, search_settings

try:
    check_search(config["tuning"]["search"], ARCHS)
except ValueError as err:
    sys.exit(f"ConfigError: {err}")

TUNING = config["tuning"]
TUNING_SETTINGS = {arch: search_settings(TUNING["search"][arch]) for arch in ARCHS}
TUNE_DIR = f"{RESULTS}/tuning/{{arch}}/setting{{setting}}"


def tuning_run_spec(wildcards) -> dict:
    return {
        "run_id": f"tune_{wildcards.arch}_{wildcards.setting}",
        "arch": wildcards.arch,
        "budget": float(TUNING["budget"]),
        "shape": dict(TUNING["shape"]),
        "seed": int(TUNING["seed"]),
    }


rule tune_run:
    wildcard_constraints:
        setting=r"\d+",
    input:
        corpus=f"{RESULTS}/task/corpus.parquet",
        labels=f"{RESULTS}/task/labels.parquet",
    output:
        model=f"{TUNE_DIR}/model.pt",
        summary=f"{TUNE_DIR}/train_summary.parquet",
        curve=f"{TUNE_DIR}/curve.parquet",
    params:
        run=tuning_run_spec,
        setting=lambda wc: TUNING_SETTINGS[wc.arch][int(wc.setting)],
        num_nodes=config["graph"]["num_nodes"],
        task=config["task"],
        model=config["model"],
        train=config["train"],
        ebt=config["ebt"],
        device=config["resources"]["device"],
    log:
        f"{TUNE_DIR}/train.log",
    benchmark:
        f"{TUNE_DIR}/train.benchmark.tsv"
    threads: config["resources"]["threads_per_job"]
    resources:
        mem_mb=config["resources"]["train_mem_mb"],
        runtime=config["resources"]["train_runtime_min"],
        gpu=1 if USES_GPU else 0,
    script:
        "../scripts/train.py"


rule tune_select:
    input:
        summaries=lambda wc: expand(f"{TUNE_DIR}/train_summary.parquet", arch=wc.arch,
                                    setting=range(len(TUNING_SETTINGS[wc.arch]))),
    output:
        best=f"{RESULTS}/tuning/{{arch}}/best.json",
        sweep=f"{RESULTS}/tuning/{{arch}}/sweep.parquet",
    params:
        settings=lambda wc: TUNING_SETTINGS[wc.arch],
    log:
        f"{RESULTS}/logs/tune_select_{{arch}}.log",
    resources:
        mem_mb=1000,
        runtime=5,
    script:
        "../scripts/tune_select.py"


rule tuning_table:
    input:
        sweeps=expand(f"{RESULTS}/tuning/{{arch}}/sweep.parquet", arch=ARCHS),
    output:
        f"{RESULTS}/tables/tuning.parquet",
    log:
        f"{RESULTS}/logs/tuning_table.log",
    resources:
        mem_mb=1000,
        runtime=5,
    script:
        "../scripts/tuning_table.py"
