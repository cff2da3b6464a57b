"""The fixed held-out test split of a corpus and the few-shot training draws from the rest.

Every task splits the same way: per class, a fixed random order (seeded by the task's split seed)
sets ``reserve`` documents aside for testing (the source's own test split, where it has one); the
test set is the first ``per_class`` of them, so a smaller test set is a subset of a larger one, and
the pool that training documents are drawn from is the same whatever ``per_class`` is.
"""
from __future__ import annotations

import numpy as np

# At most this fraction of a class is set aside for testing (small classes keep most for training).
MAX_TEST_FRACTION = 0.2


def _validate_per_class(name: str, value: int, largest: int) -> None:
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or not 1 <= value <= largest:
        raise ValueError(f"{name} must be an integer in [1, {largest}], got {value!r}")


def class_permutations(labels: np.ndarray, candidates: np.ndarray, *, seed: int) -> list[np.ndarray]:
    """For each class, its candidate indices in an order drawn from ``seed`` (one generator)."""
    rng = np.random.default_rng(seed)
    return [rng.permutation(candidates[labels[candidates] == label])
            for label in range(int(labels.max()) + 1)]


def held_out_split(labels: np.ndarray, *, per_class: int, reserve: int, seed: int,
                   official_test: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Split documents into a few-shot pool and a held-out test set, the same on every call.

    Parameters
    ----------
    labels : ndarray of shape (n,)
        Class ids ``0..C-1``.
    per_class : int
        Test documents per class, in ``[1, reserve]`` (a class with fewer reserved gives all of them).
    reserve : int
        Documents per class set aside, at most ``MAX_TEST_FRACTION`` of the class; ignored with
        ``official_test``, whose documents are the reserve.
    seed : int
        Seed of the per-class orders.
    official_test : ndarray of bool, optional
        The source's own test split.

    Returns
    -------
    pool, test : ndarray of int
        Sorted, disjoint indices into ``labels``.
    """
    _validate_per_class("per_class", per_class, reserve)
    everything = np.arange(len(labels))
    if official_test is not None:
        orders = class_permutations(labels, everything[official_test], seed=seed)
        test = np.concatenate([order[:per_class] for order in orders])
        return np.sort(everything[~official_test]), np.sort(test)
    orders = class_permutations(labels, everything, seed=seed)
    kept = [min(reserve, int(MAX_TEST_FRACTION * len(order))) for order in orders]
    test = np.concatenate([order[:min(per_class, k)] for order, k in zip(orders, kept)])
    pool = np.concatenate([order[k:] for order, k in zip(orders, kept)])
    return np.sort(pool), np.sort(test)


def few_shot_subset(labels: np.ndarray, pool: np.ndarray, *, shots: int, seed: int) -> np.ndarray:
    """Draw ``shots`` training documents per class from ``pool``, deterministically from ``seed``.

    Subsets for the same seed are nested: the 4-shot subset is part of the 8-shot one.

    Parameters
    ----------
    labels : ndarray of shape (n,)
    pool : ndarray of int
        Indices that may be drawn (the complement of the test split).
    shots : int
        Documents per class, in ``[1, smallest class size in the pool]``.
    seed : int
        Seed of the draw.

    Returns
    -------
    ndarray of int, shape (shots * n_classes,)
        Indices grouped by class.
    """
    smallest = int(np.bincount(labels[pool], minlength=int(labels.max()) + 1).min())
    _validate_per_class("shots", shots, smallest)
    orders = class_permutations(labels, pool, seed=seed)
    return np.concatenate([order[:shots] for order in orders])
