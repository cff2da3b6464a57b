"""Run one task: train its models, measure every row, keep the weights the bounds step reads."""
from __future__ import annotations

from typing import Any

import numpy as np

from verify.run.layout import choose_left_out, left_out_weights, model_layout
from verify.run.output import DATASET_FIELDS, TaskOutput, TaskWeights
from verify.run.rows import (
    RowInputs,
    add_asymptotic_predictions,
    add_feature_margins,
    trace_rows,
)
from verify.run.task import Task, head_init, make_stabiliser, trainer_for
from verify.run.train import TRAINERS, class_count


def run_task(task: Task, dataset: Any) -> TaskOutput:
    """Train every model of ``task`` in one batched call and measure every row.

    The models are, for each seed, the one trained on all of S and one per left-out sample
    (:func:`choose_left_out`, up to ``config.max_left_out``). A failing trainer raises (the sweep
    records the task as failed). The bounds are evaluated later, from the returned weights
    (``verify.bounds.stored``), by the bounds step.

    Parameters
    ----------
    task : Task
    dataset : synth.Dataset
        The dataset ``task.dataset_id`` names.

    Returns
    -------
    TaskOutput
    """
    if dataset.card["id"] != task.dataset_id:
        raise ValueError(f"dataset: expected {task.dataset_id}, got {dataset.card['id']}")
    config = task.config
    trainer = trainer_for(config, dataset.card["kind"])
    stabiliser = make_stabiliser(task)
    if stabiliser is not None and trainer not in stabiliser.applies_to:
        raise ValueError(f"stabilisers: {task.stabiliser} does not apply to the {trainer} trainer")
    n_samples = len(dataset.X)
    support = np.asarray(dataset.arrays.get("support", np.empty(0, dtype=np.int64)), dtype=np.int64)
    left_out = choose_left_out(task.dataset_id, n_samples, support, config.max_left_out)
    layout = model_layout(task, left_out)
    masks = layout.masks(n_samples)
    trained = TRAINERS[trainer](config, dataset, stabiliser, layout, masks)

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
    weights = dict(zip(left_out.tolist(), left_out_weights(left_out, support, n_samples).tolist()))
    support_set = set(support.tolist())
    for row in rows:
        row["n_steps"] = trained.n_steps
        row["loss"] = trained.loss
        row["n_heads"] = trained.n_heads
        if config.setting == "head":
            row["init"] = head_init(config, stabiliser)
        if row["left_out"] is not None:
            row["left_out_support"] = int(row["left_out"] in support_set)
            row["left_out_weight"] = weights[row["left_out"]]
    add_feature_margins(rows, trained.weights, layout=layout, evaluator=trained.evaluator,
                        X=dataset.X, y=dataset.y)
    add_asymptotic_predictions(rows, trained.weights, trained.iterations, layout=layout,
                               w_init=trained.w_init, X=dataset.X, y=dataset.y, u_star=u_star,
                               head_lr=trained.head_lr)
    # What the dataset supplies (X, y, arrays, card, and the MLP objective rebuilt from X, y) is not
    # stored with the weights; the bounds step adds it back (verify.bounds.stored).
    stored = {name: value for name, value in bound_context(trained, dataset, config).items()
              if name not in DATASET_FIELDS}
    objective = ({"architecture": dataset.card["architecture"], "loss": trained.loss}
                 if trained.objective is not None else None)
    weights_record = TaskWeights(task_key=task.key, setting=config.setting, iterations=trained.iterations,
                                 weights=trained.weights, w_init=trained.w_init, layout=layout,
                                 context=stored, objective=objective, config=config.to_dict())
    return TaskOutput(runs=rows, weights=weights_record)


def bound_context(trained: Any, dataset: Any, config: Any) -> dict[str, Any]:
    """The RunContext fields shared by every bounded row of a task (theory.context.RunContext)."""
    return dict(model=trained.model, loss=trained.loss, X=dataset.X, y=dataset.y, lr=trained.lr,
                batch_size=config.batch_size, n_heads=trained.n_heads, l2sp=trained.l2sp,
                weight_decay=trained.weight_decay, l2sp_anchor=trained.l2sp_anchor,
                l2sp_mask=trained.l2sp_mask, weight_decay_mask=trained.weight_decay_mask,
                objective=trained.objective, arrays=dataset.arrays, card=dataset.card)
