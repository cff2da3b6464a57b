"""Save and load datasets as ``<id>.npz`` (arrays, no pickle) plus ``<id>.json`` (the card).

Every file is written atomically (``synth.atomic``). The card is written last: a dataset exists
once its ``.json`` does. The stored card carries a ``digest`` (``synth.digest``) of the arrays and
of the card itself; loading checks it and the card's cheap certified facts (``synth.checks``).
"""
from __future__ import annotations

import json
import os
from pathlib import Path

from synth.atomic import write_json_atomic, write_npz_atomic
from synth.checks import JSON_TYPE_NAMES, MAIN_ARRAYS, check_dataset_id, read_dataset_files
from synth.dataset import Dataset
from synth.digest import DIGEST_KEY, with_digest

INDEX_FILE = "index.json"
INDEX_TYPES: dict[str, type] = {"id": str, "kind": str, "params": dict}


def save_dataset(dataset: Dataset, folder: str | os.PathLike) -> Path:
    """Write ``<id>.npz`` and ``<id>.json`` (the card plus its digest) into ``folder``.

    ``folder`` is created if missing.

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
    if DIGEST_KEY in dataset.card:
        raise ValueError(f"dataset.card must not use the reserved key {DIGEST_KEY!r}")
    arrays = dict(zip(MAIN_ARRAYS, (dataset.X, dataset.y, dataset.X_test, dataset.y_test)))
    arrays.update(dataset.arrays)
    npz_path = folder / f"{dataset.id}.npz"
    write_npz_atomic(npz_path, arrays)
    write_json_atomic(folder / f"{dataset.id}.json", with_digest(dataset.card, arrays))
    return npz_path


def load_dataset(path_or_id: str | os.PathLike, folder: str | os.PathLike | None = None
                 ) -> Dataset:
    """Load a dataset from its ``.npz`` or ``.json`` path, or from its id inside ``folder``.

    Raises
    ------
    ValueError
        One line naming the file and the rule when the card or arrays are missing, damaged, or
        disagree with each other or with the card's digest (see ``synth.checks``).
    """
    if folder is None:
        path = Path(path_or_id)
    else:
        path = Path(folder) / check_dataset_id(str(path_or_id), f"dataset in {folder}")
    stem = path.with_suffix("") if path.suffix in (".npz", ".json") else path
    card_path, npz_path = stem.with_suffix(".json"), stem.with_suffix(".npz")
    if not card_path.exists():
        raise ValueError(f"no dataset at {stem}: {card_path.name} not found")
    card, arrays = read_dataset_files(card_path, npz_path)
    X, y, X_test, y_test = (arrays.pop(key) for key in MAIN_ARRAYS)
    return Dataset(X, y, X_test, y_test, card=card, arrays=arrays)


def check_data_folder(folder: str | os.PathLike, ids=None) -> list[str]:
    """Check a folder written by ``ftstab synth`` before any work uses it.

    Checks ``index.json`` (a JSON list of ``{id, kind, params, ...}`` objects, ids unique and
    well-formed) and, for each selected dataset, its card and arrays as ``load_dataset`` does
    (each array is read once), plus agreement of the card's kind and params with the index.

    Parameters
    ----------
    folder : path
    ids : sequence of str, default=None
        The datasets to check (each must be in the index); ``None`` checks all of them.

    Returns
    -------
    list of str
        The checked ids, in index order when ``ids`` is None, else in the given order.

    Raises
    ------
    ValueError
        One line naming the file and the rule that failed.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise ValueError(f"data folder {folder}: not a folder")
    index = read_index(folder)
    if ids is None:
        selected = list(index)
    else:
        selected = [check_dataset_id(dataset_id, f"dataset in {folder}") for dataset_id in ids]
        missing = [dataset_id for dataset_id in selected if dataset_id not in index]
        if missing:
            raise ValueError(f"{folder / INDEX_FILE}: no dataset {missing[0]!r} in the index")
    for dataset_id in selected:
        card_path = folder / f"{dataset_id}.json"
        card, _ = read_dataset_files(card_path, folder / f"{dataset_id}.npz")
        for key in ("kind", "params"):
            if card[key] != index[dataset_id][key]:
                raise ValueError(f"{card_path}: card {key} disagrees with its entry in "
                                 f"{folder / INDEX_FILE}")
    return selected


def read_index(folder: Path) -> dict[str, dict]:
    """``index.json`` of a data folder as ``{id: entry}``, every entry's keys and types checked."""
    path = folder / INDEX_FILE
    try:
        entries = json.loads(path.read_text())
    except FileNotFoundError:
        raise ValueError(f"{path}: not found (is {folder} written by `ftstab synth`?)") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path}: cannot read: {exc}") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(entries, list):
        raise ValueError(f"{path}: must be a JSON list of dataset entries")
    index: dict[str, dict] = {}
    for number, entry in enumerate(entries):
        where = f"{path}, entry {number}"
        if not isinstance(entry, dict):
            raise ValueError(f"{where}: must be an object with keys id, kind, params")
        for key, kind in INDEX_TYPES.items():
            if key not in entry:
                raise ValueError(f"{where}: missing key {key!r}")
            if not isinstance(entry[key], kind):
                raise ValueError(f"{where}: key {key!r} must be a JSON {JSON_TYPE_NAMES[kind]}; "
                                 f"got {entry[key]!r}")
        check_dataset_id(entry["id"], where)
        if entry["id"] in index:
            raise ValueError(f"{where}: duplicate id {entry['id']!r}")
        index[entry["id"]] = entry
    return index
