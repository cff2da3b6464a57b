"""One writer per results folder: an exclusive lock on ``DIR/.ftstab-lock`` held for the whole run.

Two ``ftstab verify`` (or ``ftstab real``) on the same folder would both train every task; the
second is refused in one line naming the holder (pid, host, start time). The lock is the
operating system's (``fcntl.flock``), so it ends with the process that holds it, even on SIGKILL:
a stale lock file never blocks a later run. The descriptor is not inherited by worker processes.
"""
from __future__ import annotations

import json
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

from verify.errors import UsageError

LOCK_FILE = ".ftstab-lock"


def _holder(descriptor: int) -> str:
    try:
        holder = json.loads(os.pread(descriptor, 4096, 0).decode() or "{}")
        return f"pid {holder['pid']} on {holder['host']}, started {holder['started']}"
    except (OSError, ValueError, KeyError, TypeError):
        return "a process that has not said who it is"


@contextmanager
def results_folder_lock(folder: Path, option: str = "--out") -> Iterator[Path]:
    """Hold the lock of ``folder`` (which must exist) for the ``with`` block.

    Raises
    ------
    UsageError
        When another process holds it (the message names that process), or the lock file cannot
        be created.
    """
    try:
        import fcntl
    except ImportError:  # no flock (Windows): one writer is then the user's care
        yield folder
        return
    path = folder / LOCK_FILE
    try:
        descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    except OSError as exc:
        raise UsageError(f"{option}: cannot create the lock file {path}: {exc.strerror or exc}") from None
    try:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise UsageError(f"{option}: {folder} is being written by another ftstab process "
                             f"({_holder(descriptor)}); wait for it to finish or use another "
                             f"folder") from None
        started = datetime.now(timezone.utc).isoformat(timespec="seconds")
        record = json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "started": started})
        os.ftruncate(descriptor, 0)
        os.pwrite(descriptor, record.encode() + b"\n", 0)
        yield folder
    finally:
        os.close(descriptor)  # releases the lock
