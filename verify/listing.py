"""``ftstab list``: what the registries hold (grids, configs, stabilisers, bounds, generators, figures).

Every line is read from a registry, so a plug-in (``--plugins`` or an entry point) appears here as
soon as it is loaded; a last line starting with ``#`` gives shared defaults (configs).
"""
from __future__ import annotations

import argparse
import inspect
import json
from collections.abc import Callable
from dataclasses import MISSING, fields
from typing import Any

from synth.dataset import to_jsonable
from synth.grids import GENERATORS, grid_names, load_grid
from theory.bounds import BOUNDS
from verify.configs import CONFIGS, TrainingConfig, config_file_names, load_config_file
from verify.optimiser_spec import PLAIN, OptimiserSpec
from verify.plugins import load_entry_points

REGISTRIES = ("grids", "configs", "stabilisers", "bounds", "generators", "figures")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``list`` sub-command to the ``ftstab`` parser."""
    parser = subparsers.add_parser(
        "list", help="print the grids, configs, stabilisers, bounds, generators or figures available",
        description="Print what a registry holds, with parameters and defaults (plug-ins included).")
    parser.add_argument("registry", choices=REGISTRIES, help="which registry to print")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    print("\n".join(LISTERS[args.registry]()))
    return 0


def _value(value: Any) -> str:
    return json.dumps(to_jsonable(value))


def _defaults(function: Callable[..., Any]) -> str:
    """``name=default`` for every keyword parameter of ``function`` (``name`` when it has none)."""
    shown = []
    for name, parameter in inspect.signature(function).parameters.items():
        if parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
            continue
        empty = parameter.default is inspect.Parameter.empty
        shown.append(name if empty else f"{name}={_value(parameter.default)}")
    return " ".join(shown) or "(no parameters)"


def grid_lines() -> list[str]:
    return [f"{name}  datasets={len(load_grid(name))}" for name in grid_names()]


def config_lines() -> list[str]:
    """One line per shipped config: its file and every parameter that is not at its default; a
    last line (``#``) gives the defaults."""
    defaults = {field.name: field.default for field in fields(TrainingConfig)
                if field.default is not MISSING}
    files = {config.name: file for file in config_file_names() for config in load_config_file(file)}
    lines = []
    for config in CONFIGS.values():
        shown = [f"{key}={_config_value(value)}" for key, value in config.to_dict().items()
                 if key != "name" and (key not in defaults or value != _plain(defaults[key]))]
        lines.append(f"{config.name}  {files[config.name]}.toml  {' '.join(shown)}")
    return lines + ["# defaults: " + " ".join(f"{key}={_config_value(_plain(value))}"
                                               for key, value in defaults.items())]


def _plain(value: Any) -> Any:
    return value.to_dict() if isinstance(value, OptimiserSpec) else value


def _config_value(value: Any) -> str:
    if isinstance(value, dict):  # the optimiser: its name and the fields not at their defaults
        plain = PLAIN.to_dict()
        changed = [f"{key}={_config_value(item)}" for key, item in value.items()
                   if key != "name" and item != plain[key]]
        return value["name"] + (f"({','.join(changed)})" if changed else "")
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return ",".join(value)
    return f"{value:g}" if isinstance(value, float) else _value(value)


def stabiliser_lines() -> list[str]:
    from verify.stabilisers import STABILISERS  # lazy: the ftstab parser stays torch-free
    lines = []
    for name, cls in STABILISERS.items():
        ranges = "; ".join(f"{key}: {' or '.join(c.describe({}) for c in declared)}"
                           for key, declared in cls.parameter_constraints.items())
        grid = "; ".join(f"{key} in {list(values)}" for key, values in cls.strength_grid.items())
        lines.append(f"{name}  {_defaults(cls)}  targets={','.join(cls.targets) or '-'} "
                     f"trainers={','.join(sorted(cls.applies_to))}"
                     + (f"  grid: {grid}" if grid else "")
                     + (f"  constraints: {ranges}" if ranges else ""))
    return lines


def bound_lines() -> list[str]:
    return [f"{b.name}  setting={b.setting} measure={b.measure} "
            f"{'a posteriori' if b.a_posteriori else 'a priori'}  constants={','.join(b.constants)}"
            for b in BOUNDS.values()]


def generator_lines() -> list[str]:
    return [f"{name}  kind={entry.kind}  {_defaults(entry.function)}"
            for name, entry in GENERATORS.items()]


def figure_lines() -> list[str]:
    from figures.registry import figure_modules  # lazy: matplotlib only for `ftstab list figures`
    return [f"{key}  {module.STEM}  {_first_line(module.__doc__)}"
            for key, module in figure_modules().items()]


def _first_line(doc: str | None) -> str:
    return (doc or "").strip().splitlines()[0] if (doc or "").strip() else ""


LISTERS: dict[str, Callable[[], list[str]]] = {
    "grids": grid_lines, "configs": config_lines, "stabilisers": stabiliser_lines,
    "bounds": bound_lines, "generators": generator_lines, "figures": figure_lines,
}


class HelpNamingStabilisers(argparse._HelpAction):
    """``--help`` whose epilog names the registered stabilisers (``ftstab verify --help``)."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: Any, option_string: str | None = None) -> None:
        from verify.stabilisers import STABILISERS  # lazy: only --help pays for importing torch
        load_entry_points()  # before the sub-command runs, when ftstab loads them otherwise
        parser.epilog = (f"stabilisers: {', '.join(STABILISERS)} "
                         f"(parameters and ranges: `ftstab list stabilisers`)")
        super().__call__(parser, namespace, values, option_string)
