"""Read-only access to ``results.sqlite`` for the verdicts (schema: docs/internals.md section 3)."""
from __future__ import annotations

import functools
import json
import sqlite3
from pathlib import Path

REQUIRED_TABLES = ("datasets", "tasks", "runs", "bounds")

# Coordinates that identify a left-out run's setting apart from its dataset id and config name,
# so that runs of different datasets/configs can be compared when only one coordinate differs.
# Not ``lr``: it is ``lr_scale / beta_hat`` (verify.configs), so it follows the dataset.
COORDINATES = ("kind", "n_samples", "n_features", "n_classes", "margin", "radius", "label_noise",
               "distance", "setting", "loss", "init", "lr_scale", "n_steps", "batch_size",
               "n_heads", "stabiliser", "stabiliser_params", "seed", "iteration")

# Selected with the coordinates for the varied quantities, never grouped on.
QUANTITY_COLUMNS = ("lr",)

# A run's identity in reports (where to look when a bound is violated).
RUN_IDENTITY = ("run_id", "dataset_id", "config", "stabiliser", "stabiliser_params", "seed",
                "left_out", "iteration")

# Left-out runs are averaged over i within these keys (E_i in the theory).
STABILITY_KEYS = ("dataset_id", "config", "stabiliser", "stabiliser_params", "seed", "iteration")

# The last checkpoint of every task, for statements about the trained models.
FINAL_CHECKPOINT_CTE = ("WITH final AS (SELECT task_key, MAX(iteration) AS iteration FROM runs "
                        "GROUP BY task_key)")

ASSUMPTIONS_HOLD = "json_array_length(b.violated) = 0"


def open_results(path: Path) -> sqlite3.Connection:
    """Open a results database read-only, checking that it has the documented tables.

    Parameters
    ----------
    path : Path
        The ``results.sqlite`` file.

    Returns
    -------
    sqlite3.Connection
        A read-only connection whose rows are ``sqlite3.Row``.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist (nothing is created).
    ValueError
        If it is not a results database.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no results database at {path}; run `ftstab verify` first")
    conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    conn.row_factory = sqlite3.Row
    try:
        present = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    except sqlite3.DatabaseError as exc:
        conn.close()
        raise ValueError(f"{path} is not an SQLite results database ({exc})") from None
    missing = [table for table in REQUIRED_TABLES if table not in present]
    if missing:
        conn.close()
        raise ValueError(f"{path} is not a results database: missing table(s) {', '.join(missing)}")
    return conn


def run_columns(conn: sqlite3.Connection) -> set[str]:
    """The columns of the ``runs`` table (older schemas lack some)."""
    return {row[1] for row in conn.execute("PRAGMA table_info(runs)")}


def absolute_step_configs(conn: sqlite3.Connection) -> set[str]:
    """Names of the configs whose step is absolute (``lr_unit="absolute"``: ``lr_scale`` is the
    learning rate itself, not a multiple of 1/beta): from the sweep's recorded definitions
    (``meta.configs``), else from the registry (``verify.configs.CONFIGS``) for names it knows."""
    from verify.configs import CONFIGS

    recorded = {}
    if conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'").fetchone():
        row = conn.execute("SELECT value FROM meta WHERE key = 'configs'").fetchone()
        recorded = json.loads(row[0]) if row else {}
    names = {row[0] for row in conn.execute("SELECT DISTINCT config FROM runs")}
    return {name for name in names
            if (recorded[name].get("lr_unit") if name in recorded
                else getattr(CONFIGS.get(name), "lr_unit", None)) == "absolute"}


def estimator_filter(conn: sqlite3.Connection) -> tuple[str, str]:
    """``(having, partial_groups)``: a HAVING condition that keeps the E_i groups whose left-out
    estimate is exact or stratified, and a query of the groups it drops (columns ``setting`` and the
    ``STABILITY_KEYS``), for counting them. Results without ``left_out_estimator`` drop nothing."""
    keys = ", ".join(f"r.{column}" for column in STABILITY_KEYS)
    if "left_out_estimator" not in run_columns(conn):
        return "1", "SELECT NULL AS setting WHERE 0"
    return ("SUM(r.left_out_estimator = 'partial') = 0",
            f"SELECT r.setting, {keys} FROM runs r WHERE r.left_out IS NOT NULL "
            f"AND r.left_out_estimator = 'partial' GROUP BY {keys}")


def bound_mean(conn: sqlite3.Connection, expression: str) -> str:
    """SQL aggregate for E_i of a bound's ``expression`` over the bounded left-out rows of a group:
    weighted by ``bound_weight`` (the bounded models are a stratified sub-sample of the left-out
    ones) where the results record it, else as :func:`left_out_mean`."""
    if "bound_weight" not in run_columns(conn):
        return left_out_mean(conn, expression)
    weight = "COALESCE(r.bound_weight, r.left_out_weight)"
    return (f"SUM({weight} * ({expression})) / "
            f"SUM(CASE WHEN ({expression}) IS NOT NULL THEN {weight} END)")


def left_out_mean(conn: sqlite3.Connection, expression: str) -> str:
    """SQL aggregate for E_i of ``expression`` over the left-out rows of a group.

    Where the store records ``left_out_weight`` (left-out samples are drawn support vectors first,
    so the plain mean over left-out rows is biased) the mean is weighted by it; otherwise it is the
    plain ``AVG`` of the documented schema. Rows where ``expression`` is NULL are left out of both.
    """
    if "left_out_weight" not in run_columns(conn):
        return f"AVG({expression})"
    return (f"SUM(r.left_out_weight * ({expression})) / "
            f"SUM(CASE WHEN ({expression}) IS NOT NULL THEN r.left_out_weight END)")


@functools.lru_cache(maxsize=4096)
def canonical_params(text: str | None) -> str:
    """``stabiliser_params`` as canonical JSON (sorted keys), so equal parameters compare equal."""
    return json.dumps(json.loads(text) if text else {}, sort_keys=True, separators=(",", ":"))


def fetch_dicts(conn: sqlite3.Connection, sql: str, parameters: tuple = ()) -> list[dict]:
    """Rows of a query as plain dicts, ``stabiliser_params`` canonicalised where selected."""
    rows = [dict(row) for row in conn.execute(sql, parameters)]
    for row in rows:
        if "stabiliser_params" in row:
            row["stabiliser_params"] = canonical_params(row["stabiliser_params"])
    return rows


def bound_terms(bound, constants: str | None) -> dict[str, float]:
    """The terms of ``bound`` (``theory.bounds`` object) from a bound row's stored constants; empty
    where they cannot be recomputed (constants missing, as in results written without them)."""
    try:
        return bound.terms(**json.loads(constants or "{}"))
    except (KeyError, TypeError, ValueError):
        return {}
