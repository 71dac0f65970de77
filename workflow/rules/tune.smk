# The tuning stage. Every architecture gets the same number of sweep runs (config `tuning`:
# the product of its search values), all on one shape at one budget, trained as one batch by
# the train rule's template; the grid then trains with each architecture's best setting by
# val loss (results/tuning/{arch}/best.json).
from models.tuning import search_settings

TUNING = config["tuning"]
TUNING_SETTINGS = {arch: search_settings(TUNING["search"][arch]) for arch in ARCHS}
N_SETTINGS = len(TUNING_SETTINGS[ARCHS[0]])  # the same for every architecture (check_search)
TUNE_DIR = f"{RESULTS}/tuning/{{arch}}/setting{{setting}}"


def per_setting(filename: str) -> list[str]:
    return expand(f"{TUNE_DIR}/{filename}", setting=range(N_SETTINGS), allow_missing=True)


def tuning_specs(wildcards) -> list[dict]:
    return [{"run_id": f"tune_{wildcards.arch}_{i}", "arch": wildcards.arch, "budget": float(TUNING["budget"]),
             "shape": dict(TUNING["shape"]), "seed": int(TUNING["seed"])} for i in range(N_SETTINGS)]


use rule train as tune_run with:
    input:
        corpus=f"{RESULTS}/task/corpus.parquet",
        labels=f"{RESULTS}/task/labels.parquet",
    output:
        models=per_setting("model.pt"),
        summaries=per_setting("train_summary.parquet"),
        curves=per_setting("curve.parquet"),
    params:
        runs=tuning_specs,
        settings=lambda wc: TUNING_SETTINGS[wc.arch],
        num_nodes=config["graph"]["num_nodes"],
        node_tokens=config["task"]["node_tokens"],
        max_seq_len=sequence_limits(config["task"])[1],
        model=config["model"],
        train=TRAIN_SECTION,
        ebt=ebt_section,
        device=config["resources"]["device"],
        code=fingerprint.code_version("workflow/scripts/train.py"),
    log:
        f"{RESULTS}/tuning/{{arch}}/train.log",
    benchmark:
        f"{RESULTS}/tuning/{{arch}}/train.benchmark.tsv"
    priority: TUNING_PRIORITY
    resources:
        mem_mb=config["resources"]["train_mem_mb"] * N_SETTINGS,
        runtime=config["resources"]["train_runtime_min"] * N_SETTINGS,
        gpu=1 if USES_GPU else 0,


rule tune_select:
    input:
        summaries=lambda wc: expand(f"{TUNE_DIR}/train_summary.parquet", arch=wc.arch, setting=range(N_SETTINGS)),
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
