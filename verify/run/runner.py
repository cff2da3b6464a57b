"""Run one task: train its models, measure every row, keep the weights the bounds step reads."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from verify.run.layout import choose_left_out, model_layout
from verify.run.output import DATASET_FIELDS, TaskOutput, TaskWeights
from verify.run.rows import (
    RowInputs,
    add_asymptotic_predictions,
    add_bound_weights,
    add_head_seed_spread,
    add_left_out_estimates,
    add_feature_margins,
    add_start_distances,
    trace_rows,
)
from verify.run.task import (
    NO_STABILISER,
    Task,
    head_init,
    make_stabiliser,
    trainer_for,
)
from verify.run.train import TRAINERS, class_count, train_head_tasks
from verify.run.validation import add_validation_accuracy, split_dataset
from verify.seeding import run_seed


def run_task(task: Task, dataset: Any) -> TaskOutput:
    """Train every model of ``task`` in one batched call and measure every row.

    The models are, for each seed, the one trained on all of S and one per left-out sample
    (:func:`choose_left_out`: every sample where n <= ``config.exact_left_out_up_to``, else a
    stratified sample of ``config.max_left_out``). A failing trainer raises (the sweep
    records the task as failed). The bounds are evaluated later, from the returned weights
    (``verify.bounds.stored``), by the bounds step, on the models chosen here (``bound_weight``).

    Parameters
    ----------
    task : Task
    dataset : synth.Dataset
        The dataset ``task.dataset_id`` names.

    Returns
    -------
    TaskOutput
    """
    return run_tasks([task], dataset)[0]


def training_key(task: Task) -> tuple | None:
    """Tasks with the same key train in one call (:func:`run_tasks`); None: the task trains alone.

    Plain head tasks of one dataset whose configs differ only in their name, ``lr_scale`` and
    ``with_stabilisers`` (a learning-rate sweep) share data, loss, initialisation, steps and
    checkpoints; the head trainer gives each model its own step.
    """
    config = task.config
    if config.setting != "head" or task.stabiliser != NO_STABILISER:
        return None
    return task.dataset_id, replace(config, name="lr_sweep", lr_scale=1.0, with_stabilisers=False)


def run_tasks(tasks: Sequence[Task], dataset: Any) -> list[TaskOutput]:
    """:func:`run_task` for each of ``tasks`` (one dataset), training them in one call.

    More than one task needs one :func:`training_key` for all: their models are trained by one
    call of the head trainer, then each task's rows and bounds are measured as if it had run alone
    (equal to rounding: the models only share the matrix products).
    """
    if len(tasks) > 1 and (training_key(tasks[0]) is None
                           or any(training_key(task) != training_key(tasks[0]) for task in tasks)):
        raise ValueError(f"tasks: only plain head tasks differing in lr_scale train together, "
                         f"got {[task.key for task in tasks]}")
    prepared = [_prepare(task, dataset) for task in tasks]
    if len(tasks) == 1:
        one = prepared[0]
        trained = [TRAINERS[one.trainer](one.task.config, one.dataset, one.stabiliser, one.layout,
                                         one.masks)]
    else:   # one training_key: the same validation split, so the same training data
        trained = train_head_tasks([task.config for task in tasks], prepared[0].dataset, None,
                                   [one.layout for one in prepared], [one.masks for one in prepared])
    return [_measure(one, result) for one, result in zip(prepared, trained, strict=True)]


@dataclass(frozen=True)
class _Prepared:
    """A task before training: the data it trains on (the dataset minus its validation split) and
    the held-out part, its trainer, stabiliser, left-out plan, model layout and masks."""

    dataset: Any
    validation: Any
    task: Task
    trainer: str
    stabiliser: Any
    plan: Any
    layout: Any
    masks: np.ndarray
    support: np.ndarray


def _prepare(task: Task, dataset: Any) -> _Prepared:
    if dataset.card["id"] != task.dataset_id:
        raise ValueError(f"dataset: expected {task.dataset_id}, got {dataset.card['id']}")
    config = task.config
    trainer = trainer_for(config, dataset.card["kind"])
    stabiliser = make_stabiliser(task)
    if stabiliser is not None and trainer not in stabiliser.applies_to:
        raise ValueError(f"stabilisers: {task.stabiliser} does not apply to the {trainer} trainer")
    # The models train on S minus the config's validation split (none by default).
    dataset, validation = split_dataset(dataset, config.validation_fraction)
    n_samples = len(dataset.X)
    support = np.asarray(dataset.arrays.get("support", np.empty(0, dtype=np.int64)), dtype=np.int64)
    plan = choose_left_out(task.dataset_id, n_samples, support, budget=config.max_left_out,
                           exact_up_to=config.exact_left_out_up_to)
    layout = model_layout(task, plan.samples)
    return _Prepared(dataset, validation, task, trainer, stabiliser, plan, layout,
                     layout.masks(n_samples), support)


def _measure(prepared: _Prepared, trained: Any) -> TaskOutput:
    """Every row of a trained task, measured, and the weights record the bounds step reads."""
    task, stabiliser, plan, layout, masks = (prepared.task, prepared.stabiliser, prepared.plan,
                                             prepared.layout, prepared.masks)
    dataset, validation = prepared.dataset, prepared.validation
    config, support, n_samples = task.config, prepared.support, len(dataset.X)
    u_star = dataset.arrays.get("u_star") if config.setting == "head" else None
    if u_star is not None:
        u_star = np.ravel(u_star) / np.linalg.norm(u_star)
        if u_star.size != trained.weights.shape[2]:
            u_star = None
    n_classes = class_count(dataset)
    inputs = RowInputs(X=dataset.X, y=dataset.y, X_test=dataset.X_test, y_test=dataset.y_test,
                       n_classes=n_classes, u_star=u_star, lr=trained.lr,
                       w_init=trained.w_init if trained.w_pretrained is None else trained.w_pretrained)
    rows = trace_rows(trained.iterations, trained.weights, trained.train_loss, trained.diverged_at,
                      layout=layout, evaluator=trained.evaluator, inputs=inputs, masks=masks)
    add_left_out_estimates(rows, plan)
    add_validation_accuracy(rows, trained.weights, evaluator=trained.evaluator, validation=validation)
    for row in rows:
        row["n_steps"] = trained.n_steps
        row["loss"] = trained.loss
        row["n_heads"] = trained.n_heads
        if config.setting == "head":
            row["init"] = head_init(config, stabiliser)
    add_feature_margins(rows, trained.weights, layout=layout, evaluator=trained.evaluator,
                        X=dataset.X, y=dataset.y)
    add_head_seed_spread(rows, trained.weights if config.setting == "head" else None, layout=layout,
                         evaluator=trained.evaluator,
                         random_state=run_seed(task.dataset_id, config.name, task.stabiliser,
                                               task.stabiliser_params, "head_seed_spread"))
    add_start_distances(rows, trained.weights, layout=layout, w_start=trained.w_init,
                        w_pretrained=(trained.w_init if trained.w_pretrained is None
                                      else trained.w_pretrained), teacher=trained.teacher,
                        encoder=trained.encoder_mask)
    add_asymptotic_predictions(rows, trained.weights, trained.iterations, layout=layout,
                               w_init=trained.w_init, X=dataset.X, y=dataset.y, u_star=u_star,
                               head_lr=trained.head_lr)
    bounded_plan = (plan if config.bound_left_out is None or config.bound_left_out >= len(plan.samples)
                    else choose_left_out(task.dataset_id, n_samples, support, budget=config.bound_left_out))
    bounded = add_bound_weights(rows, layout, plan, bounded_plan)
    # What the dataset supplies (X, y, arrays, card, and the MLP objective rebuilt from X, y) is not
    # stored with the weights; the bounds step adds it back (verify.bounds.stored).
    stored = {name: value for name, value in bound_context(trained, dataset, config).items()
              if name not in DATASET_FIELDS}
    objective = ({"architecture": dataset.card["architecture"], "loss": trained.loss}
                 if trained.objective is not None else None)
    weights_record = TaskWeights(task_key=task.key, setting=config.setting, iterations=trained.iterations,
                                 weights=trained.weights, w_init=trained.w_init, layout=layout,
                                 bounded=bounded, context=stored, objective=objective,
                                 config=config.to_dict())
    return TaskOutput(runs=rows, weights=weights_record)


def bound_context(trained: Any, dataset: Any, config: Any) -> dict[str, Any]:
    """The RunContext fields shared by every bounded row of a task (theory.context.RunContext)."""
    return dict(model=trained.model, loss=trained.loss, X=dataset.X, y=dataset.y, lr=trained.lr,
                batch_size=config.batch_size, plain_steps=trained.plain_steps,
                n_heads=trained.n_heads, l2sp=trained.l2sp,
                weight_decay=trained.weight_decay, l2sp_anchor=trained.l2sp_anchor,
                l2sp_mask=trained.l2sp_mask, weight_decay_mask=trained.weight_decay_mask,
                objective=trained.objective, arrays=dataset.arrays, card=dataset.card)
