"""Bound rows of a task's output, evaluated in-process from its weights record (what the bounds step
does from the stored file), for tests of one task."""
from __future__ import annotations

from theory.bounds import BOUNDS
from verify.bounds.stored import task_bound_rows
from verify.run.task import run_ids


def bounds_of(output, dataset, bounds=None) -> list[dict]:
    """Every registered bound (or ``bounds``) on ``output``; each row also names its ``row`` in
    ``output.runs``."""
    ids = run_ids(output.weights.task_key, output.runs)
    evaluated = task_bound_rows(output.weights, dataset, list(BOUNDS.values()) if bounds is None else bounds,
                                dict(zip(ids, output.runs, strict=True)))
    index = {rid: r for r, rid in enumerate(ids)}
    return [{**row, "row": index[row["run_id"]]} for rows in evaluated.values() for row in rows]
