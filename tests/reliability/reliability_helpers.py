"""Helpers of the reliability tests."""
from __future__ import annotations

import contextlib
import os


@contextlib.contextmanager
def unprivileged():
    """Run the block without root's right to write anywhere (as ``nobody``), so that a folder's
    permission bits decide; a no-op when not root. Root keeps its saved uid to come back."""
    if os.geteuid() != 0:
        yield
        return
    os.setresuid(65534, 65534, 0)
    try:
        yield
    finally:
        os.setresuid(0, 0, 0)
