"""The golden file: a sweep's numbers that matter with their tolerances, and the environment they
were computed in (JSON, one entry per line of the ``numbers`` list so that a diff shows what moved)."""
from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

from synth.atomic import atomic_target
from verify.golden.numbers import KINDS, Number
from verify.provenance import environment

FORMAT = "ftstab-golden"
VERSION = 1


def write_golden(path: Path, numbers: list[Number], *, source: Path, rtol: float) -> Path:
    """Write ``numbers`` to ``path`` atomically, with the environment and the freezing time."""
    header = {"format": FORMAT, "version": VERSION, "source": str(source), "rtol": rtol,
              "frozen_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
              "environment": environment()}
    body = json.dumps(header, indent=2, sort_keys=True)[:-2]
    lines = [json.dumps({"key": n.key, "kind": n.kind, "value": n.value, "tolerance": n.tolerance},
                        allow_nan=False) for n in numbers]
    text = body + ',\n  "numbers": [\n    ' + ",\n    ".join(lines) + "\n  ]\n}\n"
    json.loads(text)  # the hand-laid layout must still be JSON
    with atomic_target(Path(path)) as handle:
        handle.write(text.encode())
    return Path(path)


def read_golden(path: Path) -> tuple[dict, list[Number]]:
    """The header and numbers of a golden file; a file that is not one is refused in one line."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"golden file {path}: not found; write one with `ftstab freeze`")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"golden file {path}: not JSON ({exc})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ValueError(f"golden file {path}: not an ftstab golden file (format {FORMAT!r})")
    if data.get("version") != VERSION:
        raise ValueError(f"golden file {path}: golden format version {data.get('version')!r}, "
                         f"this ftstab reads version {VERSION}; freeze it again")
    numbers = []
    for entry in data.get("numbers", []):
        if not (isinstance(entry, dict) and isinstance(entry.get("key"), str)
                and entry.get("kind") in KINDS and isinstance(entry.get("tolerance"), (int, float))):
            raise ValueError(f"golden file {path}: malformed entry {entry!r} (needs key, kind in "
                             f"{KINDS}, value, tolerance)")
        numbers.append(Number(entry["key"], entry["kind"], entry.get("value"), float(entry["tolerance"])))
    header = {key: value for key, value in data.items() if key != "numbers"}
    return header, numbers
