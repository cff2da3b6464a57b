"""The results store: one SQLite file per sweep, written by one process, read by figures and verdicts.

The schema is the contract of ``docs/internals.md`` §3 (user-facing copy: ``docs/results-schema.md``).
A task's runs, its bounds, its dataset card and its ``done`` status are written in one transaction, so a
sweep killed at any moment leaves either all of a task or none of it; failed tasks keep their
traceback and no results, and are retried by the next sweep.
"""
from __future__ import annotations

import json
import math
import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

# 2: runs columns feature_margin, predicted_direction_error, predictor_relative_error.
# 3: how each left-out row enters E_i (estimator, strata used, standard errors) and the head
#    direction's seed spread on full-set rows.
# 4: runs columns distance_from_start and the teacher distances (START_MEASURES).
# 5: runs column validation_accuracy (a config's validation split, verify.run.validation).
SCHEMA_VERSION = 5
RESULTS_FILE = "results.sqlite"

DATASET_COLUMNS = ("kind", "n_samples", "n_features", "n_classes", "margin", "radius", "label_noise",
                   "distance", "n_support")
TRAINING_COLUMNS = ("setting", "config", "loss", "init", "lr", "lr_scale", "n_steps", "batch_size",
                    "n_heads", "stabiliser", "stabiliser_params")
LEFT_OUT_MEASURES = ("parameter_stability", "head_direction_stability", "pointwise_hypothesis_stability")
# How a left-out row enters E_i (verify.run.layout.LeftOutPlan) and the standard error of E_i of each
# measure for its seed and checkpoint.
LEFT_OUT_ESTIMATE = ("left_out_estimator", "left_out_n_support", "left_out_n_other", "bound_weight",
                     "parameter_stability_se", "head_direction_stability_se",
                     "pointwise_hypothesis_stability_se")
ROW_MEASURES = ("train_loss", "test_loss", "test_accuracy", "majority_accuracy", "direction_error",
                "normalised_margin", "distance_from_init", "diverged", "diverged_at",
                "validation_accuracy")
# Measured on the rows of models trained on all of S only (NULL elsewhere; docs/results-schema.md).
FULL_SET_MEASURES = ("feature_margin", "predicted_direction_error", "predictor_relative_error",
                     "head_seed_spread", "head_seed_spread_low", "head_seed_spread_high")
# Where training started (after a stabiliser's stage such as SURT) against the pre-trained weights
# and the task's teacher backbone; teacher columns NULL for tasks without one.
START_MEASURES = ("distance_from_start", "teacher_distance_pretrained", "teacher_distance_start",
                  "teacher_distance", "start_move_cosine")
KEY_COLUMNS = ("run_id", "task_key", "dataset_id", "seed", "left_out", "left_out_support",
               "left_out_weight", "iteration")
RUN_COLUMNS = (KEY_COLUMNS + DATASET_COLUMNS + TRAINING_COLUMNS + LEFT_OUT_MEASURES + LEFT_OUT_ESTIMATE
               + ROW_MEASURES + FULL_SET_MEASURES + START_MEASURES)
BOUND_COLUMNS = ("run_id", "bound", "measure", "measured", "value", "violated", "constants")

_INTEGER = {"run_id", "seed", "left_out", "left_out_support", "iteration", "n_samples", "n_features",
            "n_classes", "n_support", "n_steps", "batch_size", "n_heads", "diverged", "diverged_at",
            "left_out_n_support", "left_out_n_other"}
_TEXT = {"task_key", "dataset_id", "kind", "setting", "config", "loss", "init", "stabiliser",
         "stabiliser_params", "left_out_estimator"}


def _column_type(name: str) -> str:
    if name == "run_id":
        return "INTEGER PRIMARY KEY"
    if name in _INTEGER:
        return "INTEGER"
    if name in _TEXT:
        return "TEXT"
    return "REAL"


_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS datasets (dataset_id TEXT PRIMARY KEY, kind TEXT, card TEXT);
CREATE TABLE IF NOT EXISTS tasks (
    task_key TEXT PRIMARY KEY, dataset_id TEXT, config TEXT, stabiliser TEXT, stabiliser_params TEXT,
    seeds TEXT, status TEXT CHECK (status IN ('done', 'failed')), error TEXT, seconds REAL,
    finished_at TEXT);
CREATE TABLE IF NOT EXISTS runs (
    {", ".join(f"{name} {_column_type(name)}" for name in RUN_COLUMNS)},
    UNIQUE (task_key, seed, left_out, iteration));
CREATE TABLE IF NOT EXISTS bounds (
    run_id INTEGER REFERENCES runs(run_id), bound TEXT, measure TEXT, measured REAL, value REAL,
    violated TEXT, constants TEXT, PRIMARY KEY (run_id, bound));
