"""Few-shot text datasets: one balanced draw of training documents and the task's fixed test set."""
from __future__ import annotations

from typing import Any

import numpy as np

from verify.real.data.registry import load_task, task_spec
from verify.real.data.split import few_shot_subset, held_out_split
from verify.real.datasets import RealDataset, dataset_card
from verify.seeding import run_seed

TEXT_KIND = "real-text"


def text_dataset_id(*, task: str, shots: int, subset: int, test_per_class: int) -> str:
    return f"{task}-{shots}shot-draw{subset}-test{test_per_class}"


def text_split(*, task: str, shots: int, subset: int, test_per_class: int):
    """The corpus, its source facts, the training and test indices and the draw's seed (validates)."""
    spec = task_spec(task)
    if isinstance(subset, bool) or not isinstance(subset, int) or subset < 0:
        raise ValueError(f"subset must be an integer >= 0, got {subset!r}")
    corpus, source = load_task(task)
    pool, test = held_out_split(corpus.labels, per_class=test_per_class, reserve=spec.test_reserve,
                                seed=source["split_seed"], official_test=corpus.official_test)
    seed = run_seed(f"{task}-few-shot", subset)
    train = few_shot_subset(corpus.labels, pool, shots=shots, seed=seed)
    return corpus, source, train, test, seed


def make_text_dataset(*, task: str, shots: int, subset: int = 0, test_per_class: int = 40) -> RealDataset:
    """Few-shot ``task``: ``shots`` documents per class (draw ``subset``), ``test_per_class`` held out.

    Parameters
    ----------
    task : str
        A name in :data:`verify.real.data.registry.TEXT_TASKS`.
    shots : int
        Training documents per class, in ``[1, smallest class in the pool]``.
    subset : int, default=0
        Which draw (draws differ for different ``subset``, are identical for the same one).
    test_per_class : int, default=40
        Held-out documents per class, in ``[1, the task's test reserve]`` (a class with fewer held
        out contributes all of its own); the same documents on every call.

    Returns
    -------
    RealDataset
        Kind ``real-text``; its card names the source package, version, file and sha256, the label
        mapping, the corpus's class counts and the split's seed.
    """
    corpus, source, train, test, seed = text_split(task=task, shots=shots, subset=subset,
                                                   test_per_class=test_per_class)
    params: dict[str, Any] = {"task": task, "shots": shots, "subset": subset, "test_per_class": test_per_class}
    card = dataset_card(dataset_id=text_dataset_id(task=task, shots=shots, subset=subset,
                                                   test_per_class=test_per_class),
                        kind=TEXT_KIND, generator="make_text_dataset", params=params, seed=seed,
                        y=corpus.labels[train], n_features=0, n_test=len(test), radius=None,
                        class_names=list(corpus.class_names), source=source,
                        test_class_counts=np.bincount(corpus.labels[test],
                                                      minlength=len(corpus.class_names)).tolist(),
                        train_indices=train.tolist())
    return RealDataset(X=np.zeros((len(train), 0)), y=corpus.labels[train],
                       X_test=np.zeros((len(test), 0)), y_test=corpus.labels[test], card=card,
                       texts=tuple(corpus.texts[i] for i in train),
                       test_texts=tuple(corpus.texts[i] for i in test))
