"""The digits kind's training paths: the pre-trained CNN's features for head tuning, and full
fine-tuning of the whole CNN with :func:`verify.trainers.mlp.train_mlp` (vmap over every model)."""
from __future__ import annotations

from pathlib import Path
from typing import cast

import numpy as np
import torch

from verify.real.configs import RealConfig
from verify.real.datasets import RealDataset
from verify.real.digits import DigitsCNN
from verify.real.evaluation import flatten_weights, network_evaluator
from verify.real.rows import minibatch, trace_output
from verify.run.layout import ModelLayout
from verify.run.output import TaskOutput
from verify.run.task import Task
from verify.run.train import schedule
from verify.stabilisers.base import Stabiliser
from verify.trainers.mlp import train_mlp


def digits_features(dataset: RealDataset, *, cache_dir: Path, max_length: int,
                    encoder: str) -> tuple[np.ndarray, np.ndarray]:
    """Training and test features of the pre-trained CNN encoder (``cache_dir``, ``max_length`` and
    ``encoder`` are the text kind's: the CNN is the dataset's own)."""
    model = _digits_model(dataset)
    with torch.no_grad():
        X, X_test = (model.encoder(torch.as_tensor(inputs)).numpy() for inputs in (dataset.X, dataset.X_test))
    return X, X_test


def finetune_digits_task(task: Task, dataset: RealDataset, stabiliser: Stabiliser | None,
                         layout: ModelLayout, *, cache_dir: Path, max_length: int) -> TaskOutput:
    """Fine-tune the whole CNN from its pre-trained checkpoint, every model of ``layout`` at once
    (``cache_dir`` and ``max_length`` are unused: the checkpoint is in the dataset's arrays)."""
    config = cast(RealConfig, task.config)  # Task.config is typed TrainingConfig; a real task's is a RealConfig
    model = DigitsCNN().double()
    lr, n_steps, checkpoints = schedule(config, stabiliser, config.learning_rate())
    masks = layout.masks(len(dataset.y))
    init = _digits_init(dataset)
    trace = train_mlp(model, init, dataset.X, dataset.y, masks=masks, seeds=layout.model_seeds,
                      loss=config.loss, lr=lr, n_steps=n_steps, checkpoints=checkpoints,
                      batch_size=minibatch(task, len(dataset.y)),
                      stabilisers=() if stabiliser is None else (stabiliser,))
    names = [name for name, _ in model.named_parameters()]
    return trace_output(dataset, X=dataset.X, X_test=dataset.X_test, iterations=trace.iterations,
                        weights=flatten_weights(_mean_head(trace.weights), names),
                        train_loss=trace.train_loss, diverged_at=trace.diverged_at, layout=layout,
                        evaluator=network_evaluator(model), masks=masks, lr=lr)


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
