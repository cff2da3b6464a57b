"""How many CPU seconds a task's training will take, predicted from its plan without training.

A sweep runs its pending tasks in its own process when they are too few to pay for a worker pool's
start-up (:func:`verify.sweep.choice.choose_executor`); this module says how much work they are.
A task's cost is modelled per trainer as

    seconds = FIXED + STEP * T + VOLUME * T * M * b * p + ROW * M * K

with T the training steps, M the models (seeds x (1 + left-out sets), as
:func:`verify.run.memory.task_memory` counts them), b the samples per step (the batch, or n), p the
per-sample work of one model's step (a head's weights, an MLP's parameters; least squares costs d^2
per model and step, whatever n), and K the checkpoints (each model's rows are measured there).
Tasks that train in one call (``verify.run.runner.training_key``: a learning-rate sweep of heads)
pay FIXED per task but the per-step dispatch STEP once.

The constants are CPU seconds of one thread (the sweep limits every process to one), fitted by
``bench/task_cost.py --fit`` (non-negative least squares on the measured CPU seconds of every task
group, each weighted by 1/sqrt(seconds), each group trained in a process that had already paid
torch's first-call set-up) on this project's 2-core development machine, 2026-12-02: the smoke
grid, every config, 10 seeds (112 tasks in 94 groups), three separable datasets larger than the
smoke grid's (n, d = 128, 8; 64, 32; 120, 16 with 3 classes) and one least-squares task (160, 32)
under the head and least-squares base configs, 3 seeds, and two wider MLPs (16-32-32 and 8-64-64)
under full_mlp_gd and full_mlp_sgd, 3 seeds. Only their order of magnitude matters: the sweep
compares their sum with a pool's start-up of about 2 s.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from verify.run.memory import heads_per_model, mlp_size
from verify.run.task import Task, trainer_for

# model -> (FIXED, STEP, VOLUME, ROW), a model being the trainer, heads on minibatches apart (each
# step draws its batch: dearer per step): bench/task_cost.py --fit (see the module docstring).
# Measured per model, groups: CPU s measured -> predicted (per group, worst ratios): head 23:
# 14.9 -> 11.8 (0.25x-2.2x), head_sgd 21: 23.2 -> 22.4 (0.62x-1.35x), mlp 38: 35.1 -> 32.7
# (0.61x-1.81x), quadratic 26: 1.61 -> 1.56 (0.70x-1.29x).
COST_CONSTANTS: dict[str, tuple[float, float, float, float]] = {
    "head": (0.0, 3.09e-05, 3.68e-10, 0.0),
    "head_sgd": (0.497, 4.83e-05, 3.18e-09, 7.74e-05),
    "mlp": (0.614, 6.92e-04, 8.82e-10, 9.49e-04),
    "quadratic": (0.0561, 0.0, 2.14e-09, 0.0),
}


@dataclass(frozen=True)
class TaskWork:
    """The sizes a task's cost is predicted from (see the module docstring); ``model`` names its
    constants in :data:`COST_CONSTANTS`."""

    model: str
    n_steps: int
    n_models: int
    volume: float     # M * b * p: one step's work over every model
    n_checkpoints: int

    def features(self) -> tuple[float, float, float, float]:
        """The multipliers of (FIXED, STEP, VOLUME, ROW)."""
        return (1.0, float(self.n_steps), float(self.n_steps) * self.volume,
                float(self.n_models * self.n_checkpoints))


def task_work(task: Task, kind: str, params: Mapping[str, Any]) -> TaskWork:
    """The sizes of ``task`` on a dataset of ``kind`` with generator parameters ``params`` (those
    :func:`verify.run.memory.task_memory` reads)."""
    config = task.config
    n = (int(params["n_samples"]) if "n_samples" in params
         else int(params["n_per_class"]) * max(2, int(params.get("n_classes", 2))))
    d = int(params["n_features"])
    n_classes = int(params.get("n_classes", 0) or 0)
    n_outputs = n_classes if n_classes > 2 else 1
    left_out = n if n <= max(config.exact_left_out_up_to, config.max_left_out) else config.max_left_out
    n_models = len(task.seeds) * (1 + left_out)
    batch = min(n, config.batch_size or n)
    trainer = trainer_for(config, kind)
    if trainer == "mlp":
        per_sample = mlp_size(params, n_outputs, heads_per_model(task))[0]
    elif trainer == "head":
        per_sample = heads_per_model(task) * n_outputs * d
    else:  # least squares: a step is each model's d x d Hessian times its weights
        batch, per_sample = 1, d * d
    model = "head_sgd" if trainer == "head" and config.batch_size else trainer
    return TaskWork(model=model, n_steps=config.n_steps, n_models=n_models,
                    volume=float(n_models * batch * per_sample),
                    n_checkpoints=len(config.checkpoints()))


def predicted_seconds(works: Sequence[TaskWork],
                      constants: Mapping[str, tuple[float, float, float, float]] = COST_CONSTANTS
                      ) -> float:
    """Predicted CPU seconds of tasks that train in one call (one task, or a learning-rate sweep
    sharing a trainer call): each pays its fixed cost, volume and rows; the steps' dispatch once."""
    if not works:
        return 0.0
    total = 0.0
    for work in works:
        fixed, _, volume, row = constants[work.model]
        _, _, work_volume, rows = work.features()
        total += fixed + volume * work_volume + row * rows
    shared = max(works, key=lambda work: work.n_steps)
    return total + constants[shared.model][1] * shared.n_steps


def sweep_predictor(params: Mapping[str, tuple[str, Mapping[str, Any]]],
                    constants: Mapping[str, tuple[float, float, float, float]] = COST_CONSTANTS
                    ) -> Callable[[Sequence[Task]], float]:
    """``expected_seconds(group)`` for :func:`verify.sweep.runner.run_sweep`, from each dataset's
    ``(kind, generator parameters)`` by id (``verify.sweep.cli._dataset_params``)."""
    def expected_seconds(group: Sequence[Task]) -> float:
        return predicted_seconds([task_work(task, *params[task.dataset_id]) for task in group],
                                 constants)
    return expected_seconds
