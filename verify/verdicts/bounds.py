"""Per-bound verdicts: assumptions met, violations where they hold, tightness, tightest bound."""
from __future__ import annotations

import json
import sqlite3
from collections import Counter

import numpy as np

from theory.bounds import BOUNDS
from verify.verdicts.db import ASSUMPTIONS_HOLD, RUN_IDENTITY, fetch_dicts

# A run violates a bound when measured > value * (1 + RTOL) + ATOL: float64 round-off in the
# measured distance and in the bound's own arithmetic must not count as a counter-example.
VIOLATION_RTOL = 1e-9
VIOLATION_ATOL = 1e-12
N_WORST = 10

_VIOLATED = f"b.measured > b.value * (1 + {VIOLATION_RTOL!r}) + {VIOLATION_ATOL!r}"
_WORST_FIRST = ("CASE WHEN b.value > 0 THEN b.measured / b.value ELSE 9e999 END DESC, "
                "b.measured - b.value DESC, b.run_id")


def bound_verdicts(conn: sqlite3.Connection) -> dict:
    """Judge every bound in the ``bounds`` table.

    Parameters
    ----------
    conn : sqlite3.Connection
        A results database (see ``verify.verdicts.db.open_results``).

    Returns
    -------
    dict
        ``{"bounds": {name: verdict}, "tightest": [...]}``. A verdict holds ``settings``,
        ``measure``, ``runs_evaluated``, ``runs_assumptions_hold``, ``assumption_failures``
        (violated assumption name -> runs), ``violations`` (runs whose assumptions hold and whose
        measurement exceeds the bound), ``worst_violations`` (up to 10, with their run
        coordinates), ``trivial`` (the trivial value of its measure, None where it has none),
        ``a_posteriori`` (computed from the trained weights, it holds for any weights: a
        consistency check, never evidence), ``vacuous`` (assumption-holding runs whose value is
        infinite or at or above ``trivial``), ``non_vacuous``, ``vacuous_share`` and
        ``non_vacuous_share`` (of the defined values), ``undefined`` (NaN measured or value) and
        ``tightness`` (measured/value over the non-vacuous values above the round-off tolerance
        1e-12: ``n``, ``median``, ``p90``, ``worst`` = max). ``tightest`` names, per setting and
        measure, the bound without violations, not a posteriori, whose median ratio is closest to
        1.
    """
    summaries: dict[str, dict] = {}
    counts = conn.execute(
        "SELECT b.bound, b.measure, r.setting, b.violated, COUNT(*) FROM bounds b "
        "JOIN runs r USING (run_id) GROUP BY b.bound, b.measure, r.setting, b.violated "
        "ORDER BY b.bound")
    for bound, measure, setting, violated, n_rows in counts:
        summary = summaries.setdefault(bound, {
            "settings": set(), "measures": set(), "runs_evaluated": 0, "runs_assumptions_hold": 0,
            "assumption_failures": Counter()})
        summary["settings"].add(setting)
        summary["measures"].add(measure)
        summary["runs_evaluated"] += n_rows
        names = json.loads(violated)
        if names:
            summary["assumption_failures"].update({name: n_rows for name in names})
        else:
            summary["runs_assumptions_hold"] += n_rows
    verdicts = {bound: _judge(conn, bound, summary) for bound, summary in summaries.items()}
    return {"bounds": verdicts, "tightest": _tightest(verdicts)}


