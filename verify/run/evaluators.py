"""How a model family is evaluated from flat weights: per-sample losses, predictions, head, features.

A model family is described by an :class:`Evaluator`, so the same row code measures linear heads,
quadratic tasks and MLPs."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

# (M, P) flat weights, (n, d) inputs, (n,) targets -> (M, n) per-sample losses
PerSampleLoss = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]


# (M, P) flat weights, (n, d) inputs -> (M, n) predicted class labels
Predict = Callable[[np.ndarray, np.ndarray], np.ndarray]


@dataclass(frozen=True)
class Evaluator:
    """How to evaluate one model family from flat weights.

    Attributes
    ----------
    per_sample_loss : callable
        ``(W, X, y) -> (M, n)`` loss of every model on every sample (the training loss's ℓ).
    predict : callable or None
        ``(W, X) -> (M, n)`` predicted labels; None for regression (no accuracy).
    head : ndarray of int or None
        The entries of the flat weights that form the linear head (the direction measures); None
        when the whole model is a linear head.
    margins : callable or None
        ``(W_head, X, y) -> (M, n)`` un-normalised margins of a linear head on its inputs; None
        where the head does not act on the inputs directly (MLP), so no margin is reported.
    features : callable or None
        ``(W, X) -> (M, n, h)`` the encoder's features (MLP), the inputs of its linear head; None
        for linear models.
    """

    per_sample_loss: PerSampleLoss
    predict: Predict | None
    head: np.ndarray | None = None
    margins: Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray] | None = None
    features: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None


def _signed(y: np.ndarray) -> np.ndarray:
    return 2.0 * np.asarray(y, dtype=np.float64) - 1.0


def linear_scores(W: np.ndarray, X: np.ndarray, n_classes: int) -> np.ndarray:
    """Scores ``(M, n, C)`` of softmax heads: each flat row of ``W`` is a ``(C, d)`` head, class-major
    (the layout of ``verify.trainers.head``, two class vectors for a binary softmax head)."""
    return np.einsum("mcd,nd->mnc", W.reshape(len(W), n_classes, -1), X)


def linear_evaluator(loss: str, n_classes: int) -> Evaluator:
    """The evaluator of a linear model on fixed inputs (heads and the quadratic tasks).

    ``loss`` is "logistic" (binary; softmax cross-entropy when ``n_classes > 2``), "exponential",
    "softmax" or "squared" (ℓ = ½(x·w − y)², regression). The binary losses read one weight vector
    per model; softmax reads ``C = max(n_classes, 2)`` class vectors (:func:`linear_scores`), as the
    head trainer lays them out, so a binary softmax head predicts the class of the larger score.
    """
    if loss == "squared":
        return Evaluator(per_sample_loss=lambda W, X, y: 0.5 * (W @ X.T - y) ** 2, predict=None)
    if n_classes > 2 or loss == "softmax":
        from scipy.special import logsumexp

        n_outputs = max(n_classes, 2)

        def softmax_loss(W, X, y):
            scores = linear_scores(W, X, n_outputs)
            picked = np.take_along_axis(scores, np.asarray(y)[None, :, None], axis=2)[..., 0]
            return logsumexp(scores, axis=2) - picked

        def softmax_margins(W, X, y):
            scores = linear_scores(W, X, n_outputs)
            picked = np.take_along_axis(scores, np.asarray(y)[None, :, None], axis=2)[..., 0]
            rivals = np.where(np.arange(n_outputs)[None, None, :] == np.asarray(y)[None, :, None],
                              -np.inf, scores).max(axis=2)
            return picked - rivals

        return Evaluator(per_sample_loss=softmax_loss,
                         predict=lambda W, X: linear_scores(W, X, n_outputs).argmax(axis=2),
                         margins=softmax_margins)
    if loss == "logistic":
        per_sample = lambda W, X, y: np.logaddexp(0.0, -_signed(y) * (W @ X.T))  # noqa: E731
    elif loss == "exponential":
        per_sample = lambda W, X, y: np.exp(-_signed(y) * (W @ X.T))  # noqa: E731
    else:
        raise ValueError(f"loss: must be one of logistic, exponential, softmax, squared; got {loss!r}")
    return Evaluator(per_sample_loss=per_sample, predict=lambda W, X: (W @ X.T > 0).astype(np.int64),
                     margins=_binary_margins)


def _binary_margins(W: np.ndarray, X: np.ndarray, y: np.ndarray) -> np.ndarray:
    return _signed(y) * (W @ X.T)
