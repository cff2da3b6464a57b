"""The record a batched trainer returns: weights and training loss of M models at checkpoints."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Trace:
    """Weights and training loss of M models at K checkpoint iterations.

    Attributes
    ----------
    iterations : ndarray of int64, shape (K,)
        Checkpoint iterations t (number of updates applied), strictly increasing.
    weights : dict of str to ndarray
        Parameter name -> array of shape (K, M, ...); NaN for a model from the checkpoint at which it
        diverged onwards.
    train_loss : ndarray, shape (K, M)
        Each model's training objective on its own samples at each checkpoint (NaN once diverged).
    diverged_at : ndarray of int64, shape (M,)
        First iteration whose training loss was NaN, inf or a blow-up; -1 if the model never diverged.
    """

    iterations: np.ndarray
    weights: dict[str, np.ndarray]
    train_loss: np.ndarray
    diverged_at: np.ndarray

    def __post_init__(self) -> None:
        n_checkpoints, n_models = len(self.iterations), len(self.diverged_at)
        if self.train_loss.shape != (n_checkpoints, n_models):
            raise ValueError(f"train_loss: expected shape {(n_checkpoints, n_models)}, "
                             f"got {self.train_loss.shape}")
        for name, values in self.weights.items():
            if values.shape[:2] != (n_checkpoints, n_models):
                raise ValueError(f"weights[{name!r}]: expected leading shape "
                                 f"{(n_checkpoints, n_models)}, got {values.shape}")

    @property
    def n_models(self) -> int:
        """Number of models M."""
        return len(self.diverged_at)

    @property
    def diverged(self) -> np.ndarray:
        """(M,) bool: whether each model diverged at some iteration."""
        return self.diverged_at >= 0
