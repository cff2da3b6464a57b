"""Where ``ftstab real`` gets its datasets: one few-shot draw per (shots, subset), built on demand.

A :class:`RealSource` is the real path's ``verify.sweep.DatasetSource``; it pickles (it only holds
settings), and each worker builds the datasets it trains.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from verify.real.configs import KINDS
from verify.real.datasets import (RealDataset, bbc_dataset_id, digits_dataset_id, digits_split,
                                  make_bbc_dataset, make_digits_dataset)


@dataclass(frozen=True)
class RealSource:
    """Few-shot datasets of one kind for several shot counts and draws.

    Parameters
    ----------
    kind : {"real-text", "real-digits"}
    shots : tuple of int
        Training examples per class, one dataset per value and draw.
    subsets : int
        Draws per shot count (draw 0, 1, ...).
    test_per_class : int
        Held-out examples per class (the same documents/images for every draw).
    cache_dir : Path
        Where the digits CNN's pre-trained weights are cached.
    """

    kind: str
    shots: tuple[int, ...]
    subsets: int
    test_per_class: int
    cache_dir: Path

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {self.kind!r}")
        if not self.shots or any(isinstance(k, bool) or not isinstance(k, int) or k < 1 for k in self.shots):
            raise ValueError(f"shots must be integers >= 1, got {self.shots!r}")
        if self.subsets < 1:
            raise ValueError(f"subsets must be >= 1, got {self.subsets}")

    def _datasets(self) -> dict[str, dict[str, int]]:
        name = bbc_dataset_id if self.kind == "real-text" else digits_dataset_id
        return {name(shots=shots, subset=subset, test_per_class=self.test_per_class):
                {"shots": shots, "subset": subset, "test_per_class": self.test_per_class}
                for shots in self.shots for subset in range(self.subsets)}

    def entries(self) -> list[tuple[str, str]]:
        return [(dataset_id, self.kind) for dataset_id in self._datasets()]

    def validate(self) -> None:
        """Raise ValueError if a dataset's parameters are out of range; writes nothing."""
        for params in self._datasets().values():
            if self.kind == "real-text":
                make_bbc_dataset(**params)
            else:
                digits_split(**params)

    def load(self, dataset_id: str) -> RealDataset:
        params = self._datasets()[dataset_id]
        if self.kind == "real-text":
            return make_bbc_dataset(**params)
        return make_digits_dataset(**params, cache_dir=self.cache_dir)

    def cards(self) -> list[dict[str, Any]]:
        """Cards are written with each task (building them needs the data)."""
        return []
