"""Standard JSON for the store's JSON columns: no ``NaN``/``Infinity`` tokens, canonical text.

Python's ``json.dumps`` writes non-finite floats as ``NaN`` and ``Infinity``, which standard JSON (and
SQLite's ``json_extract``) rejects. Here NaN becomes ``null`` and ±inf the number ``±1e999``, which
every IEEE-754 JSON reader (Python's ``json.loads``, SQLite's JSON functions, JavaScript) reads back
as ±infinity. Keys are sorted and separators compact, so equal values have equal text (the text
``verify.run.task.canonical_params`` writes for finite parameters).
"""
from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

INFINITY = "1e999"


def dumps(value: Any) -> str:
    """``value`` (dicts, lists, tuples, str, int, float, bool, None, numpy scalars) as standard JSON."""
    parts: list[str] = []
    _encode(value, parts)
    return "".join(parts)


def _encode(value: Any, parts: list[str]) -> None:
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()  # numpy scalar (a numpy array is refused below)
    if value is None or isinstance(value, (bool, str)):
        parts.append(json.dumps(value))
    elif isinstance(value, int):
        parts.append(int.__repr__(value))
    elif isinstance(value, float):
        if math.isnan(value):
            parts.append("null")
        elif math.isinf(value):
            parts.append(INFINITY if value > 0 else f"-{INFINITY}")
        else:
            parts.append(float.__repr__(value))
    elif isinstance(value, Mapping):
        parts.append("{")
        for position, key in enumerate(sorted(value)):
            if not isinstance(key, str):
                raise TypeError(f"JSON object keys must be str, got {key!r}")
            parts.append(("," if position else "") + json.dumps(key) + ":")
            _encode(value[key], parts)
        parts.append("}")
    elif isinstance(value, (list, tuple)):
        parts.append("[")
        for position, item in enumerate(value):
            if position:
                parts.append(",")
            _encode(item, parts)
        parts.append("]")
    else:
        raise TypeError(f"cannot store {type(value).__name__} as JSON")


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"non-standard JSON constant {name}")


def loads(text: str) -> Any:
    """Parse standard JSON strictly (``NaN``/``Infinity`` tokens refused); ``1e999`` reads as inf."""
    return json.loads(text, parse_constant=_refuse_constant)
