"""Named grids of datasets in TOML, expanded into ``DatasetSpec``s with stable ids.

A grid file has an optional ``description`` and a list of ``[[block]]`` tables. Each block names
a ``generator`` and may have a ``fixed`` table (parameters shared by the block) and a ``vary``
table (parameter -> non-empty list); the block yields one dataset per element of the Cartesian
product of the ``vary`` lists. A block that sets no ``random_state`` gets one derived from a hash
of its generator and parameters. See ``docs/adding-a-generator.md``.
"""
from __future__ import annotations

import hashlib
import itertools
import json
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from synth.dataset import Dataset, bind_params, dataset_id, to_jsonable
from synth.deep_tasks import make_deep_finetuning_task
from synth.pretrained import make_pretrained_mlp_task
from synth.quadratic import make_quadratic_task
from synth.separable import make_separable

GRID_DIR = Path(__file__).parent / "grids"
GRID_KEYS = ("description", "block")
BLOCK_KEYS = ("generator", "fixed", "vary")


@dataclass(frozen=True)
class Generator:
    """A registered generator: its dataset kind, function and the parameters ``--list`` shows."""

    kind: str
    function: Callable[..., Dataset]
    key_params: tuple[str, ...]


GENERATORS: dict[str, Generator] = {
    "make_separable": Generator("separable", make_separable,
                                ("n_samples", "n_features", "n_classes", "margin", "radius",
                                 "label_noise", "spectrum")),
    "make_quadratic_task": Generator("quadratic", make_quadratic_task,
                                     ("n_samples", "n_features", "distance", "noise",
                                      "spectrum")),
    "make_pretrained_mlp_task": Generator("mlp", make_pretrained_mlp_task,
                                          ("n_samples", "n_features", "hidden", "n_classes",
                                           "distance")),
    "make_deep_finetuning_task": Generator("deep_mlp", make_deep_finetuning_task,
                                           ("n_per_class", "depth", "width", "teacher",
                                            "distance", "random_state")),
}


@dataclass(frozen=True, eq=False)
class DatasetSpec:
    """One dataset of a grid: a registered generator name and all its parameters."""

    generator: str
    params: dict[str, Any]

    @property
    def id(self) -> str:
        """The id the generated dataset's card will carry (hash of generator and parameters)."""
        entry = GENERATORS[self.generator]
        return dataset_id(entry.kind, self.generator, bind_params(entry.function, self.params))

    @property
    def kind(self) -> str:
        return GENERATORS[self.generator].kind

    def generate(self) -> Dataset:
        return GENERATORS[self.generator].function(**self.params)

    def describe(self) -> str:
        """One line: id and the generator's key parameters."""
        full = bind_params(GENERATORS[self.generator].function, self.params)
        shown = " ".join(f"{name}={json.dumps(to_jsonable(full[name]))}"
                         for name in GENERATORS[self.generator].key_params)
        return f"{self.id}  {shown}"


def grid_names() -> list[str]:
    """Names of the grids shipped in ``synth/grids``."""
    return sorted(path.stem for path in GRID_DIR.glob("*.toml"))


def load_grid(name_or_path: str) -> list[DatasetSpec]:
    """Expand a named grid (``smoke``, ``default``, …) or a ``.toml`` file into dataset specs.

    Raises
    ------
    ValueError
        One line naming the problem: unknown grid, unreadable or malformed TOML, unknown or
        misplaced key, unknown generator or parameter, empty ``vary`` list, duplicate dataset.
    """
    path = Path(name_or_path)
    if not path.is_file():
        if name_or_path not in grid_names():
            raise ValueError(f"unknown grid {name_or_path!r}: use one of "
                             f"{', '.join(grid_names())} or the path of a .toml file")
        path = GRID_DIR / f"{name_or_path}.toml"
    try:
        document = tomllib.loads(path.read_text())
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"grid {path}: cannot read: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"grid {path}: malformed TOML: {exc}") from None
    _check_keys(document, GRID_KEYS, f"grid {path}")
    blocks = document.get("block")
    if not isinstance(blocks, list) or not blocks:
        raise ValueError(f"grid {path}: key 'block' must be a non-empty list of [[block]] tables")

    specs: dict[str, DatasetSpec] = {}
    for number, block in enumerate(blocks, start=1):
        where = f"grid {path}, block {number}"
        for spec in _expand_block(block, where):
            if spec.id in specs:
                raise ValueError(f"{where}: duplicate dataset {spec.id} "
                                 f"(same generator and parameters as an earlier one)")
            specs[spec.id] = spec
    return list(specs.values())


def _expand_block(block: Any, where: str) -> list[DatasetSpec]:
    if not isinstance(block, dict):
        raise ValueError(f"{where}: must be a table")
    _check_keys(block, BLOCK_KEYS, where)
    generator = block.get("generator")
    if generator not in GENERATORS:
        raise ValueError(f"{where}: key 'generator' must be one of {', '.join(GENERATORS)}; "
                         f"got {generator!r}")
    fixed, vary = block.get("fixed", {}), block.get("vary", {})
    for key, table in (("fixed", fixed), ("vary", vary)):
        if not isinstance(table, dict):
            raise ValueError(f"{where}: key {key!r} must be a table")
    for name, values in vary.items():
        if not isinstance(values, list) or not values:
            raise ValueError(f"{where}: key 'vary.{name}' must be a non-empty list")
    both = sorted(set(fixed) & set(vary))
    if both:
        raise ValueError(f"{where}: key {both[0]!r} is in both 'fixed' and 'vary'")
    function = GENERATORS[generator].function
    specs = []
    for combination in itertools.product(*vary.values()):
        params = {**fixed, **dict(zip(vary, combination))}
        try:
            bind_params(function, params)
        except ValueError as exc:
            raise ValueError(f"{where}: {exc}") from None
        if "random_state" not in params:
            params["random_state"] = _derived_seed(generator, params)
        specs.append(DatasetSpec(generator, params))
    return specs


def _check_keys(table: dict, allowed: tuple[str, ...], where: str) -> None:
    unknown = sorted(set(table) - set(allowed))
    if unknown:
        raise ValueError(f"{where}: unknown key {unknown[0]!r} (allowed: {', '.join(allowed)})")


def _derived_seed(generator: str, params: dict[str, Any]) -> int:
    payload = json.dumps({"generator": generator, "params": params}, sort_keys=True)
    return int.from_bytes(hashlib.sha256(payload.encode()).digest()[:4], "little")
