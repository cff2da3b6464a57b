"""Checks of a stored dataset on load: nothing on disk is trusted until it passes them.

``read_dataset_files`` reads a card and its arrays once and refuses, in one ``ValueError`` line
naming the file and the rule, anything ``synth.io.save_dataset`` would not have written: malformed
JSON, a card without the common keys, an unknown kind or generator, an id that is not the hash of
the generator and parameters, unreadable or pickled arrays, missing arrays, wrong dtypes or shapes,
non-finite values, class counts, radius, margin or distances that disagree with the arrays, and
card or array digests that do not match (any other edit).
"""
from __future__ import annotations

import json
import re
import zipfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from synth.dataset import dataset_id
from synth.distances import euclidean_distance
from synth.digest import DIGEST_KEY, array_digest, card_digest
from synth.grids import GENERATORS

MAIN_ARRAYS = ("X", "y", "X_test", "y_test")
# Dataset ids are "<kind>-<12 hex>" (synth.dataset.dataset_id); nothing else names a file.
ID_PATTERN = re.compile(r"[a-z][a-z0-9_]*-[0-9a-f]{12}")
# Relative tolerance of facts recomputed from the arrays (norms, margins): the generators compute
# them with the same float64 expressions, so they agree to a few roundings.
RECHECK_RTOL = 1e-12
JSON_TYPE_NAMES = {str: "string", int: "integer", dict: "object", list: "array"}
CARD_TYPES: dict[str, type] = {
    "id": str, "kind": str, "generator": str, "params": dict, "n_samples": int,
    "n_features": int, "n_classes": int, "class_counts": list, "n_test": int, DIGEST_KEY: dict,
}


def check_dataset_id(value: Any, where: str) -> str:
    """Refuse anything but a dataset id (``<kind>-<12 hex>``): ids name files."""
    if not isinstance(value, str) or not ID_PATTERN.fullmatch(value):
        raise ValueError(f"{where}: {value!r} is not a dataset id (<kind>-<12 hex digits>)")
    return value


def read_card(card_path: Path) -> dict[str, Any]:
    """Parse and check a card's JSON (keys, types, kind, id, card digest); return it as stored."""
    try:
        text = card_path.read_text()
    except FileNotFoundError:
        raise ValueError(f"{card_path}: not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"{card_path}: cannot read: {exc}") from None
    try:
        card = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{card_path}: not valid JSON ({exc})") from None
    if not isinstance(card, dict):
        raise ValueError(f"{card_path}: a card must be a JSON object")
    for key, kind in CARD_TYPES.items():
        if key not in card:
            raise ValueError(f"{card_path}: card has no {key!r} (written by an older ftstab? "
                             f"regenerate with `ftstab synth`)")
        if not isinstance(card[key], kind) or isinstance(card[key], bool):
            raise ValueError(f"{card_path}: card key {key!r} must be a JSON "
                             f"{JSON_TYPE_NAMES[kind]}; got {card[key]!r}")
    generator = GENERATORS.get(card["generator"])
    if generator is None:
        raise ValueError(f"{card_path}: unknown generator {card['generator']!r} (known: "
                         f"{', '.join(GENERATORS)})")
    if card["kind"] != generator.kind:
        raise ValueError(f"{card_path}: kind {card['kind']!r} is not the kind of "
                         f"{card['generator']} ({generator.kind!r})")
    expected_id = dataset_id(card["kind"], card["generator"], card["params"])
    if card["id"] != expected_id:
        raise ValueError(f"{card_path}: card id {card['id']!r} is not the hash of its generator "
                         f"and params ({expected_id!r})")
    if card_path.stem != card["id"]:
        raise ValueError(f"{card_path}: file name does not match the card id {card['id']!r}")
    stored = card[DIGEST_KEY]
    if stored.get("card") != card_digest(card):
        raise ValueError(f"{card_path}: card digest mismatch: the card was modified after "
                         f"it was written")
    return card


def read_arrays(npz_path: Path) -> dict[str, np.ndarray]:
    """Every array of an .npz written by ``save_dataset``; pickled object arrays are refused."""
    try:
        with np.load(npz_path, allow_pickle=False) as stored:
            if not isinstance(stored, np.lib.npyio.NpzFile):
                raise ValueError("not an .npz archive")
            arrays = {}
            for key in stored.files:
                try:
                    arrays[key] = stored[key]
                except ValueError as exc:
                    if "allow_pickle" in str(exc):
                        raise ValueError(f"array {key!r} is a pickled object array "
                                         f"(refused)") from None
                    raise
                if not isinstance(arrays[key], np.ndarray):  # a member that is not .npy
                    raise ValueError(f"member {key!r} is not a .npy array")
    except FileNotFoundError:
        raise ValueError(f"{npz_path}: not found") from None
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, KeyError) as exc:
        raise ValueError(f"{npz_path}: not a readable .npz archive ({exc})") from None
    return arrays


