"""Read-only access to ``results.sqlite`` for the verdicts (schema: docs/internals.md section 3)."""
from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from verify.store import STABILITY_KEYS, canonical_params, partial_estimate
from verify.store import open_results as store_open_results

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

# The last checkpoint of every task, for statements about the trained models.
FINAL_CHECKPOINT_CTE = ("WITH final AS (SELECT task_key, MAX(iteration) AS iteration FROM runs "
                        "GROUP BY task_key)")

ASSUMPTIONS_HOLD = "json_array_length(b.violated) = 0"


def open_results(path: Path) -> sqlite3.Connection:
    """Open a results database read-only through ``verify.store.open_results`` (which checks it).

    Returns the connection (rows are ``sqlite3.Row``); ValueError in one line if the file is
    missing, damaged, of another schema version or lacks part of the schema.
    """
    return store_open_results(path).connection


def run_columns(conn: sqlite3.Connection) -> set[str]:
    """The columns of the ``runs`` table (a quantity read from a column the schema lacks is skipped)."""
    return {row[1] for row in conn.execute("PRAGMA table_info(runs)")}


def absolute_step_configs(conn: sqlite3.Connection) -> set[str]:
    """Names of the configs whose step is absolute (``lr_unit="absolute"``: ``lr_scale`` is the
    learning rate itself, not a multiple of 1/beta): from the sweep's recorded definitions
    (``meta.configs``), else from the registry (``verify.configs.CONFIGS``) for names it knows."""
    from verify.configs import CONFIGS

    row = conn.execute("SELECT value FROM meta WHERE key = 'configs'").fetchone()
    recorded = json.loads(row[0]) if row else {}
    names = {row[0] for row in conn.execute("SELECT DISTINCT config FROM runs")}
    return {name for name in names
            if (recorded[name].get("lr_unit") if name in recorded
                else getattr(CONFIGS.get(name), "lr_unit", None)) == "absolute"}


def estimator_filter() -> tuple[str, str]:
    """``(having, partial_groups)``: a HAVING condition that keeps the E_i groups whose left-out
    estimate is exact or stratified, and a query of the groups it drops (columns ``setting`` and the
    ``STABILITY_KEYS``), for counting them: ``verify.store.partial_estimate``, the rule the read API's
    ``Results.stability`` applies too. A row without an estimator (NULL) is not partial."""
    keys = ", ".join(f"r.{column}" for column in STABILITY_KEYS)
    return (f"NOT {partial_estimate('r')}",
            f"SELECT r.setting, {keys} FROM runs r WHERE r.left_out IS NOT NULL "
            f"AND r.left_out_estimator = 'partial' GROUP BY {keys}")


# A bounded left-out row's weight in the E_i of a bound's value: the bounded models are a stratified
# sub-sample of the left-out ones (``bound_weight``); a bounded row without one has its left-out weight.
BOUND_WEIGHT = "COALESCE(r.bound_weight, r.left_out_weight)"


def bound_mean(expression: str) -> str:
    """SQL aggregate for E_i of a bound's ``expression`` over the bounded left-out rows of a group,
    weighted by :data:`BOUND_WEIGHT`."""
    return (f"SUM({BOUND_WEIGHT} * ({expression})) / "
            f"SUM(CASE WHEN ({expression}) IS NOT NULL THEN {BOUND_WEIGHT} END)")


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
