"""A real task's rows from a batched trace: the synthetic row builder on real data."""
from __future__ import annotations

from verify.real.datasets import RealDataset
from verify.run.output import TaskOutput
from verify.run.rows import RowInputs, trace_rows
from verify.run.task import Task


def trace_output(dataset: RealDataset, *, X, X_test, iterations, weights, train_loss, diverged_at,
                 layout, evaluator, masks, lr) -> TaskOutput:
    """Rows of every checkpoint after 0 (checkpoint 0 supplies each model's initial weights)."""
    inputs = RowInputs(X=X, y=dataset.y, X_test=X_test, y_test=dataset.y_test,
                       n_classes=int(dataset.card["n_classes"]), w_init=weights[0], u_star=None, lr=lr)
    rows = trace_rows(iterations[1:], weights[1:], train_loss[1:], diverged_at, layout=layout,
                      evaluator=evaluator, inputs=inputs, masks=masks)
    return TaskOutput(runs=rows)


def minibatch(task: Task, n: int) -> int | None:
    """The task's SGD minibatch on ``n`` samples (at most ``n``); None for full-batch GD."""
    return None if task.config.batch_size is None else min(task.config.batch_size, n)
