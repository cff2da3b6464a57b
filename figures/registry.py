"""Every figure and table `ftstab figures` draws, and the run that draws a selection of them.

A figure module defines ``KEY`` (``"F1"``), ``STEM`` (the file name, ``"f01_margin"``),
``PRODUCED_BY`` (what in a sweep produces its data) and ``render(connection, out_dir) -> Drawn``,
which raises :class:`figures.data.MissingData` when the results lack its rows.
"""
from __future__ import annotations

import importlib
import sqlite3
from pathlib import Path
from types import ModuleType

from figures.data import MissingData
from figures.output import Drawn, Skipped, write_text

MODULES = (
    "f01_margin", "f02_iterations", "f03_learning_rate", "f04_samples", "f05_full_samples",
    "f06_distance", "f07_curvature_lipschitz", "f08_step_budget", "f09_stabilisers",
    "f10_bound_vs_measured", "f11_stabiliser_targets", "t1_stabilisers", "t2_real",
    "f12_real_seeds",
)


# Figure modules of plug-ins (verify.plugins.add_figure), by key, drawn after the built-in ones.
PLUGIN_FIGURES: dict[str, ModuleType] = {}


def figure_modules() -> dict[str, ModuleType]:
    """Key (``"F1"`` … ``"F12"``, ``"T1"``, ``"T2"``, then plug-ins') -> figure module, in drawing order."""
    modules = [importlib.import_module(f"figures.{name}") for name in MODULES]
    return {**{module.KEY: module for module in modules}, **PLUGIN_FIGURES}


def parse_only(only: str | None) -> list[str]:
    """The keys selected by ``only`` (``"F1,f5, T1"``, the text of ``--only``); all keys when None."""
    known = list(figure_modules())
    if only is None:
        return known
    keys = [item.strip().upper() for item in only.split(",") if item.strip()]
    unknown = [key for key in keys if key not in known]
    if not keys or unknown:
        raise ValueError(f"only: unknown figure(s) {', '.join(unknown) or '(none given)'}; "
                         f"choose from {', '.join(known)}")
    return [key for key in known if key in keys]


OUTPUT_SUFFIXES = (".png", ".pdf", ".csv", ".md")


def render_figures(connection: sqlite3.Connection, out_dir: Path,
                   keys: list[str]) -> list[Drawn | Skipped]:
    """Render the figures ``keys`` into ``out_dir``; absent data gives a :class:`Skipped`.

    A skipped figure's files left in ``out_dir`` by an earlier run are removed, so that the folder
    always matches its ``index.md``.
    """
    modules = figure_modules()
    outcomes: list[Drawn | Skipped] = []
    for key in keys:
        module = modules[key]
        try:
            outcomes.append(module.render(connection, out_dir))
        except MissingData as missing:
            outcomes.append(Skipped(key=key, stem=module.STEM,
                                    reason=f"{missing}; produced by {module.PRODUCED_BY}"))
            for suffix in OUTPUT_SUFFIXES:
                (out_dir / f"{module.STEM}{suffix}").unlink(missing_ok=True)
    return outcomes


def write_index(out_dir: Path, outcomes: list[Drawn | Skipped], *, source: Path) -> Path:
    """Write ``out_dir/index.md``: what was drawn (with its files) and what was skipped and why."""
    lines = ["# ftstab figures", "", f"Rendered from `{source}`.", "", "## Drawn", ""]
    drawn = [outcome for outcome in outcomes if isinstance(outcome, Drawn)]
    skipped = [outcome for outcome in outcomes if isinstance(outcome, Skipped)]
    for outcome in drawn:
        links = " · ".join(f"[{path.suffix[1:]}]({path.name})" for path in outcome.files)
        lines.append(f"- **{outcome.key}** {outcome.title} — {links}")
        lines += [f"  - {note}" for note in outcome.notes]
    if not drawn:
        lines.append("- (nothing)")
    lines += ["", "## Skipped", ""]
    lines += [f"- **{outcome.key}** ({outcome.stem}): {outcome.reason}" for outcome in skipped]
    if not skipped:
        lines.append("- (nothing)")
    return write_text(out_dir / "index.md", "\n".join(lines) + "\n")
