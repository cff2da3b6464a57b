"""What a bad input is: errors the command line reports as one line (exit code 2) instead of a
traceback, and the check that an output folder can be written. (The declared range of every numeric
option and parameter is written in ``synth.validation``'s vocabulary.)"""
from __future__ import annotations

import os
from pathlib import Path


class UsageError(Exception):
    """Bad input from the user: printed as one line, exit code 2, nothing written."""


def check_output_folder(path: Path, option: str) -> None:
    """Refuse (UsageError) an output folder that cannot be made and written, writing nothing.

    ``path`` must be a folder, or not exist yet below a folder where this process may create
    entries. This is the cheap early check; creating the folder (:func:`make_output_folder`)
    still reports what the operating system refuses.
    """
    existing = path
    while not existing.exists():
        if existing.parent == existing:
            break
        existing = existing.parent
    if existing.exists() and not existing.is_dir():
        what = "exists and is not a folder" if existing == path else f"lies under {existing}, a file"
        raise UsageError(f"{option}: {path} {what}")
    effective = os.access in os.supports_effective_ids
    if not os.access(existing, os.W_OK | os.X_OK, effective_ids=effective):
        where = "" if existing == path else f" (its nearest existing folder {existing} is not)"
        raise UsageError(f"{option}: {path} is not writable{where}")


def make_output_folder(path: Path, option: str) -> bool:
    """Create ``path`` (and missing parents); True if it was created. One-line UsageError on failure."""
    check_output_folder(path, option)
    if path.is_dir():
        return False
    try:
        path.mkdir(parents=True)
    except FileExistsError:
        return False
    except OSError as exc:
        raise UsageError(f"{option}: cannot create {path}: {exc.strerror or exc}") from None
    return True
