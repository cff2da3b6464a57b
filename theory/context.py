"""What verify hands the theory about one left-out run (docs/internals.md §2)."""
from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass(frozen=True)
class RunContext:
    """One left-out run: the data of the full set S, the index i left out, and both trained models.

    Attributes
    ----------
    setting : {"head", "full"}
    model : {"linear", "mlp"}
    loss : {"logistic", "exponential", "softmax", "squared"}
    X, y : ndarray
        Training inputs (head: features) and labels/targets of the full set S.
    left_out : int
        The index i of the sample removed in S\\i.
    lr : float
        Step size η.
    iteration : int
        Number of steps t (the T of Theorem F).
    batch_size : int or None
        None is full-batch gradient descent.
    plain_steps : bool
        Every step was ``w <- w - lr * grad`` at one constant ``lr`` (no momentum, no adaptive
        scaling such as AdamW's, no warm-up or decay). The ``full_batch`` constant of the bounds is
        1 only for full-batch runs with plain steps: every bound here assumes gradient descent.
    w0, w_full, w_loo : ndarray
        Flat initial weights, weights of A(S) and of A(S\\i) at this iteration.
    l2sp : float
        Strength λ of ½λ‖w − w0‖² in the objective.
    weight_decay : float
        Strength λ_wd of ½λ_wd‖w‖² in the objective (decay toward 0), if any; for least squares the
        constants include it exactly.
    n_heads : int
        Number of heads H the model trained at once (MHLoss); ``w0``, ``w_full`` and ``w_loo`` are
        then the mean heads, which are not GD iterates of one head with step ``lr``.
    l2sp_anchor : ndarray or None
        The point L2-SP pulls toward (flat); None means ``w0``.
    l2sp_mask, weight_decay_mask : ndarray of bool or None
        Which flat weights each penalty acts on (None: all). For MLPs the bounds' constants are those
        of :func:`theory.objective.training_objective`, the data loss plus both penalties on these
        weights only.
    objective : callable or None
        For MLPs, a torch function ``(w_flat, sample_weights) -> scalar`` returning the weighted mean
        loss ``Σ_j s_j ℓ_j(w) / Σ_j s_j`` (so one-hot weights give one sample's loss).
    arrays, card : mapping
        The dataset's named arrays and card.
    """

    setting: str
    model: str
    loss: str
    X: np.ndarray
    y: np.ndarray
    left_out: int
    lr: float
    iteration: int
    batch_size: int | None
    w0: np.ndarray
    w_full: np.ndarray
    w_loo: np.ndarray
    l2sp: float = 0.0
    weight_decay: float = 0.0
    n_heads: int = 1
    l2sp_anchor: np.ndarray | None = None
    l2sp_mask: np.ndarray | None = None
    weight_decay_mask: np.ndarray | None = None
    objective: Callable | None = None
    arrays: Mapping[str, np.ndarray] = field(default_factory=dict)
    card: Mapping[str, Any] = field(default_factory=dict)
    plain_steps: bool = True

    @property
    def gradient_descent(self) -> bool:
        """Full-batch gradient descent at a constant step: what every bound's ``full_batch`` means."""
        return self.batch_size is None and self.plain_steps
