"""Make the next run redo the jobs a kill -9 interrupted, and everything downstream of them.

Before a job runs, Snakemake deletes the job's old outputs and marks them incomplete in
.snakemake/incomplete/. If the run is killed then, the marker stays and the file is gone.
On the next run Snakemake takes the missing file for a deleted intermediate: when the
outputs that were built from it still exist (tables of an earlier complete run, say, after a
`--forcerun sample` or a retrained model) it reruns nothing and says "Nothing to be done",
leaving the tables stale and the file missing. Putting an empty file back under the marker
turns the job into an incomplete one, which `rerun-incomplete` (profiles/default) reruns,
and the new file, being newer, makes Snakemake rebuild everything that reads it.

Snakemake deletes the old outputs a moment before it writes the marker; a kill in that
instant leaves nothing to find here (README, Faults).
"""
from __future__ import annotations

from base64 import urlsafe_b64decode
from pathlib import Path

from creativity.io import TEMPORARY_NAME


def marked_incomplete(meta_dir: Path) -> list[Path]:
    """The output paths Snakemake marked incomplete (only plain relative paths inside the workdir)."""
    root = meta_dir / "incomplete"
    paths = []
    for marker in sorted(p for p in root.rglob("*") if p.is_file()):
        # a long name is split into directories "@chunk/@chunk/last" (snakemake.persistence.file)
        encoded = "".join(part.lstrip("@") for part in marker.relative_to(root).parts)
        try:
            path = Path(urlsafe_b64decode(encoded).decode())
        except ValueError:  # e.g. Snakemake's own "migration_underway" flag
            continue
        if not path.is_absolute() and ".." not in path.parts and "://" not in str(path):
            paths.append(path)
    return paths


def restore_killed_outputs(meta_dir: Path) -> list[Path]:
    """Recreate, empty, each output that is marked incomplete but missing; return them.

    Call only while no other run holds the directory: a live run's jobs have such markers too."""
    restored = []
    for path in marked_incomplete(meta_dir):
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.touch()
            restored.append(path)
    return restored


def damaged_tables(results: Path) -> list[tuple[Path, str]]:
    """Parquet files under `results` whose footer cannot be read (truncated or overwritten), with why.

    A reader of such a file fails on every rerun, and Snakemake, which trusts any file that
    exists, would rebuild nothing; removed, the file is rebuilt by its rule when needed."""
    import pyarrow.parquet as pq

    damaged = []
    for path in sorted(results.rglob("*.parquet")):
        if path.name.startswith("."):  # a writer's temporary file (creativity.io.atomic_path)
            continue
        try:
            pq.read_metadata(path)
        except (OSError, ValueError) as err:  # pyarrow's ArrowInvalid is a ValueError
            damaged.append((path, str(err).splitlines()[0]))
    return damaged


def leftover_temporaries(results: Path) -> list[Path]:
    """Half-written files of killed writers (creativity.io.atomic_path), e.g. a partial model."""
    return sorted(p for p in results.rglob(".*") if p.is_file() and TEMPORARY_NAME.match(p.name))
