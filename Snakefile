# Creativity scaling-law pipeline:
#   task -> tune -> train -> sample -> score -> aggregate -> fit -> plot -> report
import sys

sys.path.insert(0, workflow.basedir)  # this checkout's packages, before an installed copy of them
from pipeline.config import exit_on_yaml_error

exit_on_yaml_error("config.yaml")  # Snakemake names neither line nor column
configfile: "config.yaml"


include: "workflow/rules/common.smk"
include: "workflow/rules/task.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/tune.smk"  # after train.smk: its tune_run is the train rule's template
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


# Last, when every rule is known: redo what a kill, a deletion or damage left (common.smk).
# Job processes parse the Snakefile too, under their parent's lock.
if workflow.is_main_process:
    refuse_a_report_without_its_run()
    resume_after_kill(lambda path: any(rule.is_producer(path) for rule in workflow.rules))
