# Creativity scaling-law pipeline: task -> train -> sample -> score -> aggregate -> fit -> plot -> report.
configfile: "config.yaml"


include: "workflow/rules/common.smk"
include: "workflow/rules/task.smk"


rule all:
    input:
        rules.build_task.output,
