"""MiniLM sentence embeddings of documents, computed once and cached on disk by content hash."""
from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

import numpy as np

from verify.real.feature_cache import cached_features
from verify.real.minilm import DEFAULT_MAX_LENGTH, MiniLM, encode_texts, load_minilm, model_id


@lru_cache(maxsize=1)
def shared_minilm() -> MiniLM:
    """The pre-trained encoder, loaded once per process (never modified: fine-tuning copies it)."""
    return load_minilm()


def minilm_features(texts: Sequence[str], *, cache_dir: str | Path,
                    max_length: int = DEFAULT_MAX_LENGTH) -> np.ndarray:
    """Unit-norm MiniLM embeddings ``(len(texts), 384)`` of ``texts``, from the cache when present."""
    return cached_features(texts, model_id=model_id(), max_length=max_length,
                           cache_dir=Path(cache_dir) / "features",
                           encode=lambda batch: encode_texts(shared_minilm(), batch, max_length=max_length))
