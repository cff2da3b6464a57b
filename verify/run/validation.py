"""A validation split carved from a task's labelled samples, for selecting a stabiliser's strength.

The rule is seeded by the dataset alone (``run_seed("validation", dataset_id)``), so every config,
stabiliser and seed of a dataset holds out the same samples and the paired comparisons stay paired.
Per class, ``round(fraction * n_c)`` samples (at least one where the fraction is positive) are held
out, always leaving at least one of the class for training; a class with a single sample keeps it.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from verify.seeding import run_seed


@dataclass(frozen=True)
class ValidationSplit:
    """Indices into the dataset's labelled samples: ``fit`` (trained on) and ``held_out``."""

    fit: np.ndarray
    held_out: np.ndarray


def validation_split(y: np.ndarray, fraction: float, dataset_id: str) -> ValidationSplit:
    """The split of labels ``y`` (class labels 0..C-1) for ``fraction`` in [0, 0.5].

    Raises
    ------
    ValueError
        If ``fraction`` is outside [0, 0.5].
    """
    if not 0.0 <= fraction <= 0.5:
        raise ValueError(f"fraction must be a float in [0, 0.5] (got {fraction!r})")
    y = np.asarray(y)
    rng = np.random.default_rng(run_seed("validation", dataset_id))
    held_out = []
    for label in np.unique(y):
        members = np.flatnonzero(y == label)
        count = min(max(int(round(fraction * len(members))), 1 if fraction > 0 else 0),
                    len(members) - 1)
        held_out.append(rng.permutation(members)[:count])
    held = np.sort(np.concatenate(held_out)) if held_out else np.empty(0, dtype=np.int64)
    fit = np.setdiff1d(np.arange(len(y)), held)
    return ValidationSplit(fit=fit, held_out=held.astype(np.int64))


def split_dataset(dataset: Any, fraction: float) -> tuple[Any, tuple[np.ndarray, np.ndarray] | None]:
    """``(dataset trained on, (X_val, y_val))``; ``(dataset, None)`` where ``fraction`` is 0.

    The dataset trained on keeps every array and its card (its ``n_samples`` is the dataset's);
    only ``X`` and ``y`` lose the held-out samples.
    """
    if fraction == 0:
        return dataset, None
    split = validation_split(dataset.y, fraction, dataset.card["id"])
    trained_on = replace(dataset, X=dataset.X[split.fit], y=dataset.y[split.fit])
    return trained_on, (dataset.X[split.held_out], dataset.y[split.held_out])


def add_validation_accuracy(rows: list[dict], weights: np.ndarray, *, evaluator: Any,
                            validation: tuple[np.ndarray, np.ndarray] | None) -> None:
    """Set ``validation_accuracy`` on every row (checkpoint-major, ``k * M + m``): the accuracy of
    model m at checkpoint k on the held-out samples; None without a split, for regression, and on
    diverged models."""
    n_models = weights.shape[1]
    for row in rows:
        row["validation_accuracy"] = None
    if validation is None or evaluator.predict is None or not len(validation[1]):
        return
    X_val, y_val = validation
    for k in range(weights.shape[0]):
        with np.errstate(all="ignore"):
            accuracy = (evaluator.predict(weights[k], X_val) == y_val).mean(axis=1)
        for m in range(n_models):
            row = rows[k * n_models + m]
            if not row["diverged"]:
                row["validation_accuracy"] = float(accuracy[m])
