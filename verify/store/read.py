"""The one read API of a results folder: open read-only, checked; plain records; E_i; weights.

``open_results(DIR)`` is what the sweep's checks, the bounds step, the verdicts, the figures, the
report, ``ftstab export`` and the tests read through (schema: ``verify.store.schema``,
docs/results-schema.md)::

    from verify.store import open_results
    with open_results("results/") as results:
        rows = results.runs(config="full_quadratic_gd", left_out=True)   # list of dicts
        e_i = results.stability("parameter_stability")                   # E_i per seed/iteration
        e_i.partial_left_out        # groups left out: their left-out estimate is partial
        e_i.diverged_left_out       # groups left out: a left-out run diverged or lacks the measure
        frame = results.dataframe("SELECT * FROM bounds")                # needs pandas
"""
from __future__ import annotations

import functools
import sqlite3
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Self

from verify.errors import UsageError
from verify.store import jsontext
from verify.store.checks import check_path, check_results, connect_readonly
from verify.store.schema import BOUND_COLUMNS, RESULTS_FILE, RUN_COLUMNS, TABLE
from verify.store.weights import WEIGHTS_FOLDER, StoredWeights, read_weights

# Left-out runs are averaged over i within these keys (E_i in the theory).
STABILITY_KEYS = ("dataset_id", "config", "stabiliser", "stabiliser_params", "seed", "iteration")


def partial_estimate(alias: str = "r") -> str:
    """SQL aggregate, true for an E_i group (left-out rows grouped by :data:`STABILITY_KEYS`) whose
    left-out estimate is partial: some stratum of S has no left-out sample, so no weighting of its
    rows estimates E_i. A row without an estimator (NULL) is not partial. The verdicts
    (``verify.verdicts.db.estimator_filter``) and :meth:`Results.stability` leave such groups out."""
    column = f"{alias}.left_out_estimator" if alias else "left_out_estimator"
    return f"(SUM({column} IS 'partial') > 0)"


def fully_measured(measure: str, alias: str = "r") -> str:
    """SQL aggregate, true for an E_i group (left-out rows grouped by :data:`STABILITY_KEYS`) whose
    every row measured ``measure``: no row's model diverged (``diverged`` is 0 on every row) and
    no row has ``measure`` NULL (it is NULL where either model diverged). Over the rows that remain,
    :func:`left_out_mean` would be the E_i of the models that stayed stable only. Every verdict that
    averages left-out rows leaves other groups out: the corollaries
    (``verify.verdicts.corollaries``), the stabilisers' leave-one-out E_i
    (``verify.verdicts.stabilisers``), the rank correlations' measured E_i
    (``verify.verdicts.datasets``), and :meth:`Results.stability`.

    ``measure`` is a column of ``runs`` (read on ``alias``) or an SQL expression (e.g. a ``CASE``
    or ``b.measured``), taken as it is."""
    prefix = f"{alias}." if alias else ""
    value = f"{prefix}{measure}" if measure.isidentifier() else measure
    return f"(MAX({prefix}diverged) = 0 AND COUNT({value}) = COUNT(*))"


class StabilityRecords(list):
    """The records of :meth:`Results.stability`: a list of dicts, with ``partial_left_out``, how
    many E_i groups matching the filters were left out because their left-out estimate is partial
    (0 when they were asked for with ``include_partial=True``), and ``diverged_left_out``, how many
    of the others were left out because a left-out run diverged or lacks the measure."""

    def __init__(self, records: Sequence[dict[str, Any]], *, partial_left_out: int,
                 diverged_left_out: int) -> None:
        super().__init__(records)
        self.partial_left_out = partial_left_out
        self.diverged_left_out = diverged_left_out


def results_path(path: str | Path) -> Path:
    """``DIR/results.sqlite`` for a results folder, or the file itself."""
    path = Path(path)
    return path / RESULTS_FILE if path.is_dir() and path.name != RESULTS_FILE else path


@functools.lru_cache(maxsize=4096)
def canonical_params(text: str | None) -> str:
    """``stabiliser_params`` text as canonical JSON (sorted keys, compact), so equal ones compare equal."""
    return jsontext.dumps(jsontext.loads(text) if text else {})


def left_out_mean(expression: str, alias: str = "r") -> str:
    """SQL aggregate for E_i of ``expression`` over the left-out rows of a group.

    The left-out samples are drawn support vectors first, so the plain mean over left-out rows is
    biased; each row's ``left_out_weight`` corrects it. Rows where ``expression`` is NULL are left
    out (the weights of the others are renormalised).
    """
    weight = f"{alias}.left_out_weight" if alias else "left_out_weight"
    return (f"(SUM({weight} * ({expression})) / "
            f"SUM(CASE WHEN ({expression}) IS NOT NULL THEN {weight} END))")


