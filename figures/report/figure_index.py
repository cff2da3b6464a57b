"""Which figures a ``ftstab figures`` folder holds: its ``index.md`` read back (figures.registry
writes it), so the report can copy figures already drawn instead of drawing them again."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from figures.output import Drawn, Skipped

_DRAWN = re.compile(r"^- \*\*(?P<key>[A-Z]+\d+)\*\* (?P<title>.*) — (?P<links>.*)$")
_LINK = re.compile(r"\[(?P<suffix>[a-z]+)\]\((?P<name>[^)]+)\)")
_SKIPPED = re.compile(r"^- \*\*(?P<key>[A-Z]+\d+)\*\* \((?P<stem>[^)]+)\): (?P<reason>.*)$")


@dataclass
class FigureEntry:
    """A figure or table of a figures folder: its files by suffix, or why it was skipped."""

    key: str
    title: str
    files: dict[str, Path] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    skipped: str | None = None


def from_outcomes(outcomes: list[Drawn | Skipped]) -> list[FigureEntry]:
    """Entries of figures just drawn by ``figures.registry.render_figures``."""
    entries = []
    for outcome in outcomes:
        if isinstance(outcome, Drawn):
            entries.append(FigureEntry(outcome.key, outcome.title,
                                       {path.suffix[1:]: path for path in outcome.files},
                                       list(outcome.notes)))
        else:
            entries.append(FigureEntry(outcome.key, outcome.stem, skipped=outcome.reason))
    return entries


def read_index(folder: Path) -> list[FigureEntry]:
    """The entries of ``folder/index.md``; a drawn figure whose files are gone is refused.

    Raises
    ------
    ValueError
        If ``index.md`` is absent or a file it names is missing (one line naming it).
    """
    folder = Path(folder)
    index = folder / "index.md"
    if not index.is_file():
        raise ValueError(f"figures folder {folder}: no index.md; draw the figures with `ftstab figures`")
    entries: list[FigureEntry] = []
    for line in index.read_text(encoding="utf-8").splitlines():
        if (drawn := _DRAWN.match(line)) is not None:
            files = {m["suffix"]: folder / m["name"] for m in _LINK.finditer(drawn["links"])}
            missing = [path.name for path in files.values() if not path.is_file()]
            if missing:
                raise ValueError(f"figures folder {folder}: index.md lists {', '.join(missing)}, which "
                                 f"is not there; draw the figures again")
            entries.append(FigureEntry(drawn["key"], drawn["title"], files))
        elif (skipped := _SKIPPED.match(line)) is not None:
            entries.append(FigureEntry(skipped["key"], skipped["stem"], skipped=skipped["reason"]))
        elif line.startswith("  - ") and entries and entries[-1].skipped is None:
            entries[-1].notes.append(line[4:])
    return entries
