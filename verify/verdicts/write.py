"""Verdicts: does the theory hold (no bound violated where its assumptions hold, how tight) and does
it predict (corollary trends, ranking of unstable datasets)?

``write_verdicts(DIR)`` reads ``DIR/results.sqlite`` (schema: docs/internals.md section 3) and writes
``DIR/verdicts.json`` (machine-readable, stable keys; ``null`` where a number is undefined or
infinite) and ``DIR/verdicts.md`` (the same content as a readable report), and the claims scorecard
``DIR/claims.json`` / ``DIR/claims.md`` (``verify.verdicts.claims``), each atomically.
``verdicts.json`` records the sha256 of the results it judged, so ``load_verdicts(DIR)`` reads it back
only while it still describes ``DIR/results.sqlite`` and judges afresh otherwise.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import sqlite3
from collections import Counter
from pathlib import Path
from typing import Any

from verify.store import RESULTS_FILE
from verify.verdicts.bounds import VIOLATION_ATOL, VIOLATION_RTOL, bound_verdicts
from verify.verdicts.corollaries import corollary_verdicts
from verify.verdicts.datasets import rank_correlation_verdicts, seed_instability
from verify.verdicts.db import ROUNDING_FLOOR_FACTOR, open_results
from verify.verdicts.claims import claim_rows, render_claims_markdown, results_facts
from verify.verdicts.divergence import divergence_verdict
from verify.verdicts.multihead import mhloss_convergence
from verify.verdicts.stabilisers import stabiliser_verdicts
from verify.verdicts.report import render_markdown
from verify.verdicts.stats import CONFIDENCE, N_RANK_RESAMPLES, N_RESAMPLES

JSON_FILE = "verdicts.json"
MARKDOWN_FILE = "verdicts.md"
CLAIMS_JSON = "claims.json"
CLAIMS_MARKDOWN = "claims.md"
VERDICTS = ("pass", "fail", "inconclusive", "no data")


def compute_verdicts(database: Path) -> dict:
    """All verdicts of one results database, as a JSON-ready dict.

    Parameters
    ----------
    database : Path
        A ``results.sqlite`` file; it is opened read-only and never changed.

    Returns
    -------
    dict
        Keys ``summary``, ``failed_tasks``, ``bounds``, ``tightest``, ``corollaries``,
        ``divergence``, ``rank_correlations``, ``seed_instability``, ``stabilisers`` (paired
        verdicts, ``verify.verdicts.paired``) and ``method`` (the thresholds and bootstrap settings
        used).

    Raises
    ------
    FileNotFoundError
        If ``database`` does not exist.
    ValueError
        If it is not a results database.
    """
    conn = open_results(database)
    try:
        bounds = bound_verdicts(conn)
        corollaries = corollary_verdicts(conn)
        seeds = seed_instability(conn)
        verdicts = {
            "summary": _summary(conn, bounds, corollaries),
            "failed_tasks": _failed_tasks(conn),
            **bounds,
            "corollaries": corollaries,
            "divergence": divergence_verdict(conn),
            "rank_correlations": rank_correlation_verdicts(conn, seeds),
            "seed_instability": seeds,
            "stabilisers": stabiliser_verdicts(conn),
            "mhloss_convergence": mhloss_convergence(conn),
            "method": {
                "violation": f"measured > value * (1 + {VIOLATION_RTOL:g}) + {VIOLATION_ATOL:g} "
                             "on runs whose assumptions hold",
                "tightness": "measured / value over runs whose assumptions hold and whose value "
                             f"is non-vacuous (finite, below the trivial value of the measure) "
                             f"and above {VIOLATION_ATOL:g}",
                "vacuous": "a value at or above the trivial value of its measure (2 for the head "
                           "direction: two unit vectors are at most 2 apart) or infinite; "
                           "parameter and loss distances have no trivial value",
                "a_posteriori": "a bound computed from the trained weights holds for any weights "
                                "(theorem_h: any two unit vectors); it checks solvers and "
                                "measurements and is never counted as evidence",
                "scope": "each corollary is judged on the runs inside its theorem's assumptions; "
                         "runs outside are reported per first broken assumption, never pooled",
                "granulated_tau": "Kendall tau-b per group of rows agreeing on every other "
                                  "coordinate (groups with >= 2 distinct values), groups weighted "
                                  "equally",
                "mean_over_left_out": "weighted by left_out_weight (bounds: bound_weight) where "
                                      "the results record it, else the plain mean; groups whose "
                                      "left-out estimate is partial are left out and counted, and "
                                      "so are groups where a left-out model diverged or lacks "
                                      "the measure (every verdict: corollaries, stabilisers, "
                                      "rank correlations)",
                "rounding_level": f"an E_i (group mean) below {ROUNDING_FLOOR_FACTOR:g} sqrt(P) "
                                  "eps ||w|| (P entries, ||w|| at most the norm of the vectors "
                                  "compared: 1 for head directions, ||w0|| + distance_from_init "
                                  "for least squares; no floor where the results do not say) "
                                  "cannot be told from 0: it is read as 0, tied with the other "
                                  "values at rounding level, in the trends and the rank "
                                  "correlations, and counted",
                "corollary_rows": "diverged runs are left out of the trends",
                "stabilisers": "each stabiliser setting against plain training on the same "
                               "datasets, configs and seeds (final checkpoint): ratio of pooled "
                               "seed std of test accuracy sqrt(sum s2 / sum s2_plain) (s2 with "
                               "ddof=1), mean difference of failed-run rates, ratio of summed "
                               "leave-one-out E_i (seeds whose estimate is partial or whose "
                               "left-out models partly diverged left out), and the change of "
                               "each target quantity the stabiliser declares; percentile CI of a "
                               "paired bootstrap over datasets (seeded from the verdict's "
                               "coordinates), per task family; the strength is selected per pair "
                               "on the mean validation accuracy, never on test accuracy",
                "confidence": CONFIDENCE,
                "n_resamples": {"granulated_tau_over_groups": N_RESAMPLES,
                                "rank_correlation_over_datasets": N_RANK_RESAMPLES,
                                "seed_std_over_seeds": N_RESAMPLES,
                                "stabilisers_over_datasets": N_RESAMPLES},
            },
        }
    finally:
        conn.close()
    return _jsonable(verdicts)


def write_verdicts(results_dir: Path) -> dict:
    """Judge ``results_dir/results.sqlite`` and write ``verdicts.json`` and ``verdicts.md`` there.

    Each file is written to a temporary file in the same folder and moved into place, so a reader
    sees the old or the new file, never half of one; on an error nothing is written.

    Parameters
    ----------
    results_dir : Path
        The folder of a sweep (``ftstab verify --out``).

    Returns
    -------
    dict
        The verdicts, as written to ``verdicts.json``.
    """
    results_dir = Path(results_dir)
    digest = results_sha256(results_dir / RESULTS_FILE)
    verdicts = {**compute_verdicts(results_dir / RESULTS_FILE),
                "source": {"results_sha256": digest}}
    as_json = json.dumps(verdicts, indent=2, sort_keys=True, allow_nan=False) + "\n"
    as_markdown = render_markdown(verdicts)
    claims = claim_rows(verdicts)
    claims_json = json.dumps({"claims": claims, "results": results_facts(verdicts)}, indent=2,
                             sort_keys=True, allow_nan=False) + "\n"
    write_atomically(results_dir / JSON_FILE, as_json)
    write_atomically(results_dir / MARKDOWN_FILE, as_markdown)
    write_atomically(results_dir / CLAIMS_JSON, claims_json)
    write_atomically(results_dir / CLAIMS_MARKDOWN, render_claims_markdown(claims))
    return verdicts


def load_verdicts(results_dir: Path) -> tuple[dict, bool]:
    """The verdicts of ``results_dir``: ``verdicts.json`` when it judged the present results.

    Parameters
    ----------
    results_dir : Path
        The folder of a sweep (``ftstab verify --out``).

    Returns
    -------
    verdicts : dict
        As ``compute_verdicts`` returns them (plus ``source`` when read from the file).
    from_file : bool
        True when ``verdicts.json`` was read; False when it is absent, unreadable or was written for
        other results (its ``source.results_sha256`` differs), and the verdicts were computed.
    """
    results_dir = Path(results_dir)
    database = results_dir / RESULTS_FILE
    try:
        written = json.loads((results_dir / JSON_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        written = None
    if (isinstance(written, dict) and isinstance(written.get("source"), dict)
            and written["source"].get("results_sha256") == results_sha256(database)):
        return written, True
    return compute_verdicts(database), False


def results_sha256(database: Path) -> str:
    """The sha256 of a results file's bytes (and of its write-ahead log, when one is present)."""
    digest = hashlib.sha256()
    for path in (Path(database), Path(f"{database}-wal")):
        if path.is_file():
            with open(path, "rb") as handle:
                digest.update(hashlib.file_digest(handle, "sha256").digest())
    return digest.hexdigest()


