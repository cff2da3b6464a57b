"""Verdicts across datasets: seed instability per task, and whether each bound ranks datasets by
their instability (leave-one-out and seed-std senses).

The unit is a dataset trained with one config and one stabiliser (with its parameters), at the final
checkpoint of its task.
"""
from __future__ import annotations

import sqlite3
import warnings

import numpy as np
from scipy.stats import DegenerateDataWarning

from theory import stability
from theory.bounds import BOUNDS
from verify.seeding import run_seed
from verify.store import fully_measured, left_out_mean
from verify.verdicts.db import (
    ASSUMPTIONS_HOLD,
    FINAL_CHECKPOINT_CTE,
    ROUNDING_JOIN,
    BOUND_WEIGHT,
    bound_mean,
    bound_terms,
    estimator_filter,
    fetch_dicts,
    read_rounding_as_zero,
    rounding_scale,
)
from verify.verdicts.stats import (
    CONFIDENCE,
    N_RESAMPLES,
    rank_correlations,
    trend_verdict,
)

UNIT = ("dataset_id", "config", "stabiliser", "stabiliser_params")
# What "unstable" means for one unit: the failure mode the few-sample fine-tuning literature
# reports, a seed std of test accuracy of several points and runs that fail (no better than the
# majority class) in a tenth or more of the seeds.
UNSTABLE_STD = 0.05
UNSTABLE_FAILED_RATE = 0.10


def _unit(row: dict) -> tuple:
    return tuple(row[column] for column in UNIT)


def seed_instability(conn: sqlite3.Connection) -> list[dict]:
    """Std over seeds of the final test accuracy, and the failed-run rate, per unit.

    A run has failed when its test accuracy is at or below the majority-class accuracy, or is
    undefined (it diverged). The std (ddof=1, bootstrap CI over seeds:
    ``theory.stability.seed_instability``) needs two seeds with a defined accuracy and is None
    otherwise; the failed-run rate has a Wilson interval (``theory.stability.failed_run_rate``).

    Returns
    -------
    list of dict
        Per unit: ``dataset_id``, ``config``, ``stabiliser``, ``stabiliser_params``, ``setting``,
        ``n_seeds``, ``accuracy_mean``, ``accuracy_std`` and ``failed_rate`` (each ``{value, low,
        high}`` or None), and ``unstable``: the std is at least :data:`UNSTABLE_STD` and the
        failed-run rate at least :data:`UNSTABLE_FAILED_RATE` (point values; False without a std).
    """
    rows = fetch_dicts(
        conn, f"{FINAL_CHECKPOINT_CTE} SELECT r.dataset_id, r.config, r.stabiliser, "
              "r.stabiliser_params, r.setting, r.seed, r.test_accuracy, r.majority_accuracy "
              "FROM runs r JOIN final f ON r.task_key = f.task_key AND r.iteration = f.iteration "
              "WHERE r.left_out IS NULL ORDER BY r.dataset_id, r.config, r.stabiliser, "
              "r.stabiliser_params, r.seed")
    units: dict[tuple, list[dict]] = {}
    for row in rows:
        units.setdefault(_unit(row), []).append(row)
    verdicts = []
    for unit, seeds in units.items():
        accuracy = np.array([np.nan if s["test_accuracy"] is None else s["test_accuracy"]
                             for s in seeds])
        majority = np.array([np.nan if s["majority_accuracy"] is None else s["majority_accuracy"]
                             for s in seeds])
        defined = accuracy[np.isfinite(accuracy)]
        std = (_seed_std(defined, random_state=run_seed("verdicts", "seeds", *unit))
               if defined.size >= 2 else None)
        # A diverged run has no accuracy; it counts as failed.
        failed = stability.failed_run_rate(np.where(np.isfinite(accuracy), accuracy, -np.inf),
                                           majority, confidence=CONFIDENCE)
        verdicts.append({
            **dict(zip(UNIT, unit)), "setting": seeds[0]["setting"], "n_seeds": len(seeds),
            "accuracy_mean": float(defined.mean()) if defined.size else None,
            "accuracy_std": None if std is None else _interval(std),
            "failed_rate": _interval(failed),
            "unstable": is_unstable(None if std is None else std.value, failed.value),
        })
    return verdicts


