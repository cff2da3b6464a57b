"""Soudry et al. (2018, Theorem 3): on separable data, GD on an exponential-tailed loss follows
w(t) = ŵ log t + w̃ + r(t) with r(t) bounded, ŵ the hard-margin SVM solution (margin 1).

Sum loss Σ_j ℓ(z_j·w) with step η: w̃ satisfies η exp(−z_k·w̃) = α_k on the support vectors
(α the SVM dual multipliers, ŵ = Σ α_k z_k). The mean loss with step η is the sum loss with step η/n,
so z_k·w̃ = log(η / (n α_k)), equivalently w(t) ≈ ŵ log(ηt/n) + w̃₀ with z_k·w̃₀ = −log α_k.
The component of w0 orthogonal to every z_j never moves, so it is added; the component of w̃ in the
span of the data but orthogonal to the support vectors depends on the transient and is not predicted
(it is zero when the support vectors span the data).
"""
from __future__ import annotations

import numpy as np
from scipy.linalg import lstsq, null_space

from theory.estimators import max_margin_solution, signed_points

REDUCTIONS = ("mean", "sum")


def asymptotic_weights(X: np.ndarray, y: np.ndarray, *, lr: float, iteration: int | np.ndarray,
                       w0: np.ndarray | None = None, reduction: str = "mean") -> np.ndarray:
    """Predicted GD weights ŵ log t + w̃ after ``iteration`` steps (exponential or logistic loss).

    Parameters
    ----------
    X, y : ndarray
        Binary, linearly separable training data (labels 0/1 or ±1).
    lr : float > 0
        Step size η.
    iteration : int or ndarray of int >= 1
        Step count(s) t.
    w0 : ndarray or None
        Initial weights (zeros when None); only their component orthogonal to the data is used.
    reduction : {"mean", "sum"}
        Whether the training loss averages or sums the per-sample losses.

    Returns
    -------
    ndarray of shape (d,) or (len(iteration), d)
    """
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}")
    if not lr > 0:
        raise ValueError(f"lr must be > 0, got {lr!r}")
    steps = np.asarray(iteration, dtype=np.float64)
    if np.any(steps < 1):
        raise ValueError(f"iteration must be >= 1, got {iteration!r}")
    Z = signed_points(X, y)
    solution = max_margin_solution(Z)
    if not solution.separable:
        raise ValueError("X, y must be linearly separable through the origin")
    effective_lr = lr / len(Z) if reduction == "mean" else lr
    support = solution.support
    offset = lstsq(Z[support], np.log(effective_lr / solution.dual[support]))[0]
    if w0 is not None:
        orthogonal = null_space(Z)
        offset = offset + orthogonal @ (orthogonal.T @ np.asarray(w0, dtype=np.float64))
    return np.multiply.outer(np.log(steps), solution.svm_weights) + offset
