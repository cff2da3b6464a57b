"""Run one real task (dataset x config x stabiliser, every seed and left-out set) into result rows.

The sweep machinery (:func:`verify.sweep.runner.run_sweep`) calls :class:`RealRunner` for each task, so real
results are stored, resumed and recorded exactly like synthetic ones. Three training paths:

- head tuning (both kinds): fixed features (MiniLM sentence embeddings, cached; or the pre-trained
  CNN's features) and :func:`verify.trainers.head.train_heads` over seeds x left-out sets;
- full fine-tuning of the digits CNN: :func:`verify.trainers.mlp.train_mlp` (vmap over all models);
- full fine-tuning of MiniLM: :mod:`verify.real.text_finetune`, one model at a time.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from verify.real.datasets import RealDataset
from verify.real.digits import DigitsCNN
from verify.real.evaluation import flatten_weights, head_weights, network_evaluator
from verify.real.minilm_stabilisers import MiniLMLNSR, MiniLMReinitTop
from verify.real.surt import ContrastiveSURT, DigitsSURT
from verify.run.evaluators import linear_evaluator
from verify.run.layout import LeftOutPlan, choose_left_out, model_layout
from verify.run.output import TaskOutput
from verify.run.rows import RowInputs, add_left_out_estimates, trace_rows
from verify.run.task import NO_STABILISER, Task, task_effects
from verify.run.train import schedule
from verify.stabilisers.base import Stabiliser


# Real counterparts of registry stabilisers whose generic form does not fit a real backbone: SURT
# continues each backbone's own objective; MiniLM's layers are transformer blocks and its inputs tokens.
REAL_COUNTERPARTS: dict[str, dict[str, type[Stabiliser]]] = {
    "real-digits": {"surt": DigitsSURT},
    "real-text": {"surt": ContrastiveSURT, "reinit_top": MiniLMReinitTop, "lnsr": MiniLMLNSR},
}


def stabiliser_classes(kind: str) -> dict[str, type[Stabiliser]]:
    """Stabiliser name -> class for a real dataset kind: the registry's, with the real counterparts."""
    from verify.stabilisers import STABILISERS
    return {**STABILISERS, **REAL_COUNTERPARTS[kind]}


def build_stabiliser(task: Task, kind: str):
    """The task's stabiliser instance, or None for plain training."""
    if task.stabiliser == NO_STABILISER:
        return None
    return stabiliser_classes(kind)[task.stabiliser].from_params(**json.loads(task.stabiliser_params))


