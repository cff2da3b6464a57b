"""Stored weights: one ``.npz`` per task beside ``results.sqlite``, named by the sha256 of its bytes.

``DIR/weights/<sha256>.npz`` holds plain arrays (``np.load(..., allow_pickle=False)`` reads it) and
one ``info`` entry of JSON text. The zip is written with fixed member dates and order, so the same
arrays give the same bytes, hence the same name, on every run and machine. A file is written
atomically before the transaction that references it (``tasks.weights``), so a sweep killed in
between leaves at most an unreferenced file, which the next sweep reuses (same content, same name)
or removes (:func:`remove_unreferenced`).
"""
from __future__ import annotations

import hashlib
import io
import os
import re
import zipfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from synth.atomic import atomic_target
from verify.store import jsontext

WEIGHTS_FOLDER = "weights"
INFO = "info"
_NAME = re.compile(r"[0-9a-f]{64}\.npz")
_DATE = (1980, 1, 1, 0, 0, 0)


@dataclass(frozen=True)
class StoredWeights:
    """What a weights file holds: named arrays and a JSON-able ``info`` mapping."""

    arrays: dict[str, np.ndarray]
    info: dict[str, Any]
    sha256: str


def weights_bytes(arrays: Mapping[str, np.ndarray], info: Mapping[str, Any]) -> bytes:
    """The .npz bytes of ``arrays`` plus ``info`` (as JSON text): a pure function of its inputs."""
    if INFO in arrays:
        raise ValueError(f"arrays: the name {INFO!r} is reserved for the info entry")
    buffer = io.BytesIO()
    members = {**{name: np.require(arrays[name], requirements="C") for name in sorted(arrays)},
               INFO: np.array(jsontext.dumps(info))}
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as archive:
        for name, value in members.items():
            if value.dtype.hasobject:
                raise ValueError(f"arrays: {name} is an object array, which would need pickle")
            member = zipfile.ZipInfo(f"{name}.npy", date_time=_DATE)
            member.external_attr = 0o644 << 16
            with archive.open(member, "w", force_zip64=True) as handle:
                np.lib.format.write_array(handle, value, allow_pickle=False)
    return buffer.getvalue()


def write_weights(folder: Path, arrays: Mapping[str, np.ndarray], info: Mapping[str, Any]) -> str:
    """Write a weights file into ``folder`` atomically (kept if already there); return its sha256."""
    data = weights_bytes(arrays, info)
    sha = hashlib.sha256(data).hexdigest()
    path = Path(folder) / f"{sha}.npz"
    if not (path.is_file() and path.stat().st_size == len(data)):
        with atomic_target(path) as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
    return sha


def read_weights(folder: Path, sha: str) -> StoredWeights:
    """Read ``folder/<sha>.npz``, refusing (one line) a missing, altered or pickled file."""
    path = Path(folder) / f"{sha}.npz"
    if not path.is_file():
        raise ValueError(f"weights: {path} is missing; re-run the sweep to train the task again")
    data = path.read_bytes()
    if hashlib.sha256(data).hexdigest() != sha:
        raise ValueError(f"weights: {path} does not match its sha256 (damaged or edited); remove it "
                         f"and re-run the sweep")
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as archive:
            arrays = {name: archive[name] for name in archive.files}
        info = jsontext.loads(str(arrays.pop(INFO)[()]))
    except (ValueError, KeyError, OSError, zipfile.BadZipFile) as exc:
        raise ValueError(f"weights: {path} is not a weights file ({exc})") from None
    return StoredWeights(arrays=arrays, info=info, sha256=sha)


def remove_unreferenced(folder: Path, referenced: Iterable[str]) -> list[Path]:
    """Delete weights files (and temporary files of killed writes) that no task row references.

    Only the writer of the results folder calls this, before it writes anything.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return []
    keep = {f"{sha}.npz" for sha in referenced if sha}
    removed = []
    for path in folder.iterdir():
        stale = (_NAME.fullmatch(path.name) and path.name not in keep) or (
            path.name.startswith(".") and path.name.endswith(".tmp"))
        if stale and path.is_file():
            path.unlink()
            removed.append(path)
    return removed
