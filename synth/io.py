"""Save and load datasets as ``<id>.npz`` (arrays, no pickle) plus ``<id>.json`` (the card).

Every file is written to a temporary name in the same folder and moved into place with
``os.replace``, so a crash never leaves a half-written file. The card is written last: a dataset
exists once its ``.json`` does.
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

from synth.dataset import Dataset, to_jsonable

MAIN_ARRAYS = ("X", "y", "X_test", "y_test")


def write_npz_atomic(path: Path, arrays: Mapping[str, np.ndarray]) -> None:
    """Write ``arrays`` to ``path`` as an uncompressed .npz, atomically."""
    with _atomic_target(Path(path)) as handle:
        np.savez(handle, **arrays)


def write_json_atomic(path: Path, data) -> None:
    """Write ``data`` (numpy values converted) to ``path`` as indented JSON, atomically."""
    with _atomic_target(Path(path)) as handle:
        handle.write(json.dumps(to_jsonable(data), indent=2, sort_keys=False).encode() + b"\n")


def save_dataset(dataset: Dataset, folder: str | os.PathLike) -> Path:
    """Write ``<id>.npz`` and ``<id>.json`` into ``folder`` (created if missing).

    Returns
    -------
    Path
        The path of the ``.npz`` file.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    clash = sorted(set(MAIN_ARRAYS) & set(dataset.arrays))
    if clash:
        raise ValueError(f"dataset.arrays must not use the reserved key {clash[0]!r}")
    arrays = dict(zip(MAIN_ARRAYS, (dataset.X, dataset.y, dataset.X_test, dataset.y_test)))
    arrays.update(dataset.arrays)
    npz_path = folder / f"{dataset.id}.npz"
    write_npz_atomic(npz_path, arrays)
    write_json_atomic(folder / f"{dataset.id}.json", dataset.card)
    return npz_path


def load_dataset(path_or_id: str | os.PathLike, folder: str | os.PathLike | None = None
                 ) -> Dataset:
    """Load a dataset from its ``.npz`` or ``.json`` path, or from its id inside ``folder``."""
    path = Path(path_or_id) if folder is None else Path(folder) / str(path_or_id)
    stem = path.with_suffix("") if path.suffix in (".npz", ".json") else path
    card_path, npz_path = stem.with_suffix(".json"), stem.with_suffix(".npz")
    if not card_path.exists():
        raise ValueError(f"no dataset at {stem}: {card_path.name} not found")
    card = json.loads(card_path.read_text())
    with np.load(npz_path, allow_pickle=False) as data:
        arrays = {key: data[key] for key in data.files}
    main = [arrays.pop(key) for key in MAIN_ARRAYS]
    return Dataset(*main, card=card, arrays=arrays)


@contextmanager
def _atomic_target(path: Path) -> Iterator[BinaryIO]:
    """Yield a binary handle on a temporary file that replaces ``path`` only on success."""
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.",
                                             suffix=".tmp")
    try:
        with os.fdopen(descriptor, "wb") as handle:
            yield handle
        os.replace(temp_name, path)
    except BaseException:
        os.unlink(temp_name)
        raise
