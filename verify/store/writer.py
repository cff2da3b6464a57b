"""The writer of ``results.sqlite``: one process (the sweep's or the bounds step's parent), one
transaction per task.

A task's runs, its dataset card, its ``done`` status and the reference to its weights file are
written in one transaction (the weights file itself just before, atomically), so a sweep killed at
any moment leaves either all of a task or none of it; failed tasks keep their traceback and no
results, and are retried by the next sweep. The bounds step writes each task's bound rows and their
``bound_evaluations`` records in one transaction the same way.
"""
from __future__ import annotations

import os
import sqlite3
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from synth.atomic import current_umask
from verify.store import jsontext
from verify.store.checks import check_path, check_results, connect_readonly
from verify.store.read import Results, sql_value
from verify.store.schema import BOUND_COLUMNS, RUN_COLUMNS, SCHEMA_VERSION, ddl
from verify.store.weights import WEIGHTS_FOLDER, remove_unreferenced


def _create(path: Path) -> None:
    """Create an empty results file atomically: a killed process never leaves half a schema."""
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.fchmod(descriptor, 0o666 & ~current_umask())  # an ordinary file's mode, not mkstemp's 0600
    os.close(descriptor)
    try:
        connection = sqlite3.connect(temp)
        try:
            with connection:
                connection.executescript(ddl())
                connection.execute("INSERT INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
        finally:
            connection.close()
        os.replace(temp, path)
    except BaseException:
        if os.path.exists(temp):
            os.unlink(temp)
        raise


class ResultStore(Results):
    """Write ``results.sqlite`` (WAL mode; only the parent process of a sweep writes).

    Parameters
    ----------
    path : str or Path
        The SQLite file; created with the current schema when missing. An existing file is checked
        (``verify.store.checks``) before anything is written to it.

    Raises
    ------
    ValueError
        One line, nothing written: the file is not a complete, undamaged results file of this
        schema version.
    """

    def __init__(self, path: str | Path) -> None:
        path = Path(path)
        if check_path(path):
            checked = connect_readonly(path)
            try:
                check_results(checked, path)
            finally:
                checked.close()
        else:
            _create(path)
        connection = sqlite3.connect(path)
        try:
            connection.execute("PRAGMA journal_mode=WAL")
            # NORMAL keeps every committed transaction across a killed process (not a power cut).
            connection.execute("PRAGMA synchronous=NORMAL")
        except BaseException:
            connection.close()
            raise
        super().__init__(connection, path)

    @property
    def weights_folder(self) -> Path:
        return self.folder / WEIGHTS_FOLDER

    def set_meta(self, values: Mapping[str, str]) -> None:
        with self.connection:
            self.connection.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)", values.items())

    def write_datasets(self, cards: Iterable[Mapping[str, Any]]) -> None:
        """Insert or refresh dataset cards (each needs ``id`` and ``kind``)."""
        with self.connection:
            self.connection.executemany("INSERT OR REPLACE INTO datasets VALUES (?, ?, ?)",
                                        [_dataset_row(card) for card in cards])

    def remove_unreferenced_weights(self) -> list[Path]:
        """Delete weights files no task references (left by a killed sweep or a re-trained task)."""
        referenced = {row[0] for row in self.connection.execute(
            "SELECT weights FROM tasks WHERE weights IS NOT NULL")}
        return remove_unreferenced(self.weights_folder, referenced)

    def write_done(self, task: Mapping[str, Any], runs: Sequence[Mapping[str, Any]], *,
                   seconds: float, card: Mapping[str, Any] | None = None,
                   weights: str | None = None) -> None:
        """Write a finished task's runs and mark it done, in one transaction.

        ``task`` has the ``tasks`` columns ``task_key, dataset_id, config, stabiliser,
        stabiliser_params, seeds``; each run has ``RUN_COLUMNS`` (missing ones are NULL).
        ``weights`` is the sha256 of the task's weights file, already written. The task's earlier
        rows, bound rows and bound evaluations (of a previous attempt) are replaced.
        """
        with self.connection:
            self._forget(task["task_key"])
            if card is not None:
                self.connection.execute("INSERT OR REPLACE INTO datasets VALUES (?, ?, ?)",
                                        _dataset_row(card))
            self.connection.executemany(
                f"INSERT INTO runs ({', '.join(RUN_COLUMNS)}) VALUES ({', '.join('?' * len(RUN_COLUMNS))})",
                [[sql_value(run.get(name)) for name in RUN_COLUMNS] for run in runs])
            self._write_task(task, status="done", error=None, seconds=seconds, weights=weights)

    def write_failed(self, task: Mapping[str, Any], *, error: str, seconds: float) -> None:
        """Record a crashed task with its traceback and no results (the next sweep retries it)."""
        with self.connection:
            self._forget(task["task_key"])
            self._write_task(task, status="failed", error=error, seconds=seconds, weights=None)

    def write_bounds(self, task_key: str, evaluated: Mapping[str, Sequence[Mapping[str, Any]]], *,
                     seconds: float, failed: Mapping[str, str] | None = None) -> None:
        """Replace the bound rows of one task for the bounds in ``evaluated`` and ``failed``.

        ``evaluated`` maps each bound evaluated on the task to its rows (``BOUND_COLUMNS``, each
        ``run_id`` one of the task's runs); ``failed`` maps a bound whose evaluation crashed to its
        traceback (no rows). One transaction, so a killed bounds step leaves a task's bound all
        written or not at all.
        """
        failed = dict(failed or {})
        run_ids = {row[0] for row in self.connection.execute(
            "SELECT run_id FROM runs WHERE task_key = ?", (task_key,))}
        for rows in evaluated.values():
            orphans = [row["run_id"] for row in rows if row["run_id"] not in run_ids]
            if orphans:
                raise ValueError(f"bounds: run_id {orphans[0]} is not among the runs of {task_key}")
        finished_at = _now()
        with self.connection:
            for bound in [*evaluated, *failed]:
                self.connection.execute(
                    "DELETE FROM bounds WHERE bound = ? AND run_id IN "
                    "(SELECT run_id FROM runs WHERE task_key = ?)", (bound, task_key))
            for bound, rows in evaluated.items():
                self.connection.executemany(
                    f"INSERT INTO bounds VALUES ({', '.join('?' * len(BOUND_COLUMNS))})",
                    [[sql_value(row.get(name)) for name in BOUND_COLUMNS] for row in rows])
            self.connection.executemany(
                "INSERT OR REPLACE INTO bound_evaluations VALUES (?, ?, ?, ?, ?, ?, ?)",
                [(task_key, bound, "done", len(rows), None, float(seconds), finished_at)
                 for bound, rows in evaluated.items()]
                + [(task_key, bound, "failed", 0, error, float(seconds), finished_at)
                   for bound, error in failed.items()])

    def _forget(self, task_key: str) -> None:
        self.connection.execute(
            "DELETE FROM bounds WHERE run_id IN (SELECT run_id FROM runs WHERE task_key = ?)", (task_key,))
        self.connection.execute("DELETE FROM bound_evaluations WHERE task_key = ?", (task_key,))
        self.connection.execute("DELETE FROM runs WHERE task_key = ?", (task_key,))

    def _write_task(self, task: Mapping[str, Any], *, status: str, error: str | None,
                    seconds: float, weights: str | None) -> None:
        self.connection.execute(
            "INSERT OR REPLACE INTO tasks VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (task["task_key"], task["dataset_id"], task["config"], task["stabiliser"],
             sql_value(jsontext.loads(task["stabiliser_params"]) if isinstance(task["stabiliser_params"], str)
                       else task["stabiliser_params"]),
             sql_value(list(task["seeds"])), status, error, float(seconds), _now(), weights))


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _dataset_row(card: Mapping[str, Any]) -> tuple[str, str, str]:
    return card["id"], card["kind"], jsontext.dumps(card)
