"""Sentence embeddings of documents by a registered encoder, computed once and cached on disk by
content hash."""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from verify.real.datasets import RealDataset
from verify.real.feature_cache import cached_features
from verify.real.minilm import DEFAULT_MAX_LENGTH, MiniLM, encode_texts
from verify.real.models.registry import DEFAULT_ENCODER, encoder_spec, shared_encoder


def shared_minilm(encoder: str = DEFAULT_ENCODER, cache_dir: str | Path = ".") -> MiniLM:
    """The pre-trained ``encoder``, loaded once per process."""
    return shared_encoder(encoder, str(cache_dir))


def minilm_features(texts: Sequence[str], *, cache_dir: str | Path, max_length: int = DEFAULT_MAX_LENGTH,
                    encoder: str = DEFAULT_ENCODER) -> np.ndarray:
    """Unit-norm embeddings ``(len(texts), 384)`` of ``texts``, from the cache when present."""
    return cached_features(texts, model_id=encoder_spec(encoder).model_id(), max_length=max_length,
                           cache_dir=Path(cache_dir) / "features",
                           encode=lambda batch: encode_texts(shared_minilm(encoder, cache_dir), batch,
                                                             max_length=max_length))


def text_features(dataset: RealDataset, *, cache_dir: str | Path, max_length: int,
                  encoder: str) -> tuple[np.ndarray, np.ndarray]:
    """The text kind's head-tuning features: ``encoder``'s cached embeddings of the training and
    test documents."""
    X, X_test = (minilm_features(texts, cache_dir=cache_dir, max_length=max_length, encoder=encoder)
                 for texts in (dataset.texts, dataset.test_texts))
    return X, X_test