def is_unstable(accuracy_std: float | None, failed_rate: float) -> bool:
    """Whether a unit with this seed std of test accuracy (None: fewer than two defined seeds) and
    failed-run rate is unstable: std at least :data:`UNSTABLE_STD` and rate at least
    :data:`UNSTABLE_FAILED_RATE`."""
    return accuracy_std is not None and accuracy_std >= UNSTABLE_STD and failed_rate >= UNSTABLE_FAILED_RATE


def _seed_std(accuracy: np.ndarray, *, random_state: int) -> stability.Estimate:
    # With a handful of seeds the BCa jackknife is degenerate and theory.stability falls back to the
    # percentile interval; the warnings on the way say nothing a reader of the verdicts can act on.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DegenerateDataWarning)
        warnings.simplefilter("ignore", RuntimeWarning)
        return stability.seed_instability(accuracy, confidence=CONFIDENCE,
                                          n_resamples=N_RESAMPLES, random_state=random_state)


def rank_correlation_verdicts(conn: sqlite3.Connection, seed_verdicts: list[dict]) -> dict:
    """Does each bound rank the units by their instability?

    The bound's value is its mean (E_i, see ``verify.verdicts.db.bound_mean``) over the bounded
    left-out runs (all seeds) whose assumptions hold at the final checkpoint; units whose value is
    vacuous (infinite, or at or above the trivial value of the measure), units whose left-out
    estimate is partial and units where a bounded left-out model diverged or lacks the measure
    (``verify.store.fully_measured``, the rule of the corollaries: the means over the others, of
    the measure and of the bound, would be E_i of the stable models only) are left out of both
    correlations and counted. It is compared with (a) the
    measured leave-one-out instability (E_i of the bound's measure over the unit's bounded left-out
    runs; an E_i at rounding level, ``verify.verdicts.db.at_rounding_level``, is read as 0 and
    counted) and (b) the
    seed std of test accuracy (``seed_verdicts``). Kendall tau-b and Spearman rho come with a
    bootstrap CI over datasets; the verdict is "pass" when the CI of tau lies above 0 (the bound
    predicts), "fail" below 0.

    Returns
    -------
    dict
        bound name -> ``{"measure", "role", "vacuous_units", "partial_units", "diverged_units",
        "rounding_units", "carried_by", "leave_one_out": {...}, "seed_std": {...}}``;
        ``diverged_units`` counts the (non-partial) units left out because a left-out model
        diverged or lacks the measure; ``role`` is "consistency
        check" for an a posteriori bound (never evidence) else "evidence"; ``rounding_units``
        counts the units whose E_i was read as 0; ``carried_by`` names the one term that varies across the units
        when every other term is the same on all of them (the ranking is that term's alone), else
        None. Each correlation has ``n_units``, ``n_datasets``, ``kendall_tau``, ``spearman_rho``
        (``{value, low, high}`` or None) and ``verdict``.
    """
    held_value = f"CASE WHEN {ASSUMPTIONS_HOLD} THEN b.value END"
    complete, _ = estimator_filter()
    rows = fetch_dicts(
        conn, f"{FINAL_CHECKPOINT_CTE} SELECT b.bound, b.measure, r.dataset_id, r.config, "
              f"r.stabiliser, r.stabiliser_params, {left_out_mean('b.measured')} AS measured, "
              f"{bound_mean(held_value)} AS value, {complete} AS complete, "
              f"{fully_measured('b.measured')} AS fully_measured, "
              f"MAX({rounding_scale('b.measure')}) AS rounding_scale FROM bounds b "
              f"JOIN runs r USING (run_id) {ROUNDING_JOIN} JOIN final f ON r.task_key = f.task_key "
              "AND r.iteration = f.iteration GROUP BY b.bound, b.measure, r.dataset_id, r.config, "
              "r.stabiliser, r.stabiliser_params ORDER BY b.bound, r.dataset_id, r.config, "
              "r.stabiliser, r.stabiliser_params")
    seed_std = {_unit(v): v["accuracy_std"]["value"] for v in seed_verdicts if v["accuracy_std"]}
    by_bound: dict[str, list[dict]] = {}
    vacuous: dict[str, int] = {}
    partial: dict[str, int] = {}
    diverged: dict[str, int] = {}
    for row in rows:
        definition = BOUNDS.get(row["bound"])
        if row["value"] is None:
            continue
        if not row["complete"]:
            partial[row["bound"]] = partial.get(row["bound"], 0) + 1
        elif not row.pop("fully_measured"):
            diverged[row["bound"]] = diverged.get(row["bound"], 0) + 1
        elif definition is not None and definition.is_vacuous(row["value"]):
            vacuous[row["bound"]] = vacuous.get(row["bound"], 0) + 1
        else:
            by_bound.setdefault(row["bound"], []).append(row)
    rounding = {bound: read_rounding_as_zero(units, "measured") for bound, units in by_bound.items()}
    verdicts = {}
    for bound in sorted(set(by_bound) | set(vacuous) | set(partial) | set(diverged)):
        units = by_bound.get(bound, [])
        definition = BOUNDS.get(bound)
        loo = [(u["value"], u["measured"], u["dataset_id"]) for u in units
               if u["measured"] is not None]
        seeds = [(u["value"], seed_std[_unit(u)], u["dataset_id"]) for u in units
                 if _unit(u) in seed_std]
        verdicts[bound] = {
            "measure": definition.measure if definition is not None else units[0]["measure"],
            "role": ("consistency check" if definition is not None and definition.a_posteriori
                     else "evidence"),
            "vacuous_units": vacuous.get(bound, 0), "partial_units": partial.get(bound, 0),
            "diverged_units": diverged.get(bound, 0),
            "rounding_units": rounding.get(bound, 0),
            "carried_by": _ranking_carried_by(conn, bound, units),
            "leave_one_out": _correlate(loo, seed=run_seed("verdicts", "rank", bound, "loo")),
            "seed_std": _correlate(seeds, seed=run_seed("verdicts", "rank", bound, "seed_std")),
        }
    return verdicts


