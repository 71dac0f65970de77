# Creativity scaling-law pipeline:
#   task -> tune -> train -> sample -> score -> aggregate -> fit -> plot -> report
from pipeline.config import exit_on_yaml_error

exit_on_yaml_error("config.yaml")  # Snakemake names neither line nor column
configfile: "config.yaml"


include: "workflow/rules/common.smk"
include: "workflow/rules/task.smk"
include: "workflow/rules/tune.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/sample.smk"
include: "workflow/rules/score.smk"
include: "workflow/rules/aggregate.smk"
include: "workflow/rules/fit.smk"
include: "workflow/rules/plot.smk"


report: "workflow/report/workflow.rst"


rule all:
    input:
        rules.build_task.output,
        rules.tuning_table.output,
        rules.baseline.output,
        rules.aggregate.output,
        rules.fit.output,
        FIGURE_FILES,
        REPORT_PAGES,
