"""Who holds a working directory's Snakemake lock, and whether a leftover lock is provably stale.

Snakemake locks a working directory with files in .snakemake/locks/ and refuses a second
run while they exist. A run killed with -9 leaves them behind, and Snakemake cannot tell a
dead run's lock from a live one. So the run that takes the lock records itself beside it
(OWNER_FILE), and a later run removes the lock only when that owner is provably gone: the
same kernel boot and PID namespace (so its pid means the same process here), and that pid no
longer names the process that started at the recorded time. A run on another host or in
another PID namespace (a container, a second login node on a shared filesystem) cannot be
checked from here: its lock stays, and the message says exactly what to run.
"""
from __future__ import annotations

import json
import os
import shlex
import socket
import sys
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path

from creativity.io import atomic_path

OWNER_FILE = "owner.json"


@dataclass(frozen=True)
class Owner:
    host: str
    boot_id: str | None  # /proc/sys/kernel/random/boot_id: one per kernel boot, shared by all namespaces
    pid_namespace: str | None  # readlink /proc/self/ns/pid, e.g. "pid:[4026531836]"
    pid: int
    start_ticks: int | None  # /proc/<pid>/stat field 22: start time in clock ticks after boot
    command: str
    started: str

    def describe(self) -> str:
        return (f"pid {self.pid} on host {self.host} (PID namespace {self.pid_namespace}), "
                f"started {self.started}: {self.command}")


def _read(path: str) -> str | None:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return None


def start_ticks(pid: int) -> int | None:
    """When `pid` started, or None if no such process exists (in this PID namespace)."""
    stat = _read(f"/proc/{pid}/stat")
    if stat is None:
        return None
    return int(stat.rsplit(")", 1)[1].split()[19])  # fields after "(comm)" start at field 3


def this_process() -> Owner:
    try:
        namespace = os.readlink("/proc/self/ns/pid")
    except OSError:
        namespace = None
    return Owner(
        host=socket.gethostname(),
        boot_id=_read("/proc/sys/kernel/random/boot_id"),
        pid_namespace=namespace,
        pid=os.getpid(),
        start_ticks=start_ticks(os.getpid()),
        command=shlex.join(sys.argv),
        started=datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC"),
    )


def _checkable(owner: Owner, here: Owner) -> bool:
    """Whether `owner`'s pid means the same process here: same kernel boot, same PID namespace."""
    if None in (owner.boot_id, owner.pid_namespace, owner.start_ticks, here.boot_id, here.pid_namespace):
        return False
    return (owner.boot_id, owner.pid_namespace) == (here.boot_id, here.pid_namespace)


def is_gone(owner: Owner, here: Owner) -> bool:
    """True only when `owner` provably no longer runs; unknown is not gone."""
    return _checkable(owner, here) and start_ticks(owner.pid) != owner.start_ticks  # no such pid, or reused


def is_alive(owner: Owner, here: Owner) -> bool:
    """True only when `owner` provably still runs: its pid names the process that started then."""
    return _checkable(owner, here) and start_ticks(owner.pid) == owner.start_ticks


def record_owner(lock_dir: Path, owner: Owner) -> None:
    with atomic_path(lock_dir / OWNER_FILE) as tmp:  # makes lock_dir; a reader never sees half a file
        Path(tmp).write_text(json.dumps(asdict(owner)))


def read_owner(lock_dir: Path) -> Owner | None:
    try:
        return Owner(**json.loads((lock_dir / OWNER_FILE).read_text()))
    except (OSError, ValueError, TypeError):
        return None


class LockHeld(Exception):
    pass


def refuse_unlock_if_alive(lock_dir: Path, here: Owner) -> None:
    """`snakemake --unlock` removes the locks of a live run too, and the next plain run then
    takes that run's jobs for killed ones: two runs write the same files. Raise LockHeld when
    the lock's owner provably still runs, saying how to stop it or, knowingly, force the unlock."""
    owner = read_owner(lock_dir)
    if not any(lock_dir.glob("*.lock")) or owner is None or not is_alive(owner, here):
        return
    raise LockHeld(
        f"Refusing to unlock: this directory is locked by a run that is still running ({owner.describe()}).\n"
        f"Wait for it to finish, or stop it first (kill {owner.pid}; it then stops its jobs), and rerun.\n"
        "To remove the lock anyway, knowing that two runs would then write the same files:\n"
        f"    rm -r {lock_dir.resolve()}"
    )


def release_if_stale(lock_dir: Path, here: Owner) -> str | None:
    """Remove Snakemake's locks in `lock_dir` if their owner is provably gone.

    Returns a note to print when a stale lock was removed, None when there was no lock;
    raises LockHeld, with what to run, when the lock may belong to a live run."""
    locks = sorted(lock_dir.glob("*.lock"))
    if not locks:
        return None
    owner = read_owner(lock_dir)
    if owner is not None and is_gone(owner, here):
        for path in [*locks, lock_dir / OWNER_FILE]:
            path.unlink(missing_ok=True)
        return f"Removed the lock of a run that is no longer running ({owner.describe()}); resuming."
    if owner is not None and is_alive(owner, here):
        raise LockHeld(
            f"This directory is locked by a run that is still running ({owner.describe()}).\n"
            f"Wait for it to finish, or stop it (kill {owner.pid}) and rerun: {here.command}"
        )
    raise LockHeld(
        f"This directory is locked by {owner.describe() if owner else 'a run that did not record itself'}.\n"
        f"{_why_it_may_be_running(owner, here)}\n"
        "If it is running, wait for it to finish. If you are sure it is not, remove its lock and rerun:\n"
        f"    {here.command} --unlock\n"
        f"    {here.command}"
    )


def _why_it_may_be_running(owner: Owner | None, here: Owner) -> str:
    if owner is None:
        return "Its owner is unknown (killed as it started, or locked by an older version), so it may still be running."
    if _checkable(owner, here):
        return f"Whether that process still runs could not be read from /proc (checked from {here.describe()})."
    return (f"It ran on another host or in another PID namespace than this run ({here.describe()}), "
            "so whether it still runs cannot be checked from here.")