def _judge(conn: sqlite3.Connection, bound: str, summary: dict) -> dict:
    held = f"b.bound = ? AND {ASSUMPTIONS_HOLD}"
    n_violations = conn.execute(
        f"SELECT COUNT(*) FROM bounds b WHERE {held} AND {_VIOLATED}", (bound,)).fetchone()[0]
    identity = ", ".join(f"r.{column}" if column != "run_id" else "b.run_id"
                         for column in RUN_IDENTITY)
    worst = fetch_dicts(
        conn, f"SELECT {identity}, b.measured, b.value FROM bounds b JOIN runs r USING (run_id) "
              f"WHERE {held} AND {_VIOLATED} ORDER BY {_WORST_FIRST} LIMIT {N_WORST}", (bound,))
    pairs = np.array(conn.execute(
        f"SELECT b.measured, b.value FROM bounds b WHERE {held}", (bound,)).fetchall(),
        dtype=float).reshape(-1, 2)
    # SQLite stores NaN as NULL, which arrives here as NaN again.
    measured, value = pairs[:, 0], pairs[:, 1]
    defined = np.isfinite(measured) & ~np.isnan(value)
    definition = BOUNDS.get(bound)
    trivial = None if definition is None else definition.trivial
    vacuous = defined & np.isposinf(value)
    if trivial is not None:
        vacuous |= defined & (value >= trivial)
    non_vacuous = defined & ~vacuous
    # Below the absolute tolerance both numbers are round-off and their ratio says nothing.
    usable = non_vacuous & (value > VIOLATION_ATOL)
    ratios = measured[usable] / value[usable]
    n_defined = int(defined.sum())
    surrogate = np.array(conn.execute(
        "SELECT b.measured, b.value FROM bounds b WHERE b.bound = ? "
        "AND b.violated = '[\"quadratic_objective\"]'", (bound,)).fetchall(), dtype=float).reshape(-1, 2)
    finite = np.isfinite(surrogate[:, 0]) & np.isfinite(surrogate[:, 1]) & (surrogate[:, 1] > VIOLATION_ATOL)
    surrogate_ratio = surrogate[finite, 0] / surrogate[finite, 1]
    return {
        "settings": sorted(summary["settings"]),
        "measure": ", ".join(sorted(summary["measures"])),
        "runs_evaluated": summary["runs_evaluated"],
        "runs_assumptions_hold": summary["runs_assumptions_hold"],
        "assumption_failures": dict(sorted(summary["assumption_failures"].items())),
        "violations": int(n_violations),
        "worst_violations": worst,
        "trivial": trivial,
        "a_posteriori": bool(definition is not None and definition.a_posteriori),
        "vacuous": int(vacuous.sum()),
        "non_vacuous": int(non_vacuous.sum()),
        "vacuous_share": float(vacuous.sum() / n_defined) if n_defined else None,
        "non_vacuous_share": float(non_vacuous.sum() / n_defined) if n_defined else None,
        "undefined": int(np.sum(~defined)),
        "tightness": _tightness(ratios),
        # Where only the quadratic objective fails (an MLP's Taylor surrogate): a prediction, not a
        # theorem, reported apart.
        "surrogate": {"n": int(len(surrogate)), "finite": int(finite.sum()),
                      "exceeded": int(np.sum(surrogate_ratio > 1 + VIOLATION_RTOL)),
                      "median_ratio": float(np.median(surrogate_ratio)) if finite.any() else None},
    }


def _tightness(ratios: np.ndarray) -> dict:
    if ratios.size == 0:
        return {"n": 0, "median": None, "p90": None, "worst": None}
    return {"n": int(ratios.size), "median": float(np.median(ratios)),
            "p90": float(np.quantile(ratios, 0.9)), "worst": float(np.max(ratios))}


def _tightest(verdicts: dict[str, dict]) -> list[dict]:
    best: dict[tuple[str, str], tuple[float, str]] = {}
    for bound, verdict in verdicts.items():
        median = verdict["tightness"]["median"]
        if verdict["violations"] or median is None or verdict["a_posteriori"]:
            continue
        for setting in verdict["settings"]:
            key = (setting, verdict["measure"])
            candidate = (abs(1.0 - median), bound)
            if key not in best or candidate < best[key]:
                best[key] = candidate
    return [{"setting": setting, "measure": measure, "bound": bound,
             "median_ratio": verdicts[bound]["tightness"]["median"]}
            for (setting, measure), (_, bound) in sorted(best.items())]
