"""Where ``ftstab real`` gets its datasets: few-shot draws, built on demand from their requests.

A :class:`RealSource` is the real path's ``verify.sweep.sources.DatasetSource``; it pickles (it only holds
settings), and each worker builds the datasets it trains.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from verify.real.configs import KINDS
from verify.real.datasets import RealDataset, digits_dataset_id, digits_split, make_digits_dataset


@dataclass(frozen=True)
class DatasetRequest:
    """One few-shot dataset: ``task`` (a text task's name, or ``"digits"``), shots per class, draw,
    held-out examples per class."""

    task: str
    shots: int
    subset: int
    test_per_class: int

    @property
    def kind(self) -> str:
        return "real-digits" if self.task == "digits" else "real-text"

    def __post_init__(self) -> None:
        if isinstance(self.shots, bool) or not isinstance(self.shots, int) or self.shots < 1:
            raise ValueError(f"shots must be integers >= 1, got {self.shots!r}")
        if self.subset < 0:
            raise ValueError(f"subsets must be >= 1, got {self.subset + 1}")

    def dataset_id(self) -> str:
        params = {"shots": self.shots, "subset": self.subset, "test_per_class": self.test_per_class}
        if self.kind == "real-digits":
            return digits_dataset_id(**params)
        from verify.real.data.text_dataset import text_dataset_id
        return text_dataset_id(task=self.task, **params)

    def validate(self) -> None:
        params = {"shots": self.shots, "subset": self.subset, "test_per_class": self.test_per_class}
        if self.kind == "real-digits":
            digits_split(**params)
        else:
            from verify.real.data.text_dataset import text_split
            text_split(task=self.task, **params)

    def build(self, cache_dir: Path) -> RealDataset:
        params = {"shots": self.shots, "subset": self.subset, "test_per_class": self.test_per_class}
        if self.kind == "real-digits":
            return make_digits_dataset(**params, cache_dir=cache_dir)
        from verify.real.data.text_dataset import make_text_dataset
        return make_text_dataset(task=self.task, **params)


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
        if {request.kind for request in self.requests} - set(KINDS):
            raise ValueError(f"kind must be one of {KINDS}")

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
