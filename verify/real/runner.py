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
from verify.run.layout import choose_left_out, left_out_weights, model_layout
from verify.run.output import TaskOutput
from verify.run.rows import RowInputs, trace_rows
from verify.run.task import NO_STABILISER, Task
from verify.run.train import schedule

# Real counterparts of registry stabilisers whose generic form does not fit a real backbone: SURT
# continues each backbone's own objective; MiniLM's layers are transformer blocks and its inputs tokens.
REAL_COUNTERPARTS = {
    "real-digits": {"surt": DigitsSURT},
    "real-text": {"surt": ContrastiveSURT, "reinit_top": MiniLMReinitTop, "lnsr": MiniLMLNSR},
}


def stabiliser_classes(kind: str) -> dict[str, type]:
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

    def __call__(self, task: Task, dataset: RealDataset) -> TaskOutput:
        stabiliser = build_stabiliser(task, dataset.card["kind"])
        n = len(dataset.y)
        max_left_out = n if task.config.max_left_out is None else task.config.max_left_out
        # No support vectors are known on real data: left-out samples are a uniform random choice.
        left_out = choose_left_out(task.dataset_id, n, np.zeros(0, dtype=np.int64), max_left_out)
        layout = model_layout(task, left_out)
        if task.config.setting == "head":
            output = self._head(task, dataset, stabiliser, layout)
        elif dataset.card["kind"] == "real-digits":
            output = self._digits_full(task, dataset, stabiliser, layout)
        else:
            from verify.real.text_finetune import finetune_minilm_task
            output = finetune_minilm_task(task, dataset, stabiliser, layout, cache_dir=self.cache_dir,
                                          max_length=self.max_length)
        _training_columns(output.runs, task, stabiliser, left_out, n)
        return output

    def features(self, dataset: RealDataset) -> tuple[np.ndarray, np.ndarray]:
        """Training and test features the heads see (cached MiniLM embeddings, or CNN features)."""
        if dataset.card["kind"] == "real-text":
            from verify.real.text_features import minilm_features
            return (minilm_features(dataset.texts, cache_dir=self.cache_dir, max_length=self.max_length),
                    minilm_features(dataset.test_texts, cache_dir=self.cache_dir,
                                    max_length=self.max_length))
        model = _digits_model(dataset)
        with torch.no_grad():
            return tuple(model.encoder(torch.as_tensor(inputs)).numpy()
                         for inputs in (dataset.X, dataset.X_test))

    def _head(self, task, dataset, stabiliser, layout) -> TaskOutput:
        from verify.trainers.head import train_heads
        X, X_test = self.features(dataset)
        lr, n_steps, checkpoints = schedule(task.config, stabiliser, task.config.learning_rate(X))
        masks = layout.masks(len(dataset.y))
        extra = stabiliser.head_kwargs() if stabiliser is not None else {}
        trace = train_heads(X, dataset.y, masks=masks, init=task.config.init, loss=task.config.loss,
                            lr=lr, n_steps=n_steps, checkpoints=checkpoints,
                            batch_size=_batch(task, len(dataset.y)), seeds=layout.model_seeds, **extra)
        return _rows(dataset, X=X, X_test=X_test, iterations=trace.iterations,
                     weights=head_weights(trace.weights["w"]), train_loss=trace.train_loss,
                     diverged_at=trace.diverged_at, layout=layout,
                     evaluator=linear_evaluator(task.config.loss, int(dataset.card["n_classes"])),
                     masks=masks, lr=lr)

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


def _training_columns(rows: list[dict], task: Task, stabiliser, left_out: np.ndarray, n: int) -> None:
    """Columns the rows share with the synthetic sweep's: steps and heads as trained (after the
    stabiliser), and each left-out row's weight in the estimate of E_i over S."""
    n_steps, n_heads = task.config.n_steps, task.config.n_heads
    if stabiliser is not None:
        _, n_steps = stabiliser.adjust_schedule(1.0, n_steps)  # only the step count is recorded here
        n_heads = stabiliser.head_kwargs().get("n_heads", n_heads)
    weights = dict(zip(left_out.tolist(), left_out_weights(left_out, np.zeros(0, dtype=np.int64), n).tolist()))
    for row in rows:
        row["n_steps"] = n_steps
        row["n_heads"] = n_heads
        if row["left_out"] is not None:
            row["left_out_support"] = 0
            row["left_out_weight"] = weights[row["left_out"]]


def _batch(task: Task, n: int) -> int | None:
    return None if task.config.batch_size is None else min(task.config.batch_size, n)


def _digits_init(dataset: RealDataset) -> dict[str, np.ndarray]:
    """The pre-trained checkpoint: encoder and reconstruction decoder (the trainer draws the heads)."""
    return {name[len("w0."):]: value for name, value in dataset.arrays.items() if name.startswith("w0.")}


def _digits_model(dataset: RealDataset) -> torch.nn.Module:
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
