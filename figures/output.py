"""Write a figure's files: PNG and PDF of the drawing, CSV of exactly the plotted numbers.

Every file is written atomically (``synth.atomic``: a temporary file moved into place), so a killed
``ftstab figures`` never leaves a truncated figure under its final name, and files follow the umask.
"""
from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

from matplotlib.figure import Figure

from figures.style import Panel, draw_panels, non_positive_points
from synth.atomic import atomic_target

DPI = 160


@dataclass(frozen=True)
class Drawn:
    """A figure or table that was written: its key (``"F1"``), title and files."""

    key: str
    stem: str
    title: str
    files: tuple[Path, ...]
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Skipped:
    """A figure or table whose data is absent, with a one-line note on what would produce it."""

    key: str
    stem: str
    reason: str


def save_figure(figure: Figure, out_dir: Path, stem: str) -> list[Path]:
    """Save ``figure`` as ``stem.png`` (``DPI`` dots per inch) and ``stem.pdf``; return the paths.

    The saved page is the box around everything drawn (``bbox_inches="tight"``), so a legend wider
    than its panel's column (many task families) is kept whole instead of cut at the page edge.
    """
    paths = []
    for suffix in (".png", ".pdf"):
        path = out_dir / f"{stem}{suffix}"
        with atomic_target(path) as handle:
            figure.savefig(handle, dpi=DPI, format=suffix[1:], bbox_inches="tight", pad_inches=0.1)
        paths.append(path)
    return paths


def write_csv(path: Path, rows: list[dict]) -> Path:
    """Write ``rows`` (dicts with the same keys, in order) to ``path`` atomically."""
    if not rows:
        raise ValueError(f"rows: nothing to write to {path}")
    text = io.StringIO(newline="")
    writer = csv.DictWriter(text, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    return write_text(path, text.getvalue())


def write_text(path: Path, text: str) -> Path:
    """Write ``text`` to ``path`` atomically."""
    with atomic_target(path) as handle:
        handle.write(text.encode("utf-8"))
    return path


def write_panels_figure(out_dir: Path, *, key: str, stem: str, title: str, panels: list[Panel],
                        notes: tuple[str, ...] = (), csv_rows: list[dict] | None = None,
                        size: tuple[float, float] | None = None) -> Drawn:
    """Draw ``panels`` under ``title``; write PNG, PDF and a CSV of the plotted numbers.

    The CSV holds every plotted series (:meth:`figures.style.Series.csv_rows`) unless the figure
    passes its own ``csv_rows`` (one row per plotted point, with more identifying columns).
    ``size`` overrides the figure size in inches.
    """
    figure = draw_panels(title, panels, size)
    files = save_figure(figure, out_dir, stem)
    rows = csv_rows if csv_rows is not None else [
        row for panel in panels for series in panel.series for row in series.csv_rows(key)]
    files.append(write_csv(out_dir / f"{stem}.csv", rows))
    headline = title.split("\n")[0].removeprefix(f"{key} · ")
    return Drawn(key=key, stem=stem, title=headline, files=tuple(files),
                 notes=(*notes, *non_positive_points(panels)))
