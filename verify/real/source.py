"""Where ``ftstab real`` gets its datasets: few-shot draws, built on demand from their requests.

A :class:`RealSource` is the real path's ``verify.sweep.sources.DatasetSource``; it pickles (it only holds
settings), and each worker builds the datasets it trains.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from verify.real.datasets import RealDataset
from verify.real.kinds import RealKind, task_kind


@dataclass(frozen=True)
class DatasetRequest:
    """One few-shot dataset: ``task`` (a task of a registered kind, :func:`verify.real.kinds.task_kind`),
    shots per class, draw, held-out examples per class."""

    task: str
    shots: int
    subset: int
    test_per_class: int

    @property
    def real_kind(self) -> RealKind:
        """The record of the task's kind, which names, validates and builds the dataset."""
        return task_kind(self.task)

    @property
    def kind(self) -> str:
        return self.real_kind.name

    def __post_init__(self) -> None:
        if isinstance(self.shots, bool) or not isinstance(self.shots, int) or self.shots < 1:
            raise ValueError(f"shots must be integers >= 1, got {self.shots!r}")
        if self.subset < 0:
            raise ValueError(f"subsets must be >= 1, got {self.subset + 1}")

    def _params(self) -> dict[str, Any]:
        return {"task": self.task, "shots": self.shots, "subset": self.subset,
                "test_per_class": self.test_per_class}

    def dataset_id(self) -> str:
        return self.real_kind.dataset_id(**self._params())

    def validate(self) -> None:
        self.real_kind.split(**self._params())

    def build(self, cache_dir: Path) -> RealDataset:
        return self.real_kind.build(**self._params(), cache_dir=cache_dir)


def requests(task: str, shots, subsets: int, test_per_class: int) -> tuple[DatasetRequest, ...]:
    """One request per shot count and draw (draw 0, 1, ...)."""
    if subsets < 1:
        raise ValueError(f"subsets must be >= 1, got {subsets}")
    if not shots:
        raise ValueError(f"shots must be integers >= 1, got {shots!r}")
    return tuple(DatasetRequest(task, shot, subset, test_per_class)
                 for shot in shots for subset in range(subsets))


@dataclass(frozen=True)
class RealSource:
    """Few-shot datasets, one per request.

    Parameters
    ----------
    requests : tuple of DatasetRequest
    cache_dir : Path
        Where the digits CNN's pre-trained weights are cached.
    """

    requests: tuple[DatasetRequest, ...]
    cache_dir: Path

    def __post_init__(self) -> None:
        if not self.requests:
            raise ValueError("requests: at least one dataset is needed")

    def _datasets(self) -> dict[str, DatasetRequest]:
        return {request.dataset_id(): request for request in self.requests}

    def entries(self) -> list[tuple[str, str]]:
        return [(dataset_id, request.kind) for dataset_id, request in self._datasets().items()]

    def validate(self) -> None:
        """Raise ValueError if a dataset's parameters are out of range; writes nothing."""
        for request in self._datasets().values():
            request.validate()

    def load(self, dataset_id: str) -> RealDataset:
        return self._datasets()[dataset_id].build(self.cache_dir)

    def cards(self) -> list[dict[str, Any]]:
        """Cards are written with each task (building them needs the data)."""
        return []
