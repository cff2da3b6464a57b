"""Per-bound verdicts: assumptions met, violations where they hold, tightness, tightest bound."""
from __future__ import annotations

import json
import sqlite3
from collections import Counter

import numpy as np

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
        coordinates), ``vacuous`` (infinite value), ``undefined`` (NaN measured or value) and
        ``tightness`` (measured/value over assumption-holding runs with a finite value above the
        round-off tolerance 1e-12:
        ``n``, ``median``, ``p90``, ``worst`` = max). ``tightest`` names, per setting and measure,
        the bound without violations whose median ratio is closest to 1.
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
    # Below the absolute tolerance both numbers are round-off and their ratio says nothing.
    usable = defined & np.isfinite(value) & (value > VIOLATION_ATOL)
    ratios = measured[usable] / value[usable]
    return {
        "settings": sorted(summary["settings"]),
        "measure": ", ".join(sorted(summary["measures"])),
        "runs_evaluated": summary["runs_evaluated"],
        "runs_assumptions_hold": summary["runs_assumptions_hold"],
        "assumption_failures": dict(sorted(summary["assumption_failures"].items())),
        "violations": int(n_violations),
        "worst_violations": worst,
        "vacuous": int(np.sum(defined & np.isposinf(value))),
        "undefined": int(np.sum(~defined)),
        "tightness": _tightness(ratios),
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
        if verdict["violations"] or median is None:
            continue
        for setting in verdict["settings"]:
            key = (setting, verdict["measure"])
            candidate = (abs(1.0 - median), bound)
            if key not in best or candidate < best[key]:
                best[key] = candidate
    return [{"setting": setting, "measure": measure, "bound": bound,
             "median_ratio": verdicts[bound]["tightness"]["median"]}
            for (setting, measure), (_, bound) in sorted(best.items())]
