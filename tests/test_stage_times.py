"""Stage times read from a Snakemake log (benchmarks/stage_times.py)."""
import pytest

from benchmarks.stage_times import job_times, newest_run_log, stage_table

LOG = """\
[Wed Nov 25 05:26:35 2026]
localrule build_task:
    output: results/task/corpus.parquet
    jobid: 1
[Wed Nov 25 05:26:37 2026]
Finished jobid: 1 (Rule: build_task)
[Wed Nov 25 05:26:37 2026]
localrule train:
    jobid: 7
[Wed Nov 25 05:26:38 2026]
rule train:
    jobid: 8
[Wed Nov 25 05:26:47 2026]
Finished jobid: 7 (Rule: train)
[Wed Nov 25 05:26:50 2026]
Finished jobid: 8 (Rule: train)
"""


def test_stage_table_sums_job_time_and_spans_each_stage():
    jobs = job_times(LOG.splitlines())
    assert list(jobs["jobid"]) == [1, 7, 8]
    table = stage_table(jobs)
    assert list(table.index) == ["build_task", "train"]
    assert table.loc["build_task", "job_seconds"] == 2 and table.loc["train", "job_seconds"] == 10 + 12
    assert table.loc["train", "jobs"] == 2
    assert (table.loc["train", "from_s"], table.loc["train", "to_s"]) == (2, 15)
    assert table["share"].tolist() == [2 / 24, 22 / 24]


def test_the_default_log_is_the_newest_with_jobs(tmp_path):
    """`make run` ends with a report step whose log, the newest, records no job."""
    with pytest.raises(SystemExit, match="no Snakemake log"):
        newest_run_log(tmp_path)
    (tmp_path / "2026-11-25T052635.000000.snakemake.log").write_text(LOG)
    (tmp_path / "2026-11-25T053000.000000.snakemake.log").write_text("Building DAG of jobs...\nReport created.\n")
    assert newest_run_log(tmp_path).name.startswith("2026-11-25T052635")
