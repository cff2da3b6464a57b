"""A labelled text corpus read from an installed package's file, and the facts its card records."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path

import numpy as np

from verify.real.extra import MissingExtraError, INSTALL_HINT


@dataclass(frozen=True)
class TextCorpus:
    """Documents with integer labels ``0..C-1`` and the class names they stand for.

    ``official_test`` marks the documents of the source's own test split (None when it has none).
    """

    texts: tuple[str, ...]
    labels: np.ndarray
    class_names: tuple[str, ...]
    official_test: np.ndarray | None = None


def package_file(package: str, relative: str) -> Path:
    """The path of ``relative`` inside the installed distribution ``package`` (nothing is imported).

    Raises
    ------
    MissingExtraError
        If the distribution is not installed, or lacks the file.
    """
    try:
        dist = distribution(package)
    except PackageNotFoundError as exc:
        raise MissingExtraError(f"the [real] extra is not installed ({package} is missing): "
                                f"{INSTALL_HINT}") from exc
    path = Path(str(dist.locate_file(relative)))
    if not path.is_file():
        raise MissingExtraError(f"{package} {dist.version} has no file {relative}: {INSTALL_HINT}")
    return path


def package_version(package: str) -> str:
    return distribution(package).version


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def deduplicate(texts, labels) -> tuple[list[str], list[int], dict[str, int]]:
    """Keep the first copy of every text (compared after stripping white space); drop every copy of
    a text that occurs with two different labels.

    Returns
    -------
    texts, labels : lists
    counts : dict
        ``{"duplicates_removed": ..., "conflicting_removed": ...}`` (documents dropped).
    """
    seen: dict[str, set[int]] = {}
    for text, label in zip(texts, labels):
        seen.setdefault(text.strip(), set()).add(int(label))
    kept_texts, kept_labels, emitted = [], [], set()
    duplicates = conflicting = 0
    for text, label in zip(texts, labels):
        key = text.strip()
        if len(seen[key]) > 1:
            conflicting += 1
        elif key in emitted:
            duplicates += 1
        else:
            emitted.add(key)
            kept_texts.append(key)
            kept_labels.append(int(label))
    return kept_texts, kept_labels, {"duplicates_removed": duplicates, "conflicting_removed": conflicting}


def corpus_from_pairs(pairs, class_names, official_test=None) -> tuple[TextCorpus, dict[str, int]]:
    """A deduplicated :class:`TextCorpus` from ``(text, label)`` pairs (empty texts dropped).

    With ``official_test`` (one flag per pair), the flags follow the kept documents; put the test
    pairs first so that a text in both splits stays in the test split.
    """
    flags = list(official_test) if official_test is not None else [False] * len(pairs)
    keep = [i for i, (text, _) in enumerate(pairs) if text.strip()]
    texts, labels, counts = deduplicate([pairs[i][0] for i in keep], [pairs[i][1] for i in keep])
    counts["empty_removed"] = len(pairs) - len(keep)
    test = None
    if official_test is not None:
        flag_of: dict[str, bool] = {}
        for i in keep:
            flag_of.setdefault(pairs[i][0].strip(), flags[i])
        test = np.array([flag_of[text] for text in texts], dtype=np.bool_)
    return TextCorpus(tuple(texts), np.asarray(labels, dtype=np.int64), tuple(class_names), test), counts
