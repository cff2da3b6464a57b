"""Read-only access to ``results.sqlite`` for the verdicts (schema: docs/internals.md section 3)."""
from __future__ import annotations

import json
import math
import sqlite3
from pathlib import Path

import numpy as np

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


# The difference of two computed weight vectors of P entries and norm about ||w|| cannot be resolved
# below the rounding of the vectors themselves: each entry is the result of P-term inner products
# (every training step, every closed-form product), whose float64 rounding error grows like
# sqrt(P) eps relative to the scale of its terms, ||w|| / sqrt(P) per entry, so the error vector has a
# norm of about sqrt(P) eps ||w||. E_i below ROUNDING_FLOOR_FACTOR times that is rounding: its order
# against the varied quantity is decided by the machine, not by the training. The factor was measured
# on the least-squares tasks against GD in extended precision: every stored distance below 7 units
# was wrong by more than half its value, every one above 8 was within 21% (docs/results-schema.md,
# "Verdict files").
ROUNDING_FLOOR_FACTOR = 8.0
_EPS = float(np.finfo(np.float64).eps)


def rounding_scale(measure: str) -> str:
    """SQL for P ||w||^2 of a left-out row ``r`` (its dataset's card ``d`` joined), the square of the
    scale sqrt(P) ||w|| of the rounding floor of ``measure`` (an SQL expression naming a stability
    column, e.g. ``'parameter_stability'`` or ``b.measure``); NULL where the store does not say
    the size or the norm of the vectors compared (then no value of the row is taken as rounding).

    - ``head_direction_stability`` of a linear head on the n_features inputs (setting ``head``):
      unit vectors (||u|| = 1) of at most n_features x max(n_classes, 1) entries;
    - ``parameter_stability`` of least squares fine-tuned from w0 (kind ``quadratic``, init
      ``pretrained``): n_features entries, and ||w|| <= ||w0|| + ||w - w0|| (the card's
      ``w0_norm`` plus the row's ``distance_from_init``).
    """
    w0_norm = "json_extract(d.card, '$.params.w0_norm')"
    return (f"(CASE {measure} "
            "WHEN 'head_direction_stability' THEN (CASE WHEN r.setting = 'head' "
            "THEN r.n_features * MAX(COALESCE(r.n_classes, 1), 1) END) "
            "WHEN 'parameter_stability' THEN (CASE WHEN r.kind = 'quadratic' "
            f"AND r.init = 'pretrained' THEN r.n_features * ({w0_norm} + r.distance_from_init) "
            f"* ({w0_norm} + r.distance_from_init) END) END)")


ROUNDING_JOIN = "LEFT JOIN datasets d ON d.dataset_id = r.dataset_id"


def at_rounding_level(value: float | None, scale: float | None) -> bool:
    """Whether an E_i ``value`` is below the rounding floor ``ROUNDING_FLOOR_FACTOR * eps *
    sqrt(scale)`` of its group in absolute value (``scale``: the largest :func:`rounding_scale` of its rows; None:
    no floor known). Such a value is read as 0: the measurement cannot tell it from 0, nor order it
    against another value at rounding level."""
    return (value is not None and scale is not None
            and abs(value) < ROUNDING_FLOOR_FACTOR * _EPS * math.sqrt(scale))


def read_rounding_as_zero(rows: list[dict], value: str) -> int:
    """Read every ``rows[i][value]`` (an E_i) at rounding level (:func:`at_rounding_level`, against
    the row's ``rounding_scale``, which is removed) as 0, marking the row ``at_rounding_level``;
    returns how many were."""
    count = 0
    for row in rows:
        row["at_rounding_level"] = at_rounding_level(row[value], row.pop("rounding_scale"))
        if row["at_rounding_level"]:
            row[value] = 0.0
            count += 1
    return count


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
