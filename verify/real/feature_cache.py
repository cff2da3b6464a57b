"""Encoded features cached on disk by content hash, written atomically.

The key is a hash of the model id, the maximum token length and every text, so a changed model,
setting or document set can never be served a stale array; a killed process leaves either the whole
file or none of it.
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np


def feature_cache_key(*, model_id: str, texts: Sequence[str], max_length: int) -> str:
    """Hex SHA-256 of (model id, max length, texts in order)."""
    digest = hashlib.sha256(json.dumps({"model_id": model_id, "max_length": max_length},
                                       sort_keys=True).encode())
    for text in texts:
        encoded = text.encode("utf-8")
        digest.update(len(encoded).to_bytes(8, "little"))
        digest.update(encoded)
    return digest.hexdigest()


def save_array_atomically(array: np.ndarray, path: Path) -> None:
    """Write ``array`` as ``.npy`` to a temporary file beside ``path``, then rename it into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as stream:
            np.save(stream, array, allow_pickle=False)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def cached_features(texts: Sequence[str], *, model_id: str, max_length: int, cache_dir: str | Path,
                    encode: Callable[[Sequence[str]], np.ndarray]) -> np.ndarray:
    """Return ``encode(texts)`` as float64, computing it only when the cache has no copy.

    Parameters
    ----------
    texts : sequence of str
    model_id : str
        Identifies the encoder's weights (part of the key).
    max_length : int
        Token limit the encoder truncates to (part of the key).
    cache_dir : str or Path
        Folder of ``<key>.npy`` files; created when missing.
    encode : callable
        ``texts -> (len(texts), d)`` array; called only on a cache miss.

    Returns
    -------
    ndarray of shape (len(texts), d), float64
    """
    path = Path(cache_dir) / f"{feature_cache_key(model_id=model_id, texts=texts, max_length=max_length)}.npy"
    if path.exists():
        return np.load(path, allow_pickle=False)
    features = np.asarray(encode(texts), dtype=np.float64)
    if features.ndim != 2 or features.shape[0] != len(texts):
        raise ValueError(f"encode must return one row per text, got shape {features.shape} "
                         f"for {len(texts)} texts")
    save_array_atomically(features, path)
    return features
