"""The numbers of a sweep that matter, each with the tolerance within which it may move.

Three kinds of entry:

* ``statistic`` — a number with a bootstrap confidence interval (a corollary's granulated tau, a rank
  correlation): its tolerance is the half-width of that interval, so a change is flagged when it
  moves the statistic by more than its own sampling uncertainty;
* ``number`` — a number the sweep computes deterministically (tightness quantiles, vacuous shares,
  T1 cells): an explicit relative tolerance ``rtol`` (default :data:`RTOL`) that absorbs the
  rounding of another machine's BLAS, nothing more;
* ``count`` and ``verdict`` — violations, runs, tasks, and every pass/fail/inconclusive verdict: they
  must be equal.
"""
from __future__ import annotations

import math
import sqlite3
from dataclasses import asdict, dataclass
from pathlib import Path

from figures.t1_stabilisers import table_rows as t1_rows
from verify.verdicts.claims import claim_rows
from verify.verdicts.db import open_results
from verify.verdicts.write import RESULTS_FILE, compute_verdicts

RTOL = 1e-4
ATOL = 1e-12
KINDS = ("statistic", "number", "count", "verdict")


@dataclass(frozen=True)
class Number:
    """One frozen number: ``key`` names it, ``tolerance`` is absolute (0 for counts and verdicts)."""

    key: str
    kind: str
    value: float | int | str | None
    tolerance: float = 0.0


def statistic(key: str, interval: dict | None) -> Number:
    """A bootstrap estimate ``{value, low, high}`` (None where undefined) as a ``statistic``."""
    if not interval or interval.get("value") is None:
        return Number(key, "statistic", None, 0.0)
    low, high = interval.get("low"), interval.get("high")
    half_width = 0.5 * (high - low) if low is not None and high is not None else 0.0
    return Number(key, "statistic", float(interval["value"]), max(half_width, ATOL))


def number(key: str, value: float | None, *, rtol: float) -> Number:
    """A deterministic number: tolerance ``rtol * |value|`` (at least ``ATOL``)."""
    if value is None or not math.isfinite(value):
        return Number(key, "number", None, 0.0)
    return Number(key, "number", float(value), max(rtol * abs(value), ATOL))


def golden_numbers(results_dir: Path, *, rtol: float = RTOL) -> list[Number]:
    """Every number of ``results_dir/results.sqlite`` that ``ftstab freeze`` records.

    Parameters
    ----------
    results_dir : Path
        The folder of a sweep (``ftstab verify --out``).
    rtol : float, default=RTOL
        Relative tolerance of the deterministic numbers, in ``[0, 1)``.

    Returns
    -------
    list of Number
        Sorted by key: each claim's statistic and verdict, summary counts, per bound (violations, runs whose assumptions hold, vacuous
        share, tightness quantiles), per corollary (the measured trend's and each bound trend's tau
        and verdict), divergence, rank correlations, paired stabiliser verdicts, and T1's cells.
    """
    if not 0 <= rtol < 1:
        raise ValueError(f"rtol must be in [0, 1), got {rtol!r}")
    database = Path(results_dir) / RESULTS_FILE
    verdicts = compute_verdicts(database)
    numbers = [*_claims(claim_rows(verdicts)), *_summary(verdicts["summary"]),
               *_bounds(verdicts["bounds"], rtol),
               *_corollaries(verdicts["corollaries"]), *_divergence(verdicts["divergence"]),
               *_rank_correlations(verdicts["rank_correlations"]),
               *_stabilisers(verdicts["stabilisers"])]
    conn = open_results(database)
    try:
        numbers += _t1(conn, rtol)
    finally:
        conn.close()
    keys = [entry.key for entry in numbers]
    duplicated = sorted({key for key in keys if keys.count(key) > 1})
    if duplicated:
        raise RuntimeError(f"golden keys are not unique: {', '.join(duplicated)}")
    return sorted(numbers, key=lambda entry: entry.key)


def as_records(numbers: list[Number]) -> list[dict]:
    return [asdict(entry) for entry in numbers]


def _claims(rows: list[dict]) -> list[Number]:
    """Each claim of the scorecard: its statistic (a number with its CI, or an exact count) and verdict."""
    numbers = []
    for row in rows:
        key, stat = f"claim/{row['id']}", row["statistic"] or {}
        value = stat.get("value")
        if isinstance(value, float) or value is None:
            numbers.append(statistic(f"{key}/{stat.get('name', 'statistic')}", stat))
        else:
            numbers.append(Number(f"{key}/{stat.get('name', 'statistic')}", "count", value))
        numbers.append(Number(f"{key}/verdict", "verdict", row["verdict"]))
    return numbers


def _summary(summary: dict) -> list[Number]:
    return [Number(f"summary/{name}", "count", int(summary[name]))
            for name in ("datasets", "tasks_done", "tasks_failed", "trained_models", "violations")]


def _bounds(bounds: dict, rtol: float) -> list[Number]:
    numbers = []
    for name, bound in bounds.items():
        held = bound["runs_assumptions_hold"]
        numbers += [Number(f"bound/{name}/violations", "count", int(bound["violations"])),
                    Number(f"bound/{name}/runs_assumptions_hold", "count", int(held)),
                    number(f"bound/{name}/vacuous_share",
                           bound["vacuous"] / held if held else None, rtol=rtol)]
        numbers += [number(f"bound/{name}/tightness/{quantile}", bound["tightness"][quantile], rtol=rtol)
                    for quantile in ("median", "p90", "worst")]
    return numbers


def _corollaries(corollaries: list[dict]) -> list[Number]:
    numbers = []
    for corollary in corollaries:
        series = {"measured": corollary["measured"], **{f"bound/{bound}": trend for bound, trend
                                                        in corollary["bounds"].items()}}
        for label, trend in series.items():
            key = f"corollary/{corollary['name']}/{label}"
            numbers += [statistic(f"{key}/tau", {"value": trend["tau"], "low": trend["low"],
                                                 "high": trend["high"]}),
                        Number(f"{key}/verdict", "verdict", trend["verdict"])]
    return numbers


def _divergence(divergence: dict) -> list[Number]:
    return [Number("divergence/verdict", "verdict", divergence["verdict"]),
            Number("divergence/mismatches", "count", int(divergence["n_mismatches"]))]


def _rank_correlations(correlations: dict) -> list[Number]:
    numbers = []
    for bound, correlation in correlations.items():
        for sense in ("leave_one_out", "seed_std"):
            result, key = correlation[sense], f"rank/{bound}/{sense}"
            numbers += [statistic(f"{key}/kendall_tau", result["kendall_tau"]),
                        statistic(f"{key}/spearman_rho", result["spearman_rho"]),
                        Number(f"{key}/verdict", "verdict", result["verdict"])]
    return numbers


def _stabilisers(rows: list[dict]) -> list[Number]:
    """Each paired stabiliser verdict: every measure's estimate (with its CI) and verdict."""
    numbers = []
    for row in rows:
        key = f"stabiliser/{row['stabiliser']}/{row['family']}/{row['selection']}"
        for name, measure in row["measures"].items():
            numbers += [statistic(f"{key}/{name}", measure),
                        Number(f"{key}/{name}/verdict", "verdict", measure["verdict"])]
    return numbers


def _t1(conn: sqlite3.Connection, rtol: float) -> list[Number]:
    numbers = []
    for row in t1_rows(conn):
        key = f"t1/{row['group']}/{row['stabiliser']}"
        numbers += [number(f"{key}/{metric}", row[metric], rtol=rtol)
                    for metric in ("accuracy", "failed_rate", "stability")]
    return numbers