def check_arrays(card: Mapping[str, Any], arrays: Mapping[str, np.ndarray], npz_path: Path
                 ) -> None:
    """Arrays against the card: presence, dtypes, shapes, finiteness, digest, certified facts.

    The certified facts are recomputed after the digest check: they catch a card whose digest
    was recomputed after an edit, and a generator that wrote a card its arrays contradict.
    """
    for name in MAIN_ARRAYS:
        if name not in arrays:
            raise ValueError(f"{npz_path}: missing array {name!r}")
    n, d, n_test, n_classes = (card["n_samples"], card["n_features"], card["n_test"],
                               card["n_classes"])
    label_dtype = np.dtype(np.int64) if n_classes else np.dtype(np.float64)
    expected = {"X": ((n, d), np.dtype(np.float64)), "y": ((n,), label_dtype),
                "X_test": ((n_test, d), np.dtype(np.float64)), "y_test": ((n_test,), label_dtype)}
    for name, (shape, dtype) in expected.items():
        array = arrays[name]
        if array.shape != shape or array.dtype != dtype:
            raise ValueError(f"{npz_path}: array {name!r} must be {dtype} of shape {shape} as "
                             f"the card says; got {array.dtype} of shape {array.shape}")
    for name, array in arrays.items():
        if array.dtype.kind in "fc" and not np.all(np.isfinite(array)):
            raise ValueError(f"{npz_path}: array {name!r} has non-finite values")
    if n_classes:
        for name in ("y", "y_test"):
            if arrays[name].size and (arrays[name].min() < 0 or arrays[name].max() >= n_classes):
                raise ValueError(f"{npz_path}: labels {name!r} must lie in [0, {n_classes})")
        counts = np.bincount(arrays["y"], minlength=n_classes).tolist()
        if counts != card["class_counts"]:
            raise ValueError(f"{npz_path}: class counts of 'y' {counts} disagree with the card's "
                             f"class_counts {card['class_counts']}")
    if card[DIGEST_KEY].get("arrays") != array_digest(arrays):
        raise ValueError(f"{npz_path}: array digest mismatch: the arrays are not those the card "
                         f"{card['id']}.json was written with")
    for fact, recompute in CERTIFIED_FACTS.get(card["kind"], {}).items():
        if fact not in card:
            raise ValueError(f"{npz_path}: card has no {fact!r}")
        try:
            value = recompute(card, arrays)
        except (KeyError, ValueError, IndexError) as exc:
            raise ValueError(f"{npz_path}: cannot recompute {fact!r} from the arrays "
                             f"({type(exc).__name__}: {exc})") from None
        if not np.isclose(value, card[fact], rtol=RECHECK_RTOL, atol=0.0):
            raise ValueError(f"{npz_path}: card {fact} {card[fact]!r} disagrees with the arrays "
                             f"({value!r})")


def _radius(card, arrays) -> float:
    return float(np.linalg.norm(arrays["X"], axis=1).max())


def _separable_margin(card, arrays) -> float:
    X, y = arrays["X"], arrays["y_clean"]
    if card["n_classes"] == 2:
        return float(((2.0 * y - 1.0) * (X @ arrays["u_star"])).min())
    along_axes = X @ arrays["class_axes"].T
    return float(along_axes[np.arange(len(y)), y].min() / np.sqrt(2.0))


def _distance(card, arrays) -> float:
    if card["kind"] == "quadratic":
        return euclidean_distance(arrays["teacher"], arrays["w0"])
    names = [name.removeprefix("w0.") for name in arrays if name.startswith("w0.encoder.")]
    return float(np.linalg.norm(np.concatenate(
        [(arrays[f"teacher.{name}"] - arrays[f"w0.{name}"]).ravel() for name in names])))


def _least_squares_D(card, arrays) -> float:
    return float(np.linalg.norm(arrays["w0"] - arrays["w_star"]))


# Card facts cheap to recompute from the arrays, per kind (O(n d) or O(number of weights)).
CERTIFIED_FACTS: dict[str, dict[str, Callable[[Mapping, Mapping], float]]] = {
    "separable": {"radius": _radius, "margin": _separable_margin},
    "quadratic": {"distance": _distance, "D": _least_squares_D},
    "mlp": {"distance": _distance},
    "deep_mlp": {"distance": _distance},
}


def read_dataset_files(card_path: Path, npz_path: Path) -> tuple[dict, dict[str, np.ndarray]]:
    """The card (without its digest) and arrays of one stored dataset, every check passed."""
    card = read_card(card_path)
    arrays = read_arrays(npz_path)
    check_arrays(card, arrays, npz_path)
    return {key: value for key, value in card.items() if key != DIGEST_KEY}, arrays
