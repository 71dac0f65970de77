"""Atomic writes and rule logs shared by the workflow scripts."""
from __future__ import annotations

import contextlib
import errno
import os
import re
import shutil
import traceback
import uuid
from pathlib import Path

import pandas as pd


# The temporary names atomic_path uses; a kill -9 can leave one behind (pipeline.resume removes them).
TEMPORARY_NAME = re.compile(r"^\..+\.[0-9a-f]{8}\.tmp(\.\w+)?$")


@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary path beside `path`; rename it into place only on success,
    so a killed job never leaves a truncated file that a later run trusts.

    The temporary name keeps the suffix (savefig reads the format from it), and the
    file is created by the writer with an ordinary open(), so it gets the user's umask
    (mkstemp would make every output 0600, unreadable to collaborators)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.{uuid.uuid4().hex[:8]}.tmp{path.suffix}")
    try:
        yield str(tmp)
        os.replace(tmp, path)
    except Exception as err:
        if _disk_full(err, path.parent):  # checked before the partial file is removed
            raise OSError(errno.ENOSPC, f"disk full: no space left to write {path} "
                                        f"(free some space on {path.parent}'s filesystem and rerun)") from err
        raise
    finally:
        tmp.unlink(missing_ok=True)


# Below this many free bytes a failed write is taken for a full disk: torch.save reports one
# only as "RuntimeError: [enforce fail at inline_container.cc] . unexpected pos".
FULL_DISK_BYTES = 1 << 20


def _disk_full(err: Exception, directory: Path) -> bool:
    if isinstance(err, OSError) and err.errno == errno.ENOSPC:
        return True
    try:
        return shutil.disk_usage(directory).free < FULL_DISK_BYTES
    except OSError:
        return False


def write_parquet(df: pd.DataFrame, path) -> None:
    with atomic_path(path) as tmp:
        df.to_parquet(tmp, index=False)


@contextlib.contextmanager
def redirect_log(log_path):
    """Append a script's stdout and stderr to its Snakemake log file (a rerun keeps the earlier attempt).

    An exception is written to the log with its traceback before it propagates, so the log
    Snakemake points to on failure says what went wrong."""
    Path(log_path).parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "a") as log, contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
        try:
            yield
        except BaseException:
            traceback.print_exc(file=log)
            raise
