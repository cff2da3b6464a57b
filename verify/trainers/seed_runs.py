"""Seed-to-seed runs of one config on one MLP dataset: test accuracy per seed, no leave-one-out.

The quick measurement of seed instability (std of test accuracy, failed-run rate) that the
instability benchmark and its measured-property test share; a sweep measures the same runs with
leave-one-out sets and stores them.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from verify.configs import TrainingConfig


@dataclass(frozen=True)
class SeedRuns:
    """Test accuracies of one config's seeds on one dataset, and the failure threshold."""

    accuracy: np.ndarray
    majority_accuracy: float

    @property
    def std(self) -> float:
        """Standard deviation over seeds (ddof=0) of the test accuracy."""
        return float(np.std(self.accuracy))

    @property
    def failed_rate(self) -> float:
        """Share of seeds at or below the majority-class test accuracy (diverged runs fail)."""
        return float(np.mean(self.accuracy <= self.majority_accuracy))


def seed_runs(dataset, config: TrainingConfig, seeds: Sequence[int], *, stabilisers=()) -> SeedRuns:
    """Fine-tune ``dataset``'s pre-trained backbone once per seed with ``config`` (all at once).

    Only absolute-learning-rate configs (``lr_unit="absolute"``): the curvature-scaled ones need
    the sweep's Lanczos estimate. A diverged run scores accuracy 0.
    """
    from synth.backbones import build_network
    from verify.trainers.mlp import predict_logits, train_mlp

    if config.lr_unit != "absolute":
        raise ValueError(f"config: {config.name} scales lr by the curvature; use the sweep")
    model = build_network(dataset.card["architecture"])
    start = {name.removeprefix("w0."): value for name, value in dataset.arrays.items()
             if name.startswith("w0.")}
    seed_array = np.asarray(seeds, dtype=np.int64)
    loss = "softmax" if dataset.card["n_classes"] > 2 else config.loss
    trace = train_mlp(model, start, dataset.X, dataset.y,
                      masks=np.ones((len(seed_array), len(dataset.y))), seeds=seed_array, loss=loss, lr=config.learning_rate(None),
                      n_steps=config.n_steps, checkpoints=[config.n_steps],
                      batch_size=config.batch_size, optimiser=config.optimiser,
                      dropout=config.dropout, stabilisers=stabilisers,
                      unlabelled=dataset.arrays.get("target_pool"))
    logits = predict_logits(model, {name: value[-1] for name, value in trace.weights.items()},
                            dataset.X_test)
    accuracy = (logits.argmax(-1) == np.asarray(dataset.y_test)).mean(1)
    accuracy = np.where(np.isfinite(logits).all(axis=(1, 2)), accuracy, 0.0)
    majority = float(np.bincount(dataset.y_test).max() / len(dataset.y_test))
    return SeedRuns(accuracy=accuracy, majority_accuracy=majority)
