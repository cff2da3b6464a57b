"""Plug-ins from outside the package: bounds, stabilisers, generators and figures.

Two routes, one registration:

- an installed distribution declares entry points in the groups of :data:`ENTRY_POINT_GROUPS`; each
  entry point's object is added under the entry point's name (a :class:`theory.bounds.Bound`, a
  :class:`verify.stabilisers.Stabiliser` subclass, a :class:`synth.grids.Generator`, a figure module);
- ``ftstab --plugins MODULE[,MODULE]`` imports the modules, which call :func:`add_bound`,
  :func:`add_stabiliser`, :func:`add_generator` or :func:`add_figure` when imported.

The modules named by ``--plugins`` are also put in the ``FTSTAB_PLUGINS`` environment variable
(:func:`recorded_modules`), which the sweep hands to each pool worker so that it imports the same
ones (:func:`load_plugins`). Adding a different object under a name already registered, or a
plug-in that fails to import, is a one-line :class:`verify.errors.UsageError` naming the plug-in.
"""
from __future__ import annotations

import argparse
import importlib
import os
from collections.abc import Iterable, MutableMapping
from importlib.metadata import entry_points
from types import ModuleType
from typing import TYPE_CHECKING, Any

from synth.grids import GENERATORS, Generator
from theory.bounds import BOUNDS, Bound
from verify.errors import UsageError

if TYPE_CHECKING:
    from verify.stabilisers import Stabiliser

ENVIRONMENT = "FTSTAB_PLUGINS"
ENTRY_POINT_GROUPS = ("ftstab.bounds", "ftstab.stabilisers", "ftstab.generators", "ftstab.figures")


def _add(registry: MutableMapping[str, Any], what: str, name: str, obj: Any,
         taken: Iterable[str] = ()) -> None:
    if registry.get(name, obj) is not obj or name in taken:
        raise UsageError(f"plug-in {what} {name!r}: the name is already registered")
    registry[name] = obj


def add_bound(bound: Bound) -> None:
    """Register ``bound`` in ``theory.bounds.BOUNDS`` under ``bound.name``."""
    if not isinstance(bound, Bound):
        raise UsageError(f"plug-in bound {bound!r}: not a Bound (theory.bounds.base.Bound)")
    _add(BOUNDS, "bound", bound.name, bound)


def add_stabiliser(cls: type[Stabiliser]) -> None:
    """Register the Stabiliser subclass ``cls`` in ``verify.stabilisers.STABILISERS`` under ``cls.name``."""
    from verify.stabilisers import STABILISERS, Stabiliser  # lazy: torch only when one is added
    if not (isinstance(cls, type) and issubclass(cls, Stabiliser)):
        raise UsageError(f"plug-in stabiliser {cls!r}: not a subclass of verify.stabilisers.Stabiliser")
    _add(STABILISERS, "stabiliser", cls.name, cls)


def add_generator(name: str, generator: Generator) -> None:
    """Register ``generator`` in ``synth.grids.GENERATORS`` (grid files name it as ``generator``)."""
    if not isinstance(generator, Generator):
        raise UsageError(f"plug-in generator {name!r}: not a synth.grids.Generator")
    _add(GENERATORS, "generator", name, generator)


def add_figure(module: ModuleType) -> None:
    """Register a figure module (``KEY``, ``STEM``, ``PRODUCED_BY``, ``render``) under its ``KEY``."""
    from figures.registry import MODULES, PLUGIN_FIGURES  # lazy: matplotlib only for a figure
    missing = [attr for attr in ("KEY", "STEM", "PRODUCED_BY", "render") if not hasattr(module, attr)]
    if missing:
        raise UsageError(f"plug-in figure {module.__name__}: lacks {', '.join(missing)}")
    built_in = [importlib.import_module(f"figures.{name}").KEY for name in MODULES]
    _add(PLUGIN_FIGURES, "figure", module.KEY, module, taken=built_in)


def _add_entry_point(group: str, name: str, obj: Any) -> None:
    """Add an entry point's object; a bound's or stabiliser's own name must be the entry point's."""
    own = getattr(obj, "name", name) if group in ("ftstab.bounds", "ftstab.stabilisers") else name
    if own != name:
        raise UsageError(f"plug-in entry point {name!r} ({group}): the object is named {own!r}")
    if group == "ftstab.bounds":
        add_bound(obj)
    elif group == "ftstab.stabilisers":
        add_stabiliser(obj)
    elif group == "ftstab.generators":
        add_generator(name, obj)
    else:
        add_figure(obj)


def load_entry_points() -> None:
    """Register every object that an installed distribution declares in :data:`ENTRY_POINT_GROUPS`."""
    for group in ENTRY_POINT_GROUPS:
        for point in entry_points(group=group):
            try:
                obj = point.load()
            except Exception as exc:  # a broken plug-in of any kind: one line naming it
                raise UsageError(f"plug-in {point.name!r} ({group} = {point.value}): cannot load: "
                                 f"{type(exc).__name__}: {exc}") from None
            _add_entry_point(group, point.name, obj)


def load_modules(names: Iterable[str]) -> None:
    """Import the plug-in modules ``names`` (they register themselves) and record them in
    ``FTSTAB_PLUGINS`` for worker processes."""
    names = [name for name in names if name]
    for name in names:
        try:
            importlib.import_module(name)
        except UsageError:
            raise
        except Exception as exc:  # a broken plug-in of any kind: one line naming it
            raise UsageError(f"plugins: cannot import plug-in module {name!r}: "
                             f"{type(exc).__name__}: {exc}") from None
    known = split(os.environ.get(ENVIRONMENT, ""))
    os.environ[ENVIRONMENT] = ",".join(dict.fromkeys(known + names))


def split(text: str | None) -> list[str]:
    """``"a, b,"`` -> ``["a", "b"]``."""
    return [item.strip() for item in (text or "").split(",") if item.strip()]


def load_plugins(modules: str | None) -> None:
    """Everything ``ftstab`` loads before a sub-command runs: the entry points, then ``--plugins``."""
    load_entry_points()
    load_modules(split(modules))


def recorded_modules() -> str | None:
    """The plug-in modules this process loaded (``FTSTAB_PLUGINS``), for its worker processes."""
    return os.environ.get(ENVIRONMENT)


class LoadPlugins(argparse.Action):
    """``--plugins MODULE[,MODULE]``: imported as soon as the option is parsed, so that the
    sub-command's own parsing (``ftstab --plugins m verify --help``) already sees what they add."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: Any, option_string: str | None = None) -> None:
        try:
            load_modules(split(values))
        except UsageError as exc:
            raise argparse.ArgumentError(self, str(exc)) from None
        setattr(namespace, self.dest, values)
