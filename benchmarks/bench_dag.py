"""Scale of the DAG itself: a dry run of the paper-scale preset."""
import re
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def run() -> dict:
    snakemake = str(Path(sys.executable).with_name("snakemake"))
    cmd = [snakemake, "-n", "--cores", "1", "--quiet", "rules", "--configfile", "workflow/presets/paper.yaml"]
    t0 = time.perf_counter()
    out = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, check=True)
    seconds = time.perf_counter() - t0
    total = re.search(r"^total\s+(\d+)$", out.stdout + out.stderr, flags=re.M)
    return {"dag_dryrun_seconds": seconds, "dag_jobs": int(total.group(1)) if total else -1}


if __name__ == "__main__":
    print(run())
