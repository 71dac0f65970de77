# One job per batch (every seed of one architecture, budget and shape): answer every test
# prompt under each decoding setting of the architecture, one run after another in one
# process, so the imports and each decode-step FLOP measurement are paid once per batch.
from models.architectures import ARCHITECTURES, TPP_FAMILY


def decoding_section(wildcards) -> dict:
    """Only the decoding settings of the job's architecture, so that editing the other
    family's settings resamples nothing here."""
    family = ARCHITECTURES[wildcards.arch].family
    return {"num_samples": config["decoding"]["num_samples"], family: config["decoding"][family]}


def scoring_section(wildcards) -> dict:
    """The reward tilt re-ranks Transformer++ samples by U·N; an EBT job never scores."""
    return config["scoring"] if ARCHITECTURES[wildcards.arch].family == TPP_FAMILY else {}


# Without a scoring section the script builds no scorer, so an EBT job runs none of the
# scorer's code: editing creativity/scoring.py resamples only the Transformer++.
SAMPLE_CODE = {
    family: fingerprint.code_version(
        "workflow/scripts/sample.py", not_run=() if family == TPP_FAMILY else fingerprint.SAMPLE_SCORER_CODE)
    for family in {arch.family for arch in ARCHITECTURES.values()}
}


def sample_code(wildcards) -> str:
    return SAMPLE_CODE[ARCHITECTURES[wildcards.arch].family]


rule sample:
    input:
        models=per_seed("model.pt"),
        summaries=per_seed("train_summary.parquet"),
        prompts=f"{RESULTS}/task/prompts.parquet",
        graph=f"{RESULTS}/task/graph.parquet",
        labels=f"{RESULTS}/task/labels.parquet",
    output:
        samples=per_seed("samples_raw.parquet"),
    params:
        runs=batch_specs,
        num_nodes=config["graph"]["num_nodes"],
        node_tokens=config["task"]["node_tokens"],
        allow_revisits=config["task"]["allow_revisits"],
        max_new_tokens=sequence_limits(config["task"])[0],
        decoding=decoding_section,
        scoring=scoring_section,
        device=config["resources"]["device"],
        code=sample_code,
    log:
        f"{BATCH_DIR}/sample.log",
    benchmark:
        f"{BATCH_DIR}/sample.benchmark.tsv"
    threads: config["resources"]["threads_per_job"]
    resources:
        mem_mb=config["resources"]["train_mem_mb"],
        runtime=config["resources"]["train_runtime_min"] * len(SEEDS),
        gpu=1 if USES_GPU else 0,
    script:
        "../scripts/sample.py"
