"""Content digests (SHA-256) of a set of named arrays and of a JSON card.

The array digest covers every array's name, dtype, shape and bytes, in name order, so it does not
depend on how the arrays were stored (.npz layout, compression, order in the archive). The card
digest covers the card's canonical JSON (sorted keys, no whitespace) without its ``digest`` key.
They detect damaged and edited files; they are not signatures (whoever edits a file can also
recompute its digest).
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

import numpy as np

from synth.dataset import to_jsonable

ALGORITHM = "sha256"
DIGEST_KEY = "digest"


def array_digest(arrays: Mapping[str, np.ndarray]) -> str:
    """Hex SHA-256 of the named arrays (names, dtypes, shapes and contents)."""
    digest = hashlib.sha256()
    for name in sorted(arrays):
        array = np.ascontiguousarray(arrays[name])
        header = json.dumps([name, array.dtype.str, list(array.shape)])
        digest.update(header.encode() + b"\0")
        digest.update(array.tobytes())
    return digest.hexdigest()


def card_digest(card: Mapping[str, Any]) -> str:
    """Hex SHA-256 of the card's canonical JSON, its ``digest`` key left out."""
    content = {key: value for key, value in card.items() if key != DIGEST_KEY}
    payload = json.dumps(to_jsonable(content), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(payload.encode()).hexdigest()


def with_digest(card: Mapping[str, Any], arrays: Mapping[str, np.ndarray]) -> dict[str, Any]:
    """The card as stored: ``card`` plus ``digest = {algorithm, arrays, card}``."""
    return {**card, DIGEST_KEY: {"algorithm": ALGORITHM, "arrays": array_digest(arrays),
                                 "card": card_digest(card)}}
