"""Make the next run redo what a kill interrupted, or a user deleted or damaged, and
everything built from it.

Snakemake trusts any output file that exists, and it takes a missing one for a deleted
intermediate: when the outputs built from it still exist it reruns nothing and says
"Nothing to be done", leaving the file missing (or damaged) and the tables stale. This
happens after a kill -9 (Snakemake deletes a job's old outputs before it runs), after
SIGTERM or SIGINT (its clean shutdown deletes the killed jobs' outputs, markers and
metadata), and after a user deletes a run directory or a file is truncated.

So before the DAG is built, files_to_redo lists the workflow's outputs that are
- damaged: a Parquet footer, a torch zip archive or a JSON file that cannot be read;
- missing although Snakemake recorded them (metadata: built once; an incomplete marker:
  begun by a killed job).
mark_for_rerun puts an empty file with an incomplete marker in the place of each, so
Snakemake takes the job for an interrupted one, which `rerun-incomplete` (profiles/default)
reruns; the new file, being newer, makes everything that reads it rebuild. A dry run
lists them and changes nothing.

Snakemake deletes the old outputs a moment before it writes the marker; a kill -9 in that
instant, on a first run, leaves nothing to find here (README, Faults).
"""
from __future__ import annotations

import json
import os
import zipfile
from base64 import urlsafe_b64decode, urlsafe_b64encode
from pathlib import Path
from typing import Callable

from creativity.io import TEMPORARY_NAME


def recorded(meta_dir: Path, subject: str) -> list[Path]:
    """The paths Snakemake keeps records of under meta_dir/subject ("incomplete" markers,
    "metadata" of outputs it built), only plain relative paths inside the workdir."""
    root = meta_dir / subject
    paths = []
    for record in sorted(p for p in root.rglob("*") if p.is_file()):
        # a long name is split into directories "@chunk/@chunk/last" (snakemake.persistence.file)
        encoded = "".join(part.lstrip("@") for part in record.relative_to(root).parts)
        try:
            path = Path(urlsafe_b64decode(encoded).decode())
        except ValueError:  # e.g. Snakemake's own "migration_underway" flag
            continue
        if not path.is_absolute() and ".." not in path.parts and "://" not in str(path):
            paths.append(path)
    return paths


def marked_incomplete(meta_dir: Path) -> list[Path]:
    return recorded(meta_dir, "incomplete")


def mark_incomplete(meta_dir: Path, path: Path) -> None:
    """Write the marker Snakemake writes when a job starts (snakemake.persistence.file)."""
    root = meta_dir / "incomplete"
    root.mkdir(parents=True, exist_ok=True)
    max_len = os.pathconf(root, "PC_NAME_MAX") or 255
    name = urlsafe_b64encode(str(path).encode()).decode()
    chunks = [name[i:i + max_len - 1] for i in range(0, len(name), max_len - 1)]
    marker = root.joinpath(*["@" + c for c in chunks[:-1]], chunks[-1])
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.write_text(json.dumps({"external_jobid": None}))


def damage(path: Path) -> str | None:
    """Why `path` cannot be read as what its suffix says, or None if it can (or is not checked).

    A reader of a damaged file fails on every rerun, and Snakemake would rebuild nothing."""
    try:
        if path.suffix == ".parquet":
            import pyarrow.parquet as pq

            pq.read_metadata(path)
        elif path.suffix == ".pt":  # torch.save writes a zip archive; a truncated one has no directory
            with zipfile.ZipFile(path) as archive:
                archive.namelist()
        elif path.suffix == ".json":
            json.loads(path.read_text())
    except (OSError, ValueError, zipfile.BadZipFile) as err:  # pyarrow's ArrowInvalid is a ValueError
        return str(err).splitlines()[0] if str(err) else type(err).__name__
    return None


def damaged_files(results: Path) -> list[tuple[Path, str]]:
    """Parquet, torch and JSON files under `results` that cannot be read, with why."""
    found = []
    for path in sorted(results.rglob("*")):
        if path.is_file() and not path.name.startswith("."):  # a writer's temporary (creativity.io.atomic_path)
            why = damage(path)
            if why:
                found.append((path, why))
    return found


def files_to_redo(results: Path, meta_dir: Path, is_output: Callable[[str], bool]) -> list[tuple[Path, str]]:
    """Outputs of this workflow (`is_output`) that the next run must rebuild, with why:
    damaged ones under `results`, and missing ones Snakemake built or began before.

    Call only while no other run holds the directory: a live run's jobs have markers too."""
    incomplete = set(marked_incomplete(meta_dir))  # present ones Snakemake reruns itself (rerun-incomplete)
    redo = {path: f"damaged ({why})" for path, why in damaged_files(results) if path not in incomplete}
    for path in recorded(meta_dir, "metadata"):
        if not path.exists():
            redo.setdefault(path, "missing, though built before")
    for path in incomplete:
        if not path.exists():
            redo.setdefault(path, "missing, its job killed")
    return sorted((path, why) for path, why in redo.items() if is_output(str(path)))


def mark_for_rerun(meta_dir: Path, paths: list[Path]) -> None:
    """Empty each file and mark it incomplete, so Snakemake reruns its job (rerun-incomplete)."""
    for path in paths:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"")
        mark_incomplete(meta_dir, path)


def leftover_temporaries(results: Path) -> list[Path]:
    """Half-written files of killed writers (creativity.io.atomic_path), e.g. a partial model."""
    return sorted(p for p in results.rglob(".*") if p.is_file() and TEMPORARY_NAME.match(p.name))
