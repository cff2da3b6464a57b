"""Bounds of one trained task from its stored weights: rebuild every left-out RunContext, no training."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from verify.bounds.evaluate import bound_rows
from verify.run.network import objective_for
from verify.run.output import TaskWeights
from verify.run.task import run_ids
from verify.run.validation import split_dataset

if TYPE_CHECKING:
    from theory.bounds.base import Bound


def task_bound_rows(weights: TaskWeights, dataset: Any, bounds: Sequence[Bound],
                    measured: Mapping[int, Mapping[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Evaluate ``bounds`` on the left-out rows of one task, from its weights and dataset.

    Parameters
    ----------
    weights : TaskWeights
        What training stored (``verify.run.output``).
    dataset : synth.Dataset
        The task's dataset (X, y, arrays and card of the RunContext).
    bounds : sequence of Bound
        Bounds of another setting than the task's get no rows.
    measured : mapping
        ``run_id -> row`` of the task's ``runs`` (each bound reads its ``measure`` column there).

    Returns
    -------
    dict
        ``bound name -> rows`` with ``run_id, bound, measure, measured, value, violated, constants``
        (for every bound of ``bounds`` whose setting is the task's, possibly empty).
    """
    if dataset.card["id"] != weights.task_key.split("|", 1)[0]:
        raise ValueError(f"dataset: {dataset.card['id']} is not the dataset of {weights.task_key}")
    # The models trained on S minus the config's validation split: so do the bounds.
    dataset, _ = split_dataset(dataset, weights.config.get("validation_fraction", 0.0))
    coordinates = weights.rows()
    ids = run_ids(weights.task_key, coordinates)
    unmatched = set(measured) - set(ids)
    if unmatched:
        raise ValueError(f"measured: run_id {min(unmatched)} of {weights.task_key} is not a model of its "
                         "weights file")
    rows = [{**point, **measured.get(rid, {})} for point, rid in zip(coordinates, ids, strict=True)]
    objective = (None if weights.objective is None
                 else objective_for(weights.objective, dataset.X, dataset.y))
    context = {**weights.context, "X": dataset.X, "y": dataset.y, "objective": objective,
               "arrays": dataset.arrays, "card": dataset.card}
    applicable = [bound for bound in bounds if bound.setting == weights.setting]
    evaluated = bound_rows(rows, weights=weights.weights, w_init=weights.w_init, layout=weights.layout,
                           context=context, setting=weights.setting, bounds=applicable,
                           max_models=weights.config.get("bound_models"),
                           last_only=bool(weights.config.get("bound_last_only", False)),
                           models=weights.bounded)
    out: dict[str, list[dict[str, Any]]] = {bound.name: [] for bound in applicable}
    for row in evaluated:
        out[row["bound"]].append({**{key: value for key, value in row.items() if key != "row"},
                                  "run_id": ids[row["row"]]})
    return out
