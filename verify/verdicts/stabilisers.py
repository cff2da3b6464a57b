"""Stabilisers against plain training: the results' final checkpoints as paired units
(:class:`verify.verdicts.paired.Unit`), judged by :func:`verify.verdicts.paired.paired_verdicts`.

What each stabiliser targets and its default setting come from its declaration in the registry
(``verify.stabilisers.STABILISERS``, plug-ins included); how each target quantity is measured from
``verify.verdicts.targets``.
"""
from __future__ import annotations

import json
import math
import sqlite3

import numpy as np

from verify.store import fully_measured, left_out_mean
from verify.verdicts.db import (
    FINAL_CHECKPOINT_CTE,
    canonical_params,
    estimator_filter,
    fetch_dicts,
    run_columns,
)
from verify.verdicts.paired import Unit, paired_verdicts
from verify.verdicts.targets import QUANTITIES, TARGETS

UNIT = ("dataset_id", "config", "stabiliser", "stabiliser_params")
# The leave-one-out measure of each setting: the head's direction (Theorem H), all weights (F).
LEAVE_ONE_OUT = ("CASE WHEN r.setting = 'head' THEN r.head_direction_stability "
                 "ELSE r.parameter_stability END")
VALIDATION_COLUMN = "validation_accuracy"


def stabiliser_declarations() -> tuple[dict[str, tuple[str, ...]], dict[str, str]]:
    """``(targets, defaults)`` of every registered stabiliser: its declared target quantities and
    the canonical JSON of its default parameters."""
    from verify.stabilisers import STABILISERS  # lazy: the verdicts import torch only here

    targets = {name: tuple(cls.targets) for name, cls in STABILISERS.items()}
    defaults = {name: canonical_params(json.dumps(cls().params())) for name, cls in STABILISERS.items()}
    return targets, defaults


# The family suffix of runs whose head started at the dataset's teacher head (init="teacher_head"):
# there the labelled task's optimum lies at the teacher backbone, a different premise for SURT.
TEACHER_HEAD = "teacher head"


def task_family(kind: str, card: dict | None, init: str | None = None) -> str:
    """The task family of a run: its dataset's kind, and its teacher where the generator takes one
    (the deep tasks' target-adapted teacher, or the random-direction null control), and
    :data:`TEACHER_HEAD` where the config started the head at the teacher's (``init``)."""
    family = (f"{kind}, {card['teacher']} teacher" if card and "teacher" in (card.get("params") or {})
              else kind)
    return f"{family}, {TEACHER_HEAD}" if init == "teacher_head" else family


def config_inits(conn: sqlite3.Connection) -> dict[str, str]:
    """Each stored config's ``init`` (from ``meta.configs``)."""
    row = conn.execute("SELECT value FROM meta WHERE key = 'configs'").fetchone()
    configs = json.loads(row[0]) if row and row[0] else {}
    return {name: config.get("init", "") for name, config in configs.items()}


def paired_units(conn: sqlite3.Connection) -> list[Unit]:
    """Every (dataset, config, stabiliser, parameters) of the results at its final checkpoint."""
    columns = run_columns(conn)
    sources = {name: source for name, (_, source) in TARGETS.items()
               if source.expression is not None and set(source.requires) <= columns}
    selected = "".join(f", {source.expression} AS \"target:{name}\"" for name, source in sources.items())
    validation = (f", r.{VALIDATION_COLUMN} AS validation" if VALIDATION_COLUMN in columns
                  else ", NULL AS validation")
    rows = fetch_dicts(
        conn, f"{FINAL_CHECKPOINT_CTE} SELECT r.dataset_id, r.config, r.stabiliser, "
              f"r.stabiliser_params, r.kind, r.seed, r.test_accuracy, r.majority_accuracy, "
              f"r.diverged{selected}{validation} FROM runs r JOIN final f ON r.task_key = f.task_key "
              "AND r.iteration = f.iteration WHERE r.left_out IS NULL ORDER BY r.dataset_id, "
              "r.config, r.stabiliser, r.stabiliser_params, r.seed")
    cards = {row["dataset_id"]: json.loads(row["card"]) if row["card"] else None
             for row in fetch_dicts(conn, "SELECT dataset_id, card FROM datasets")}
    seeds: dict[tuple, list[dict]] = {}
    for row in rows:
        seeds.setdefault(tuple(row[c] for c in UNIT), []).append(row)
    inits = config_inits(conn)
    loo, dropped = _leave_one_out(conn)
    constants = _bound_constants(conn)
    units = []
    for key, group in seeds.items():
        accuracy = tuple(math.nan if s["test_accuracy"] is None else float(s["test_accuracy"])
                         for s in group)
        failed = tuple(bool(s["diverged"]) or (s["test_accuracy"] is not None
                                                and s["majority_accuracy"] is not None
                                                and s["test_accuracy"] <= s["majority_accuracy"] + 1e-12)
                       for s in group)
        seed_list = tuple(int(s["seed"]) for s in group)
        constant = constants.get(key, {})
        targets = {name: tuple(_value(s[f"target:{name}"]) for s in group) for name in sources}
        targets.update({name: tuple(by_seed.get(seed, math.nan) for seed in seed_list)
                        for name, by_seed in constant.items()})
        estimates, lost = loo.get(key, {}), dropped.get(key, set())
        units.append(Unit(
            dataset_id=key[0], family=task_family(group[0]["kind"], cards.get(key[0]), inits.get(key[1])),
            config=key[1], stabiliser=key[2], params=key[3], accuracy=accuracy, failed=failed,
            seeds=seed_list,
            leave_one_out=tuple(estimates.get(seed, math.nan) for seed in seed_list)
            if estimates or lost else (),
            leave_one_out_dropped=tuple(seed in lost for seed in seed_list) if lost else (),
            targets={name: values for name, values in targets.items()
                     if any(math.isfinite(v) for v in values)},
            validation=tuple(_value(s["validation"]) for s in group)))
    return units


