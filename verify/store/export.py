"""Results a user can take elsewhere: one table of a results folder as CSV or JSON lines.

Read through the read API (``verify.store.open_results``), one row at a time. ``bounds`` rows carry
their run's identity (task, dataset, config, stabiliser, seed, left-out index, iteration) so they
stand alone. CSV writes NULL as an empty field and ±inf as ``inf``/``-inf``; JSON lines writes
standard JSON (``verify.store.jsontext``: NULL and NaN as ``null``, ±inf as ``±1e999``), with the JSON
columns (``card``, ``stabiliser_params``, ``seeds``, ``violated``, ``constants``) as JSON values.
"""
from __future__ import annotations

import csv
from collections.abc import Iterator
from typing import Any, TextIO

from verify.store import jsontext
from verify.store.read import Results
from verify.store.schema import TABLE

FORMATS = ("csv", "jsonl")
# ``bounds`` rows with the identity of their run, so an exported row stands alone.
RUN_IDENTITY = ("task_key", "dataset_id", "config", "stabiliser", "stabiliser_params", "seed", "left_out",
                "iteration")
_QUERIES = {
    "runs": "SELECT * FROM runs ORDER BY dataset_id, config, stabiliser, stabiliser_params, seed, "
            "left_out, iteration",
    "bounds": (f"SELECT b.run_id, {', '.join(f'r.{name}' for name in RUN_IDENTITY)}, b.bound, b.measure, "
               "b.measured, b.value, b.violated, b.constants FROM bounds b JOIN runs r USING (run_id) "
               "ORDER BY r.dataset_id, r.config, r.stabiliser, r.stabiliser_params, r.seed, r.left_out, "
               "r.iteration, b.bound"),
    "tasks": "SELECT * FROM tasks ORDER BY task_key",
}
TABLES = tuple(_QUERIES)


def export_rows(results: Results, table: str) -> Iterator[dict[str, Any]]:
    """The rows of ``table`` (``runs``, ``bounds`` or ``tasks``) as plain dicts, JSON columns decoded."""
    if table not in _QUERIES:
        raise ValueError(f"table: must be one of {', '.join(TABLES)}, got {table!r}")
    json_columns = set(TABLE[table].json_columns()) | ({"stabiliser_params"} if table == "bounds" else set())
    for row in results.iterate(_QUERIES[table]):
        for name in json_columns & set(row):
            if row[name] is not None:
                row[name] = jsontext.loads(row[name])
        yield row


def write_export(results: Results, table: str, fmt: str, handle: TextIO) -> int:
    """Write ``table`` to ``handle`` as ``fmt`` (``csv`` or ``jsonl``); returns the number of rows."""
    if fmt not in FORMATS:
        raise ValueError(f"format: must be one of {', '.join(FORMATS)}, got {fmt!r}")
    count = 0
    writer = None
    for row in export_rows(results, table):
        if fmt == "jsonl":
            handle.write(jsontext.dumps(row) + "\n")
        else:
            if writer is None:
                writer = csv.DictWriter(handle, fieldnames=list(row), lineterminator="\n")
                writer.writeheader()
            writer.writerow({name: _csv_value(value) for name, value in row.items()})
        count += 1
    if writer is None and fmt == "csv":
        names = (("run_id", *RUN_IDENTITY, *TABLE["bounds"].names[1:]) if table == "bounds"
                 else TABLE[table].names)
        csv.writer(handle, lineterminator="\n").writerow(names)
    return count


def _csv_value(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, (dict, list)):
        return jsontext.dumps(value)
    if isinstance(value, float):
        return repr(value)
    return value
