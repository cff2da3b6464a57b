"""The real datasets: few-shot training subsets with a fixed held-out test set, and their cards.

A dataset is one few-shot draw (``shots`` examples per class, draw number ``subset``); its id names
the source, the shots, the draw and the test size, and its card records the same facts as a synthetic
card (kind ``real-text`` or ``real-digits``) plus where the data and the encoder come from.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import numpy as np

from verify.real.data.split import few_shot_subset
from verify.real.digits import (FINETUNE_CLASSES, PRETRAIN_CLASSES, PretrainingSettings,
                                cached_pretrained_encoder, digits_by_class)
from verify.seeding import run_seed

DIGITS_KIND = "real-digits"
# Digits 5-9 have at least 174 images per class; this many per class are held out for testing.
DIGITS_TEST_RESERVE = 80
DIGITS_PRETRAINING: PretrainingSettings = {"n_steps": 600, "batch_size": 128, "lr": 3e-3, "random_state": 0}


def _ftstab_version() -> str:
    try:
        return version("ftstab")
    except PackageNotFoundError:
        return "unknown"


@dataclass(frozen=True)
class RealDataset:
    """One few-shot dataset: training and test inputs (pixels, or nothing for text), labels, card.

    For ``real-text`` the inputs are the documents ``texts`` / ``test_texts`` (``X``, ``X_test`` are
    empty until a runner encodes them); for ``real-digits`` ``X`` holds 64-pixel rows and ``arrays``
    the pre-trained encoder and reconstruction-decoder weights (``w0.<parameter name>``).
    """

    X: np.ndarray
    y: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    card: dict[str, Any]
    texts: tuple[str, ...] = ()
    test_texts: tuple[str, ...] = ()
    arrays: dict[str, np.ndarray] = field(default_factory=dict)


def dataset_card(*, dataset_id: str, kind: str, generator: str, params: dict, seed: int, y: np.ndarray,
                 n_features: int, n_test: int, **extra: Any) -> dict[str, Any]:
    """The card of a real dataset: the synthetic cards' fields, then ``extra``."""
    return {"id": dataset_id, "kind": kind, "generator": generator, "params": params, "seed": seed,
            "n_samples": int(len(y)), "n_features": n_features, "n_classes": int(y.max()) + 1,
            "class_counts": np.bincount(y).tolist(), "n_test": n_test,
            "ftstab_version": _ftstab_version(), **extra}


def digits_dataset_id(*, shots: int, subset: int, test_per_class: int) -> str:
    return f"digits-5to9-{shots}shot-draw{subset}-test{test_per_class}"


def digits_split(*, shots: int, subset: int, test_per_class: int):
    """Digits 5-9 with the indices of one few-shot draw and of the fixed test set (validates all three).

    Returns
    -------
    target : DigitsSplit
    train, test : ndarray of int
    seed : int
        The draw's seed.
    """
    if not isinstance(test_per_class, int) or not 1 <= test_per_class <= DIGITS_TEST_RESERVE:
        raise ValueError(f"test_per_class must be an integer in [1, {DIGITS_TEST_RESERVE}], "
                         f"got {test_per_class!r}")
    if isinstance(subset, bool) or not isinstance(subset, int) or subset < 0:
        raise ValueError(f"subset must be an integer >= 0, got {subset!r}")
    target = digits_by_class(FINETUNE_CLASSES)
    rng = np.random.default_rng(run_seed("digits-test-split"))
    orders = [rng.permutation(np.flatnonzero(target.y == label)) for label in range(len(FINETUNE_CLASSES))]
    test = np.sort(np.concatenate([order[:test_per_class] for order in orders]))
    pool = np.sort(np.concatenate([order[DIGITS_TEST_RESERVE:] for order in orders]))
    seed = run_seed("digits-few-shot", subset)
    train = few_shot_subset(target.y, pool, shots=shots, seed=seed)
    return target, train, test, seed


def make_digits_dataset(*, shots: int, subset: int = 0, test_per_class: int = DIGITS_TEST_RESERVE,
                        cache_dir: str | Path) -> RealDataset:
    """Few-shot digits 5-9 for the CNN that ftstab pre-trained on digits 0-4.

    Parameters
    ----------
    shots : int
        Training images per class, in ``[1, smallest class in the pool]`` (at least 94).
    subset : int, default=0
        Which draw.
    test_per_class : int, default=80
        Held-out images per class, in ``[1, 80]``.
    cache_dir : str or Path
        Where the pre-trained encoder is cached.

    Returns
    -------
    RealDataset
        Kind ``real-digits``; ``arrays`` holds the pre-trained encoder and decoder weights.
    """
    target, train, test, seed = digits_split(shots=shots, subset=subset, test_per_class=test_per_class)
    pretrained = cached_pretrained_encoder(cache_dir, **DIGITS_PRETRAINING)
    dataset_id = digits_dataset_id(shots=shots, subset=subset, test_per_class=test_per_class)
    params = {"shots": shots, "subset": subset, "test_per_class": test_per_class}
    pretraining = {"objective": "masked-pixel reconstruction (30% of pixels zeroed, MSE)",
                   "classes": list(PRETRAIN_CLASSES), **DIGITS_PRETRAINING,
                   "final_loss": float(pretrained.losses[-20:].mean())}
    card = dataset_card(dataset_id=dataset_id, kind=DIGITS_KIND, generator="make_digits_dataset",
                 params=params, seed=seed, y=target.y[train], n_features=64, n_test=len(test),
                 classes=list(FINETUNE_CLASSES), source="scikit-learn load_digits",
                 radius=float(np.linalg.norm(target.X[train], axis=1).max()), pretraining=pretraining,
                 architecture="DigitsCNN: conv3x3(1->8), conv3x3/2(8->16), linear(256->32), head(32->5)")
    return RealDataset(X=target.X[train], y=target.y[train], X_test=target.X[test], y_test=target.y[test],
                       card=card, arrays={f"w0.{name}": value for name, value in
                                          {**pretrained.encoder_params, **pretrained.decoder_params}.items()})