CREATE INDEX IF NOT EXISTS runs_by_task ON runs (task_key);
CREATE INDEX IF NOT EXISTS runs_by_curve ON runs (setting, config, stabiliser, dataset_id, iteration);
CREATE INDEX IF NOT EXISTS runs_by_kind ON runs (kind, setting);
CREATE INDEX IF NOT EXISTS bounds_by_name ON bounds (bound);
CREATE INDEX IF NOT EXISTS tasks_by_status ON tasks (status);
"""


def _sql_value(value: Any) -> Any:
    """Python/numpy scalar -> SQLite value; NaN becomes NULL (SQLite has no NaN), ±inf stays."""
    if value is None or isinstance(value, (str, bytes)):
        return value
    if isinstance(value, (dict, list, tuple)):
        # The same canonical text as verify.run.task.canonical_params, so filters on JSON columns match.
        return json.dumps(value, sort_keys=True, separators=(",", ":"))
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


class ResultStore:
    """Read and write ``results.sqlite`` (WAL mode; only the sweep's parent process writes).

    Parameters
    ----------
    path : str or Path
        The SQLite file; created with the current schema when missing.
    readonly : bool, default=False
        Open an existing file for reading only (figures, verdicts).

    Raises
    ------
    ValueError
        If the file was written with another schema version, or ``readonly`` and it does not exist.
    """

    def __init__(self, path: str | Path, *, readonly: bool = False) -> None:
        self.path = Path(path)
        if readonly and not self.path.exists():
            raise ValueError(f"path: no results file at {self.path}")
        existed = self.path.exists()
        self._conn = (sqlite3.connect(f"file:{self.path}?mode=ro", uri=True) if readonly
                      else sqlite3.connect(self.path))
        try:
            # An existing file is checked before anything is written to it.
            if existed:
                self._check_version()
            if not readonly:
                self._conn.execute("PRAGMA journal_mode=WAL")
                # NORMAL keeps every committed transaction across a killed process (not a power cut).
                self._conn.execute("PRAGMA synchronous=NORMAL")
                with self._conn:
                    self._conn.executescript(_SCHEMA)
                    self._conn.execute("INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)",
                                       (str(SCHEMA_VERSION),))
        except BaseException:
            self._conn.close()
            raise
        self._conn.row_factory = sqlite3.Row

    def _check_version(self) -> None:
        try:
            tables = {row[0] for row in self._conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            found = (self._conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
                     if "meta" in tables else None)
        except sqlite3.DatabaseError as exc:
            raise ValueError(f"path: {self.path} is not an ftstab results file ({exc})") from None
        if not tables:
            return
        version = None if found is None else found[0]
        if version != str(SCHEMA_VERSION):
            raise ValueError(f"path: {self.path} has results schema version {version}, this ftstab "
                             f"reads and writes version {SCHEMA_VERSION}; re-run the sweep into a new "
                             f"output folder")

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> ResultStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- sweep bookkeeping -------------------------------------------------------------------------

    def meta(self) -> dict[str, str]:
        """Key/value facts about the sweep (``schema_version`` and what ``set_meta`` recorded)."""
        return {row[0]: row[1] for row in self._conn.execute("SELECT key, value FROM meta")}

    def set_meta(self, values: Mapping[str, str]) -> None:
        with self._conn:
            self._conn.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)", values.items())

    def write_datasets(self, cards: Iterable[Mapping[str, Any]]) -> None:
        """Insert or refresh dataset cards (each needs ``id`` and ``kind``)."""
        with self._conn:
            self._conn.executemany("INSERT OR REPLACE INTO datasets VALUES (?, ?, ?)",
                                   [_dataset_row(card) for card in cards])

    def task_status(self) -> dict[str, str]:
        """``task_key -> 'done' | 'failed'`` for every task recorded so far."""
        return dict(self._conn.execute("SELECT task_key, status FROM tasks").fetchall())

    def write_done(self, task: Mapping[str, Any], runs: Sequence[Mapping[str, Any]],
                   bounds: Sequence[Mapping[str, Any]], *, seconds: float,
                   card: Mapping[str, Any] | None = None) -> None:
        """Write a finished task's runs and bounds and mark it done, in one transaction.

        ``task`` has the ``tasks`` columns ``task_key, dataset_id, config, stabiliser,
        stabiliser_params, seeds``; each run has ``RUN_COLUMNS`` (missing ones are NULL) and each
        bound ``BOUND_COLUMNS``, its ``run_id`` naming one of ``runs``.
        """
        run_ids = {run["run_id"] for run in runs}
        orphans = [bound["run_id"] for bound in bounds if bound["run_id"] not in run_ids]
        if orphans:
            raise ValueError(f"bounds: run_id {orphans[0]} is not among the task's runs")
        with self._conn:
            self._forget(task["task_key"])
            if card is not None:
                self._conn.execute("INSERT OR REPLACE INTO datasets VALUES (?, ?, ?)",
                                   _dataset_row(card))
            self._conn.executemany(
                f"INSERT INTO runs ({', '.join(RUN_COLUMNS)}) VALUES ({', '.join('?' * len(RUN_COLUMNS))})",
                [[_sql_value(run.get(name)) for name in RUN_COLUMNS] for run in runs])
            self._conn.executemany(
                f"INSERT INTO bounds VALUES ({', '.join('?' * len(BOUND_COLUMNS))})",
                [[_sql_value(bound.get(name)) for name in BOUND_COLUMNS] for bound in bounds])
            self._write_task(task, status="done", error=None, seconds=seconds)

    def write_failed(self, task: Mapping[str, Any], *, error: str, seconds: float) -> None:
        """Record a crashed task with its traceback and no results (the next sweep retries it)."""
        with self._conn:
            self._forget(task["task_key"])
            self._write_task(task, status="failed", error=error, seconds=seconds)

    def _forget(self, task_key: str) -> None:
        self._conn.execute("DELETE FROM bounds WHERE run_id IN (SELECT run_id FROM runs WHERE task_key = ?)",
                           (task_key,))
        self._conn.execute("DELETE FROM runs WHERE task_key = ?", (task_key,))

    def _write_task(self, task: Mapping[str, Any], *, status: str, error: str | None,
                    seconds: float) -> None:
        finished_at = datetime.now(timezone.utc).isoformat(timespec="seconds")
        self._conn.execute(
            "INSERT OR REPLACE INTO tasks VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (task["task_key"], task["dataset_id"], task["config"], task["stabiliser"],
             _sql_value(task["stabiliser_params"]), _sql_value(list(task["seeds"])), status, error,
             float(seconds), finished_at))

    # -- reading ------------------------------------------------------------------------------------

    def query(self, sql: str, parameters: Sequence[Any] | Mapping[str, Any] = ()) -> list[dict[str, Any]]:
        """Run a read query; rows as dicts keyed by column name."""
        return [dict(row) for row in self._conn.execute(sql, parameters)]

    def runs(self, *, left_out: bool | None = None, **equal: Any) -> list[dict[str, Any]]:
        """Rows of ``runs`` ordered by their coordinates.

        Parameters
        ----------
        left_out : bool or None
            True: left-out rows only; False: the full-set rows (``left_out IS NULL``); None: both.
        **equal
            Column filters, e.g. ``setting="head", config="head_gd_logistic"``.
        """
        where, parameters = _where(equal, RUN_COLUMNS)
        if left_out is not None:
            where.append(f"left_out IS {'NOT ' if left_out else ''}NULL")
        return self.query(
            f"SELECT * FROM runs {_clause(where)} ORDER BY dataset_id, config, stabiliser, "
            "stabiliser_params, seed, left_out, iteration", parameters)

    def bounds(self, **equal: Any) -> list[dict[str, Any]]:
        """Rows of ``bounds`` joined with their run (every ``runs`` column), JSON fields decoded.

        ``**equal`` filters on ``bounds`` or ``runs`` columns, e.g. ``bound="theorem_f"``.
        """
        where, parameters = _where(equal, RUN_COLUMNS + BOUND_COLUMNS, prefix={
            name: "b." if name in BOUND_COLUMNS else "r." for name in RUN_COLUMNS + BOUND_COLUMNS})
        rows = self.query(
            "SELECT r.*, b.bound, b.measure, b.measured, b.value, b.violated, b.constants "
            f"FROM bounds b JOIN runs r USING (run_id) {_clause(where)} "
            "ORDER BY r.dataset_id, r.config, r.stabiliser, r.stabiliser_params, r.seed, r.left_out, "
            "r.iteration, b.bound", parameters)
        for row in rows:
            row["violated"] = json.loads(row["violated"])
            row["constants"] = json.loads(row["constants"])
        return rows

    def cards(self) -> dict[str, dict[str, Any]]:
        """``dataset_id -> card`` for every dataset recorded."""
        return {row["dataset_id"]: json.loads(row["card"])
                for row in self.query("SELECT dataset_id, card FROM datasets")}

    def tasks(self, *, status: str | None = None) -> list[dict[str, Any]]:
        """Rows of ``tasks`` (optionally one status), ordered by key."""
        where, parameters = _where({"status": status} if status else {}, ("status",))
        return self.query(f"SELECT * FROM tasks {_clause(where)} ORDER BY task_key", parameters)


def _dataset_row(card: Mapping[str, Any]) -> tuple[str, str, str]:
    return card["id"], card["kind"], json.dumps(card, sort_keys=True)


def _where(equal: Mapping[str, Any], allowed: Sequence[str],
           prefix: Mapping[str, str] | None = None) -> tuple[list[str], list[Any]]:
    unknown = sorted(set(equal) - set(allowed))
    if unknown:
        raise ValueError(f"filter: unknown column {unknown[0]!r}; columns are {', '.join(allowed)}")
    prefix = prefix or {}
    where = [f"{prefix.get(name, '')}{name} = ?" for name in equal]
    return where, [_sql_value(value) for value in equal.values()]


def _clause(where: list[str]) -> str:
    return f"WHERE {' AND '.join(where)}" if where else ""
