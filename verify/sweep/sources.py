"""Where a sweep's datasets come from: a folder written by ``ftstab synth``, or a grid in memory."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from synth.dataset import bind_params
from synth.grids import GENERATORS, DatasetSpec
from synth.io import load_dataset


class DatasetSource(Protocol):
    """Where a sweep's datasets come from; must pickle (it travels to every worker)."""

    def load(self, dataset_id: str) -> Any:
        """The ``synth.Dataset`` with that id."""

    def cards(self) -> list[dict[str, Any]]:
        """Cards known without generating anything (may be empty)."""


class ListedSource(DatasetSource, Protocol):
    """A source that lists its datasets with their kinds and class counts, which
    :func:`verify.sweep.plan.build_tasks` crosses with the configs (the real path's source lists
    ``(dataset_id, kind)`` only and plans its own tasks)."""

    def entries(self) -> list[tuple[str, str, int]]:
        """``(dataset_id, kind, n_classes)`` of every dataset (0 classes: regression), stable order."""


@dataclass(frozen=True)
class FolderSource:
    """Datasets written by ``ftstab synth --out FOLDER`` (``FOLDER/index.json``, ``<id>.npz/.json``)."""

    folder: Path
    ids: tuple[str, ...]

    def entries(self) -> list[tuple[str, str, int]]:
        index = {entry["id"]: entry for entry in json.loads((self.folder / "index.json").read_text())}
        return [(dataset_id, index[dataset_id]["kind"], int(index[dataset_id]["params"].get("n_classes", 0)))
                for dataset_id in self.ids]

    def load(self, dataset_id: str) -> Any:
        return load_dataset(dataset_id, self.folder)

    def cards(self) -> list[dict[str, Any]]:
        return [json.loads((self.folder / f"{dataset_id}.json").read_text()) for dataset_id in self.ids]


@dataclass(frozen=True)
class GridSource:
    """Datasets generated in memory from a grid's specs (each worker generates what it trains)."""

    specs: tuple[Any, ...]

    def entries(self) -> list[tuple[str, str, int]]:
        return [(spec.id, spec.kind,
                 int(bind_params(GENERATORS[spec.generator].function, spec.params).get("n_classes", 0)))
                for spec in self.specs]

    def load(self, dataset_id: str) -> Any:
        return next(spec for spec in self.specs if spec.id == dataset_id).generate()

    def cards(self) -> list[dict[str, Any]]:
        return []


@dataclass(frozen=True)
class CardSource:
    """Datasets regenerated from the cards a results file recorded (generator and all parameters).

    Generation is deterministic and a dataset id is the hash of its generator and parameters, so
    this gives the datasets a sweep trained on without the folder they came from (the pre-training
    of an MLP dataset comes from the cache when it is there).
    """

    cards_by_id: dict[str, dict[str, Any]]

    def entries(self) -> list[tuple[str, str, int]]:
        return [(dataset_id, card["kind"], int(card.get("n_classes") or 0))
                for dataset_id, card in self.cards_by_id.items()]

    def load(self, dataset_id: str) -> Any:
        card = self.cards_by_id[dataset_id]
        if card.get("generator") not in GENERATORS:
            raise ValueError(f"data: dataset {dataset_id} was made by {card.get('generator')!r}, "
                             f"which is not a registered generator; pass its folder (--data)")
        spec = DatasetSpec(card["generator"], card["params"])
        if spec.id != dataset_id:
            raise ValueError(f"data: the card of {dataset_id} regenerates {spec.id}; pass the "
                             f"dataset's folder (--data)")
        return spec.generate()

    def cards(self) -> list[dict[str, Any]]:
        return []