def open_results(path: str | Path) -> Results:
    """Open a results folder (or its ``results.sqlite``) read-only, after checking it.

    Raises
    ------
    ValueError
        One line naming the file: missing, a directory, empty, not SQLite, damaged (SQLite's
        ``quick_check``), another schema version, or a table or column of the schema missing.
    """
    file = results_path(path)
    if not check_path(file):
        raise ValueError(f"path: no results file at {file} (run `ftstab verify --out DIR` first "
                         f"and pass that DIR)")
    connection = connect_readonly(file)
    try:
        check_results(connection, file)
    except BaseException:
        connection.close()
        raise
    return Results(connection, file)


def open_results_option(path: str | Path, option: str) -> Results:
    """:func:`open_results` for a command-line option: its one-line refusal names the option."""
    try:
        return open_results(path)
    except ValueError as exc:
        raise UsageError(f"{option}: {str(exc).removeprefix('path: ')}") from None


class Results:
    """A checked, open results file. Use :func:`open_results`; the writer ``ResultStore`` is one too.

    Attributes
    ----------
    path : Path
        The ``results.sqlite`` file.
    connection : sqlite3.Connection
        For SQL of one's own (rows are ``sqlite3.Row``); read-only unless this is the writer.
    """

    def __init__(self, connection: sqlite3.Connection, path: Path) -> None:
        self.path = Path(path)
        self.connection = connection
        self.connection.row_factory = sqlite3.Row

    @property
    def folder(self) -> Path:
        return self.path.parent

    def close(self) -> None:
        self.connection.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- plain records ------------------------------------------------------------------------------

    def query(self, sql: str, parameters: Sequence[Any] | Mapping[str, Any] = ()) -> list[dict[str, Any]]:
        """Rows of a read query as dicts keyed by column name (``stabiliser_params`` canonical)."""
        rows = [dict(row) for row in self.connection.execute(sql, parameters)]
        for row in rows:
            if isinstance(row.get("stabiliser_params"), str):
                row["stabiliser_params"] = canonical_params(row["stabiliser_params"])
        return rows

    def iterate(self, sql: str, parameters: Sequence[Any] = ()) -> Iterator[dict[str, Any]]:
        """Like :meth:`query`, one row at a time (for tables too large to hold)."""
        for row in self.connection.execute(sql, parameters):
            yield dict(row)

    def dataframe(self, sql: str, parameters: Sequence[Any] = ()) -> Any:
        """The rows of a query as a ``pandas.DataFrame`` (pandas is optional: ImportError without it)."""
        try:
            import pandas
        except ModuleNotFoundError:
            raise ImportError("dataframe: needs pandas (pip install pandas); query() returns plain "
                              "records without it") from None
        return pandas.DataFrame(self.query(sql, parameters))

    def meta(self) -> dict[str, str]:
        """Key/value facts about the sweep: ``schema_version``, ``n_seeds``, ``configs``."""
        return {row[0]: row[1] for row in self.connection.execute("SELECT key, value FROM meta")}

    def configs(self) -> dict[str, dict[str, Any]]:
        """``config name -> definition`` of every config the file has results for."""
        return jsontext.loads(self.meta().get("configs", "{}"))

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
            row["violated"] = jsontext.loads(row["violated"])
            row["constants"] = jsontext.loads(row["constants"])
        return rows

    def stability(self, measure: str, *, include_partial: bool = False,
                  **equal: Any) -> StabilityRecords:
        """E_i of a left-out ``measure`` per (dataset, config, stabiliser, parameters, seed, iteration).

        Parameters
        ----------
        measure : str
            A left-out measure of ``runs``, e.g. ``"parameter_stability"``.
        include_partial : bool
            False (default): groups whose left-out estimate is partial (``left_out_estimator`` =
            ``partial``: some stratum of S has no left-out sample, so the weighted mean is not an
            estimate of E_i) are left out and counted in ``partial_left_out``, as the verdicts do.
            True: they are returned too, marked by their ``left_out_estimator``.
        **equal
            Column filters on ``runs``, e.g. ``config="head_gd_logistic"``.

        Returns
        -------
        StabilityRecords
            A list of records, each with :data:`STABILITY_KEYS`, ``stability`` (the
            ``left_out_weight``-weighted mean over the group's left-out rows), ``n_left_out`` (those
            rows) and ``left_out_estimator`` (the group's: ``exact``, ``stratified``, ``partial``,
            or None for rows that record none); its ``partial_left_out`` is how many matching groups
            were left out as partial, its ``diverged_left_out`` how many of the others were left
            out because some left-out run diverged or lacks the measure.

        Notes
        -----
        As in the corollary verdicts, a group is returned only when every one of its left-out runs
        measured ``measure`` (:func:`fully_measured`): where a model diverged (the measure is then
        NULL on its row, and on every row whose model on S diverged), the mean over the other rows
        would be the E_i of the stable models only, so the group is left out and counted in
        ``diverged_left_out``, whatever ``include_partial``.
        """
        if measure not in TABLE["runs"].group("left_out"):
            raise ValueError(f"measure: must be one of {', '.join(TABLE['runs'].group('left_out'))}, "
                             f"got {measure!r}")
        where, parameters = _where(equal, RUN_COLUMNS, prefix=dict.fromkeys(RUN_COLUMNS, "r."))
        keys = ", ".join(f"r.{key}" for key in STABILITY_KEYS)
        rows = self.query(
            f"SELECT {keys}, {left_out_mean(f'r.{measure}')} AS stability, "
            f"COUNT(r.{measure}) AS n_left_out, CASE WHEN {partial_estimate()} THEN 'partial' "
            "ELSE MAX(r.left_out_estimator) END AS left_out_estimator, "
            f"{fully_measured(measure)} AS measured FROM runs r "
            f"{_clause(['r.left_out IS NOT NULL', *where])} GROUP BY {keys} ORDER BY {keys}",
            parameters)
        estimated = [row for row in rows if include_partial or row["left_out_estimator"] != "partial"]
        kept = [row for row in estimated if row.pop("measured")]
        return StabilityRecords(kept, partial_left_out=len(rows) - len(estimated),
                                diverged_left_out=len(estimated) - len(kept))

    def cards(self) -> dict[str, dict[str, Any]]:
        """``dataset_id -> card`` for every dataset recorded."""
        return {row["dataset_id"]: jsontext.loads(row["card"])
                for row in self.query("SELECT dataset_id, card FROM datasets")}

    def tasks(self, *, status: str | None = None) -> list[dict[str, Any]]:
        """Rows of ``tasks`` (optionally one status), ordered by key."""
        where, parameters = _where({"status": status} if status else {}, ("status",))
        return self.query(f"SELECT * FROM tasks {_clause(where)} ORDER BY task_key", parameters)

    def task_status(self) -> dict[str, str]:
        """``task_key -> 'done' | 'failed'`` for every task recorded so far."""
        return {row[0]: row[1] for row in self.connection.execute("SELECT task_key, status FROM tasks")}

    def evaluations(self) -> dict[tuple[str, str], str]:
        """``(task_key, bound) -> 'done' | 'failed'`` for every bound evaluation recorded."""
        return {(row[0], row[1]): row[2] for row in self.connection.execute(
            "SELECT task_key, bound, status FROM bound_evaluations")}

    def weights(self, task_key: str) -> StoredWeights:
        """The stored weights of a done task (checked against the sha256 its row records)."""
        row = self.connection.execute("SELECT weights FROM tasks WHERE task_key = ?",
                                      (task_key,)).fetchone()
        if row is None or row[0] is None:
            raise ValueError(f"task: {task_key!r} has no stored weights in {self.path}")
        return read_weights(self.folder / WEIGHTS_FOLDER, row[0])


def _where(equal: Mapping[str, Any], allowed: Sequence[str],
           prefix: Mapping[str, str] | None = None) -> tuple[list[str], list[Any]]:
    unknown = sorted(set(equal) - set(allowed))
    if unknown:
        raise ValueError(f"filter: unknown column {unknown[0]!r}; columns are {', '.join(allowed)}")
    prefix = prefix or {}
    where = [f"{prefix.get(name, '')}{name} = ?" for name in equal]
    return where, [sql_value(value) for value in equal.values()]


def _clause(where: list[str]) -> str:
    return f"WHERE {' AND '.join(where)}" if where else ""


def sql_value(value: Any) -> Any:
    """Python/numpy value -> SQLite value: NaN becomes NULL (SQLite has no NaN), ±inf stays, dicts
    and lists become standard JSON text."""
    if value is None or isinstance(value, (str, bytes)):
        return value
    if isinstance(value, (dict, list, tuple)):
        return jsontext.dumps(value)
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and value != value:
        return None
    return value
