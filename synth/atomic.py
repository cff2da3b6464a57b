"""Atomic file writes: a temporary file in the target folder, moved into place with ``os.replace``.

A crash never leaves a half-written file under the final name, and the finished file gets the
permissions of an ordinary ``open()`` under the process's umask (``tempfile.mkstemp`` alone would
leave it readable by its owner only).
"""
from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

import numpy as np
from numpy.typing import ArrayLike

from synth.dataset import to_jsonable


def write_npz_atomic(path: Path, arrays: Mapping[str, ArrayLike]) -> None:
    """Write ``arrays`` to ``path`` as an uncompressed .npz, atomically."""
    with atomic_target(Path(path)) as handle:
        np.savez(handle, **arrays)  # type: ignore[arg-type]  # numpy's stub reads allow_pickle in **kwds


def write_json_atomic(path: Path, data) -> None:
    """Write ``data`` (numpy values converted) to ``path`` as indented JSON, atomically."""
    with atomic_target(Path(path)) as handle:
        handle.write(json.dumps(to_jsonable(data), indent=2, sort_keys=False).encode() + b"\n")


def current_umask() -> int:
    """The process's umask (read by setting it and putting it back)."""
    mask = os.umask(0o077)
    os.umask(mask)
    return mask


@contextmanager
def atomic_target(path: Path) -> Iterator[BinaryIO]:
    """Yield a binary handle on a temporary file that replaces ``path`` only on success."""
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.",
                                             suffix=".tmp")
    try:
        with os.fdopen(descriptor, "wb") as handle:
            os.fchmod(handle.fileno(), 0o666 & ~current_umask())
            yield handle
        os.replace(temp_name, path)
    except BaseException:
        os.unlink(temp_name)
        raise