def _summary(conn: sqlite3.Connection, bounds: dict, corollaries: list[dict]) -> dict:
    def count(sql: str) -> int:
        return conn.execute(sql).fetchone()[0]

    tasks = dict(conn.execute("SELECT status, COUNT(*) FROM tasks GROUP BY status").fetchall())
    measured = Counter(c["measured"]["verdict"] for c in corollaries)
    of_bounds = Counter(t["verdict"] for c in corollaries for t in c["bounds"].values()
                        if t["claimed"] and t["role"] == "evidence")
    verdicts = bounds["bounds"]
    return {
        "datasets": count("SELECT COUNT(DISTINCT dataset_id) FROM runs"),
        "tasks_done": tasks.get("done", 0),
        "tasks_failed": tasks.get("failed", 0),
        "trained_models": count("SELECT COUNT(*) FROM (SELECT DISTINCT task_key, seed, left_out "
                                "FROM runs)"),
        "run_rows": count("SELECT COUNT(*) FROM runs"),
        "bound_rows": count("SELECT COUNT(*) FROM bounds"),
        "violations": sum(v["violations"] for v in verdicts.values()),
        # A bound is evidence where it holds with values that say something: not a posteriori
        # (those hold for any weights) and not vacuous everywhere.
        "evidence_bounds": sorted(name for name, v in verdicts.items()
                                  if not v["a_posteriori"] and v["violations"] == 0
                                  and v["non_vacuous"] > 0),
        "vacuous_bounds": sorted(name for name, v in verdicts.items()
                                 if not v["a_posteriori"] and v["runs_assumptions_hold"] > 0
                                 and v["non_vacuous"] == 0),
        "consistency_checks": sorted(name for name, v in verdicts.items() if v["a_posteriori"]),
        "left_out_estimates": _left_out_estimates(conn),
        "corollaries_measured": {verdict: measured[verdict] for verdict in VERDICTS},
        "corollaries_bounds": {verdict: of_bounds[verdict] for verdict in VERDICTS},
    }


def _left_out_estimates(conn: sqlite3.Connection) -> dict:
    """How many E_i groups (task, seed, checkpoint) are exact, stratified or partial."""
    return dict(conn.execute(
        "SELECT estimator, COUNT(*) FROM (SELECT MAX(left_out_estimator) AS estimator FROM runs "
        "WHERE left_out IS NOT NULL GROUP BY task_key, seed, iteration) GROUP BY estimator").fetchall())


def _failed_tasks(conn: sqlite3.Connection) -> list[dict]:
    rows = conn.execute("SELECT task_key, dataset_id, config, stabiliser, error FROM tasks "
                        "WHERE status = 'failed' ORDER BY task_key").fetchall()
    return [{"task_key": key, "dataset_id": dataset, "config": config, "stabiliser": stabiliser,
             "error": _last_line(error)} for key, dataset, config, stabiliser, error in rows]


def _last_line(text: str | None) -> str:
    lines = [line for line in (text or "").splitlines() if line.strip()]
    return lines[-1].strip() if lines else ""


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(key): _jsonable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(item) for item in value]
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def write_atomically(path: Path, text: str) -> None:
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(temporary, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