def _rows(dataset: RealDataset, *, X, X_test, iterations, weights, train_loss, diverged_at,
          layout, evaluator, masks, lr) -> TaskOutput:
    """Rows of every checkpoint after 0 (checkpoint 0 supplies each model's initial weights)."""
    inputs = RowInputs(X=X, y=dataset.y, X_test=X_test, y_test=dataset.y_test,
                       n_classes=int(dataset.card["n_classes"]), w_init=weights[0], u_star=None, lr=lr)
    rows = trace_rows(iterations[1:], weights[1:], train_loss[1:], diverged_at, layout=layout,
                      evaluator=evaluator, inputs=inputs, masks=masks)
    return TaskOutput(runs=rows)


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
        from verify.real.protocol.config import ProtocolConfig
        if isinstance(task.config, ProtocolConfig):
            from verify.real.protocol.finetune import finetune_protocol_task
            output = finetune_protocol_task(task, dataset, stabiliser, cache_dir=self.cache_dir,
                                            device=self.device)
        elif task.config.setting == "head":
            output = self._head(task, dataset, stabiliser, layout)
        elif dataset.card["kind"] == "real-digits":
            output = self._digits_full(task, dataset, stabiliser, layout)
        else:
            from verify.real.text_finetune import finetune_minilm_task
            output = finetune_minilm_task(task, dataset, stabiliser, layout, cache_dir=self.cache_dir,
                                          max_length=self.max_length)
        _training_columns(output.runs, task, stabiliser, plan)
        return output

    def features(self, dataset: RealDataset, encoder: str = "minilm-l6") -> tuple[np.ndarray, np.ndarray]:
        """Training and test features the heads see (cached sentence embeddings of ``encoder``, or
        CNN features)."""
        if dataset.card["kind"] == "real-text":
            from verify.real.text_features import minilm_features
            train, test = (minilm_features(texts, cache_dir=self.cache_dir, max_length=self.max_length,
                                           encoder=encoder)
                           for texts in (dataset.texts, dataset.test_texts))
            return train, test
        model = _digits_model(dataset)
        with torch.no_grad():
            train, test = (model.encoder(torch.as_tensor(inputs)).numpy()
                           for inputs in (dataset.X, dataset.X_test))
        return train, test

    def _head(self, task, dataset, stabiliser, layout) -> TaskOutput:
        from verify.trainers.head import train_heads
        X, X_test = self.features(dataset, task.config.encoder)
        lr, n_steps, checkpoints = schedule(task.config, stabiliser, task.config.learning_rate(X))
        masks = layout.masks(len(dataset.y))
        heads = task_effects(task.config, stabiliser).heads
        trace = train_heads(X, dataset.y, masks=masks, init=task.config.init, loss=task.config.loss,
                            lr=lr, n_steps=n_steps, checkpoints=checkpoints,
                            batch_size=_batch(task, len(dataset.y)), seeds=layout.model_seeds,
                            n_heads=heads.n_heads, head_reduction=heads.fixed_features_reduction)
        output = _rows(dataset, X=X, X_test=X_test, iterations=trace.iterations,
                       weights=head_weights(trace.weights["w"]), train_loss=trace.train_loss,
                       diverged_at=trace.diverged_at, layout=layout,
                       evaluator=linear_evaluator(task.config.loss, int(dataset.card["n_classes"])),
                       masks=masks, lr=lr)
        margin, radius = feature_geometry(X, dataset.y)
        for row in output.runs:
            row.update(margin=margin, radius=radius, n_features=int(X.shape[1]))
        return output

    def _digits_full(self, task, dataset, stabiliser, layout) -> TaskOutput:
        from verify.trainers.mlp import train_mlp
        model = DigitsCNN().double()
        lr, n_steps, checkpoints = schedule(task.config, stabiliser, task.config.learning_rate())
        masks = layout.masks(len(dataset.y))
        init = _digits_init(dataset)
        trace = train_mlp(model, init, dataset.X, dataset.y, masks=masks, seeds=layout.model_seeds,
                          loss=task.config.loss, lr=lr, n_steps=n_steps, checkpoints=checkpoints,
                          batch_size=_batch(task, len(dataset.y)),
                          stabilisers=() if stabiliser is None else (stabiliser,))
        names = [name for name, _ in model.named_parameters()]
        return _rows(dataset, X=dataset.X, X_test=dataset.X_test, iterations=trace.iterations,
                     weights=flatten_weights(_mean_head(trace.weights), names),
                     train_loss=trace.train_loss, diverged_at=trace.diverged_at, layout=layout,
                     evaluator=network_evaluator(model), masks=masks, lr=lr)


def feature_geometry(X: np.ndarray, y: np.ndarray) -> tuple[float | None, float]:
    """The head's margin γ and radius R on features ``X``: R the largest feature norm, γ the no-bias
    hard margin (exact QP), for several classes the smallest over class pairs (as the synthetic
    cards); γ is None when some pair is not linearly separable through the origin."""
    from itertools import combinations

    from theory.estimators import max_margin_solution, signed_points
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


def _batch(task: Task, n: int) -> int | None:
    return None if task.config.batch_size is None else min(task.config.batch_size, n)


def _digits_init(dataset: RealDataset) -> dict[str, np.ndarray]:
    """The pre-trained checkpoint: encoder and reconstruction decoder (the trainer draws the heads)."""
    return {name[len("w0."):]: value for name, value in dataset.arrays.items() if name.startswith("w0.")}


def _digits_model(dataset: RealDataset) -> DigitsCNN:
    """The CNN with the pre-trained encoder (its head unused), in eval mode."""
    model = DigitsCNN().double()
    encoder = {name: torch.as_tensor(value) for name, value in _digits_init(dataset).items()
               if name.startswith("encoder.")}
    model.load_state_dict({**model.state_dict(), **encoder})
    return model.eval()


def _mean_head(weights: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Multi-head weights ``(K, M, H, ...)`` -> the mean head ``(K, M, ...)`` (mean-logit prediction)."""
    reference = {name: parameter.dim() for name, parameter in DigitsCNN().named_parameters()}
    return {name: value.mean(axis=2) if value.ndim == reference[name] + 3 else value
            for name, value in weights.items()}
