"""Run one real task (dataset x config x stabiliser, every seed and left-out set) into result rows.

The sweep machinery (:func:`verify.sweep.runner.run_sweep`) calls :class:`RealRunner` for each task, so real
results are stored, resumed and recorded exactly like synthetic ones. Three training paths:

- head tuning (every kind): fixed features (its record's ``features``: cached MiniLM sentence
  embeddings, or the pre-trained CNN's features) and :func:`verify.trainers.head.train_heads` over
  seeds x left-out sets;
- full fine-tuning: the kind's record's ``finetune`` (the digits CNN with
  :func:`verify.trainers.mlp.train_mlp`, vmap over all models; MiniLM with
  :mod:`verify.real.text_finetune`, one model at a time);
- the practitioners' protocol (:mod:`verify.real.protocol`), for its own configs.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from itertools import combinations
from pathlib import Path

import numpy as np

from theory.estimators import max_margin_solution, signed_points
from verify.real.datasets import RealDataset
from verify.real.evaluation import head_weights
from verify.real.kinds import real_kind
from verify.real.protocol.config import ProtocolConfig
from verify.real.protocol.finetune import finetune_protocol_task
from verify.real.rows import minibatch, trace_output
from verify.run.evaluators import linear_evaluator
from verify.run.layout import LeftOutPlan, choose_left_out, model_layout
from verify.run.output import TaskOutput
from verify.run.rows import add_left_out_estimates
from verify.run.task import NO_STABILISER, Task, task_effects
from verify.run.train import schedule
from verify.trainers.head import train_heads


def build_stabiliser(task: Task, kind: str):
    """The task's stabiliser instance (the registry's class, or the kind's counterpart), or None for
    plain training."""
    if task.stabiliser == NO_STABILISER:
        return None
    cls = real_kind(kind).stabiliser_classes()[task.stabiliser]
    return cls.from_params(**json.loads(task.stabiliser_params))


@dataclass(frozen=True)
class RealRunner:
    """``runner(task, dataset) -> TaskOutput`` for :func:`verify.sweep.runner.run_sweep`.

    Parameters
    ----------
    cache_dir : Path
        Feature and pre-trained weight cache.
    max_length : int
        MiniLM token limit.
    """

    cache_dir: Path
    max_length: int = 128
    device: str = "cpu"

    def __call__(self, task: Task, dataset: RealDataset) -> TaskOutput:
        stabiliser = build_stabiliser(task, dataset.card["kind"])
        n = len(dataset.y)
        max_left_out = n if task.config.max_left_out is None else task.config.max_left_out
        # No support vectors are known on real data: left-out samples are a uniform random choice.
        plan = choose_left_out(task.dataset_id, n, np.zeros(0, dtype=np.int64), budget=max_left_out)
        layout = model_layout(task, plan.samples)
        if isinstance(task.config, ProtocolConfig):
            output = finetune_protocol_task(task, dataset, stabiliser, cache_dir=self.cache_dir,
                                            device=self.device)
        elif task.config.setting == "head":
            output = self._head(task, dataset, stabiliser, layout)
        else:
            output = real_kind(dataset.card["kind"]).finetune(task, dataset, stabiliser, layout,
                                                              cache_dir=self.cache_dir,
                                                              max_length=self.max_length)
        _training_columns(output.runs, task, stabiliser, plan)
        return output

    def features(self, dataset: RealDataset, encoder: str = "minilm-l6") -> tuple[np.ndarray, np.ndarray]:
        """Training and test features the heads see (the kind's: cached sentence embeddings of
        ``encoder``, or CNN features)."""
        return real_kind(dataset.card["kind"]).features(dataset, cache_dir=self.cache_dir,
                                                        max_length=self.max_length, encoder=encoder)

    def _head(self, task, dataset, stabiliser, layout) -> TaskOutput:
        X, X_test = self.features(dataset, task.config.encoder)
        lr, n_steps, checkpoints = schedule(task.config, stabiliser, task.config.learning_rate(X))
        masks = layout.masks(len(dataset.y))
        heads = task_effects(task.config, stabiliser).heads
        trace = train_heads(X, dataset.y, masks=masks, init=task.config.init, loss=task.config.loss,
                            lr=lr, n_steps=n_steps, checkpoints=checkpoints,
                            batch_size=minibatch(task, len(dataset.y)), seeds=layout.model_seeds,
                            n_heads=heads.n_heads, head_reduction=heads.fixed_features_reduction)
        output = trace_output(dataset, X=X, X_test=X_test, iterations=trace.iterations,
                              weights=head_weights(trace.weights["w"]), train_loss=trace.train_loss,
                              diverged_at=trace.diverged_at, layout=layout,
                              evaluator=linear_evaluator(task.config.loss, int(dataset.card["n_classes"])),
                              masks=masks, lr=lr)
        margin, radius = feature_geometry(X, dataset.y)
        for row in output.runs:
            row.update(margin=margin, radius=radius, n_features=int(X.shape[1]))
        return output


def feature_geometry(X: np.ndarray, y: np.ndarray) -> tuple[float | None, float]:
    """The head's margin γ and radius R on features ``X``: R the largest feature norm, γ the no-bias
    hard margin (exact QP), for several classes the smallest over class pairs (as the synthetic
    cards); γ is None when some pair is not linearly separable through the origin."""
    gammas = []
    for a, b in combinations(np.unique(y).tolist(), 2):
        pair = (y == a) | (y == b)
        solution = max_margin_solution(signed_points(X[pair], y[pair] == b))
        if not (solution.separable and solution.gamma > 0):
            return None, float(np.linalg.norm(X, axis=1).max())
        gammas.append(solution.gamma)
    return min(gammas), float(np.linalg.norm(X, axis=1).max())


def _training_columns(rows: list[dict], task: Task, stabiliser, plan: LeftOutPlan) -> None:
    """Columns the rows share with the synthetic sweep's: steps and heads as trained (after the
    stabiliser), and each left-out row's weight in the estimate of E_i over S."""
    effects = task_effects(task.config, stabiliser)
    _, n_steps = effects.schedule.apply(1.0, task.config.n_steps)  # only the step count is recorded here
    n_heads = effects.heads.n_heads
    add_left_out_estimates(rows, plan)
    for row in rows:
        row["n_steps"] = n_steps
        row["n_heads"] = n_heads
