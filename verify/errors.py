"""Errors the command line reports as one line (exit code 2) instead of a traceback."""
from __future__ import annotations


class UsageError(Exception):
    """Bad input from the user: printed as one line, exit code 2, nothing written."""
