"""Wall time of each stage of a finished Snakemake run, read from its log.

For each rule: how many jobs ran, their summed job time (the cores they held, at the log's
one-second resolution), that time's share of all job time, and the stage's window from its
first start to its last finish, counted from the run's first job.

Run: python -m benchmarks.stage_times [SNAKEMAKE_LOG]
(default: the newest log in .snakemake/log/ in which a job finished; `make run`'s report step
writes a newer one with no jobs)
"""
from __future__ import annotations

import argparse
import re
from datetime import datetime
from pathlib import Path

import pandas as pd

_STAMP = re.compile(r"^\[(\w{3} \w{3} +\d+ \d\d:\d\d:\d\d \d{4})\]$")
_RULE = re.compile(r"^(?:local)?rule (\w+):$")
_JOBID = re.compile(r"^\s+jobid: (\d+)$")
_FINISHED = re.compile(r"^Finished jobid: (\d+) \(Rule: (\w+)\)$")


def job_times(lines) -> pd.DataFrame:
    """One row per finished job: rule, jobid, start and end (datetimes)."""
    stamp, rule, starts, rows = None, None, {}, []
    for line in lines:
        if m := _STAMP.match(line):
            stamp = datetime.strptime(m.group(1), "%a %b %d %H:%M:%S %Y")
        elif m := _RULE.match(line):
            rule = m.group(1)
        elif (m := _JOBID.match(line)) and rule is not None:
            starts[int(m.group(1))], rule = stamp, None
        elif m := _FINISHED.match(line):
            jobid = int(m.group(1))
            rows.append({"rule": m.group(2), "jobid": jobid, "start": starts.get(jobid, stamp), "end": stamp})
    return pd.DataFrame(rows, columns=["rule", "jobid", "start", "end"])


def stage_table(jobs: pd.DataFrame) -> pd.DataFrame:
    t0 = jobs["start"].min()
    jobs = jobs.assign(seconds=(jobs["end"] - jobs["start"]).dt.total_seconds(),
                       first=(jobs["start"] - t0).dt.total_seconds(), last=(jobs["end"] - t0).dt.total_seconds())
    out = jobs.groupby("rule").agg(jobs=("jobid", "size"), job_seconds=("seconds", "sum"),
                                   from_s=("first", "min"), to_s=("last", "max"))
    out["share"] = out["job_seconds"] / out["job_seconds"].sum()
    return out.sort_values("from_s")


def newest_run_log(log_dir=Path(".snakemake/log")) -> Path:
    """The newest Snakemake log in which a job finished."""
    for path in sorted(Path(log_dir).glob("*.snakemake.log"), reverse=True):  # names are timestamps
        if any(_FINISHED.match(line) for line in path.read_text().splitlines()):
            return path
    raise SystemExit(f"no Snakemake log in {log_dir} records a finished job; name one")


def main(path=None) -> pd.DataFrame:
    path = Path(path) if path else newest_run_log()
    table = stage_table(job_times(path.read_text().splitlines()))
    print(f"{path}\n{table.to_string(float_format=lambda x: f'{x:.2f}')}")
    print(f"\njob time {table['job_seconds'].sum():.0f} s; run from first start to last finish {table['to_s'].max():.0f} s")
    return table


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m benchmarks.stage_times",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("log", nargs="?", help="a Snakemake log (default: the newest in .snakemake/log/ "
                                               "in which a job finished)")
    main(parser.parse_args().log)