def stabiliser_verdicts(conn: sqlite3.Connection) -> list[dict]:
    """Paired verdicts of every stabiliser in the results (:func:`paired_verdicts`'s rows)."""
    targets, defaults = stabiliser_declarations()
    return paired_verdicts(paired_units(conn), targets=targets, defaults=defaults,
                           quantities=QUANTITIES)


def _leave_one_out(conn: sqlite3.Connection) -> tuple[dict[tuple, dict[int, float]],
                                                       dict[tuple, set[int]]]:
    """``(kept, dropped)``: E_i of the setting's leave-one-out measure per unit and seed, for the
    seeds whose E_i group (the seed's left-out runs at the final checkpoint) is kept by the
    verdicts' one rule: its estimate is not partial (``verify.verdicts.db.estimator_filter``) and
    every left-out model measured it (``verify.store.fully_measured``: none diverged); and per
    unit the seeds whose group the rule dropped. A seed whose left-out models partly diverged has
    no E_i, rather than the E_i of its models that stayed stable, and is counted as dropped."""
    complete, _ = estimator_filter()
    keys = ", ".join(f"r.{c}" for c in UNIT)
    rows = fetch_dicts(
        conn, f"{FINAL_CHECKPOINT_CTE} SELECT {keys}, r.seed, "
              f"{left_out_mean(LEAVE_ONE_OUT)} AS loo, {complete} "
              f"AND {fully_measured(f'({LEAVE_ONE_OUT})')} AS complete FROM runs r "
              "JOIN final f ON r.task_key = f.task_key AND r.iteration = f.iteration "
              f"WHERE r.left_out IS NOT NULL GROUP BY {keys}, r.seed")
    by_unit: dict[tuple, dict[int, float]] = {}
    dropped: dict[tuple, set[int]] = {}
    for row in rows:
        key = tuple(row[c] for c in UNIT)
        if row["complete"] and row["loo"] is not None:
            by_unit.setdefault(key, {})[int(row["seed"])] = float(row["loo"])
        else:
            dropped.setdefault(key, set()).add(int(row["seed"]))
    return by_unit, dropped


def _bound_constants(conn: sqlite3.Connection) -> dict[tuple, dict[str, dict[int, float]]]:
    """Target quantities read from bound constants per unit and seed: mean over the bound's rows
    of the seed's runs at the final checkpoint."""
    wanted = {name: source for name, (_, source) in TARGETS.items() if source.bound is not None}
    found: dict[tuple, dict[str, dict[int, list[float]]]] = {}
    for name, source in wanted.items():
        for row in fetch_dicts(
                conn, f"{FINAL_CHECKPOINT_CTE} SELECT {', '.join(f'r.{c}' for c in UNIT)}, "
                      "r.seed, b.constants FROM bounds b JOIN runs r USING (run_id) JOIN final f "
                      "ON r.task_key = f.task_key AND r.iteration = f.iteration WHERE b.bound = ?",
                (source.bound,)):
            value = json.loads(row["constants"] or "{}").get(source.constant)
            if isinstance(value, (int, float)) and math.isfinite(value):
                (found.setdefault(tuple(row[c] for c in UNIT), {}).setdefault(name, {})
                 .setdefault(int(row["seed"]), []).append(value))
    return {key: {name: {seed: float(np.mean(values)) for seed, values in by_seed.items()}
                  for name, by_seed in quantities.items()}
            for key, quantities in found.items()}


def _value(value) -> float:
    """A stored number as a float, NaN where it is NULL or not finite."""
    return float(value) if value is not None and math.isfinite(value) else math.nan
