"""Read-only access to ``results.sqlite`` for the verdicts (schema: docs/internals.md section 3)."""
from __future__ import annotations

import sqlite3
from pathlib import Path

from verify.store import canonical_params
from verify.store import left_out_mean as store_left_out_mean
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

# Left-out runs are averaged over i within these keys (E_i in the theory).
STABILITY_KEYS = ("dataset_id", "config", "stabiliser", "stabiliser_params", "seed", "iteration")

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


def left_out_mean(conn: sqlite3.Connection, expression: str) -> str:
    """SQL aggregate for E_i of ``expression`` over the left-out rows of a group
    (``verify.store.left_out_mean``: weighted by ``left_out_weight``)."""
    return store_left_out_mean(expression)


def fetch_dicts(conn: sqlite3.Connection, sql: str, parameters: tuple = ()) -> list[dict]:
    """Rows of a query as plain dicts, ``stabiliser_params`` canonicalised where selected."""
    rows = [dict(row) for row in conn.execute(sql, parameters)]
    for row in rows:
        if "stabiliser_params" in row:
            row["stabiliser_params"] = canonical_params(row["stabiliser_params"])
    return rows