def _ranking_carried_by(conn: sqlite3.Connection, bound: str, units: list[dict]) -> str | None:
    """The one term of ``bound`` whose E_i differs across ``units`` while every other term is the
    same on all of them (to 1e-12, relative); None otherwise."""
    definition = BOUNDS.get(bound)
    if definition is None or len(units) < 2:
        return None
    wanted = {_unit(u) for u in units}
    sums: dict[tuple, dict[str, float]] = {}
    for row in fetch_dicts(
            conn, f"{FINAL_CHECKPOINT_CTE} SELECT r.dataset_id, r.config, r.stabiliser, "
                  f"r.stabiliser_params, {BOUND_WEIGHT} AS weight, b.constants FROM bounds b "
                  "JOIN runs r USING (run_id) JOIN final f ON r.task_key = f.task_key "
                  f"AND r.iteration = f.iteration WHERE b.bound = ? AND {ASSUMPTIONS_HOLD} "
                  "AND b.value IS NOT NULL", (bound,)):
        if _unit(row) not in wanted:
            continue
        total = sums.setdefault(_unit(row), {"": 0.0})
        w = 1.0 if row["weight"] is None else float(row["weight"])
        total[""] += w
        for name, term in bound_terms(definition, row["constants"]).items():
            total[name] = total.get(name, 0.0) + w * term
    means = [{name: value / total[""] for name, value in total.items() if name} for total in sums.values()]
    if not means:
        return None
    varying = [name for name in sorted(means[0])
               if np.ptp([m.get(name, np.nan) for m in means]) > 1e-12 * max(1.0, max(abs(m.get(name, 0.0)) for m in means))]
    return varying[0] if len(varying) == 1 and len(means[0]) > 1 else None


def _correlate(triples: list[tuple], *, seed: int) -> dict:
    n_datasets = len({dataset for _, _, dataset in triples})
    result = None
    if triples:
        x, y, clusters = zip(*triples)
        result = rank_correlations(np.asarray(x), np.asarray(y), clusters, random_state=seed)
    if result is None:
        return {"n_units": len(triples), "n_datasets": n_datasets, "kendall_tau": None,
                "spearman_rho": None, "verdict": "no data"}
    return {"n_units": len(triples), "n_datasets": n_datasets,
            "kendall_tau": _interval(result["kendall_tau"]),
            "spearman_rho": _interval(result["spearman_rho"]),
            "verdict": trend_verdict(result["kendall_tau"], 1)}


def _interval(interval: stability.Estimate) -> dict:
    return {"value": interval.value, "low": interval.low, "high": interval.high}
