"""Certified instances for checking a bound: data whose constants are known exactly and trained pairs
(A(S), A(S\\i)) whose stability is measured exactly (float64 gradient descent, no estimation).

Separable data and least-squares tasks come from :mod:`synth` (γ, u*, support vectors; μ, β, D
certified by construction); the pairs are trained here with plain numpy gradient descent, so that a
bound can be checked without the sweep machinery.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from synth import make_quadratic_task, make_separable
from theory.context import RunContext
from theory.estimators import least_squares_constants


@dataclass(frozen=True)
class TrainedPair:
    """A model trained on S and one trained on S\\i, with what they measure.

    Attributes
    ----------
    run : RunContext
        What a bound's ``estimate_constants`` reads.
    measured : dict
        ``parameter_stability`` ‖w_S − w_{S\\i}‖, ``head_direction_stability`` (the distance of the
        unit directions) and ``pointwise_hypothesis_stability`` |ℓ_i(w_S) − ℓ_i(w_{S\\i})|.
    description : dict
        The parameters the pair was built from (what a counterexample reports).
    """

    run: RunContext
    measured: dict[str, float]
    description: dict = field(default_factory=dict)


def _directions(w: np.ndarray, w_loo: np.ndarray) -> float:
    norm, norm_loo = np.linalg.norm(w), np.linalg.norm(w_loo)
    if norm == 0 or norm_loo == 0:
        return float("nan")
    return float(np.linalg.norm(w / norm - w_loo / norm_loo))


def _batches(rng: np.random.Generator, members: np.ndarray, batch_size: int | None, steps: int):
    for _ in range(steps):
        yield members if batch_size is None else rng.choice(members, size=batch_size, replace=False)


def quadratic_pair(*, n_samples: int, n_features: int, distance: float, noise: float, seed: int,
                   lr_scale: float, iteration: int, left_out: int, start: str = "w0",
                   batch_size: int | None = None, step_reference: str = "beta") -> TrainedPair:
    """Least squares ℓ = ½(x·w − y)² (mean over samples) fine-tuned by T steps of GD from w0.

    ``start`` is ``"w0"`` (the task's pre-trained weights, D = ‖w0 − w*_S‖ > 0) or ``"w_star"``
    (the empirical minimiser: D = 0, where Theorem F's gradient term alone must hold). The step is
    ``lr_scale / β`` with β the largest eigenvalue of H_S and H_{S\\i} (``step_reference="beta_sample"``:
    over the largest per-sample curvature max_j ‖x_j‖², SGD's step limit); a ``batch_size`` makes it
    minibatch SGD (samples drawn without replacement, the same draws for S and S\\i where they can be).
    """
    task = make_quadratic_task(n_samples, n_features, distance=distance, noise=noise, random_state=seed)
    X, y = task.X, task.y
    w0 = task.arrays["w0"] if start == "w0" else task.arrays["w_star"]
    keep = np.delete(np.arange(n_samples), left_out)
    beta = max(least_squares_constants(X, y, w0).beta,
               float(np.linalg.eigvalsh(X[keep].T @ X[keep] / (n_samples - 1))[-1]))
    lr = lr_scale / (beta if step_reference == "beta" else float(np.max(np.sum(X ** 2, axis=1))))

    def train(members: np.ndarray) -> np.ndarray:
        rng = np.random.default_rng(seed)
        w = w0.copy()
        for batch in _batches(rng, members, batch_size, iteration):
            w = w - lr * X[batch].T @ (X[batch] @ w - y[batch]) / len(batch)
        return w

    w_full, w_loo = train(np.arange(n_samples)), train(keep)
    loss = lambda w: 0.5 * float(X[left_out] @ w - y[left_out]) ** 2  # noqa: E731
    run = RunContext(setting="full", model="linear", loss="squared", X=X, y=y, left_out=left_out,
                     lr=lr, iteration=iteration, batch_size=batch_size, w0=w0, w_full=w_full,
                     w_loo=w_loo, arrays=task.arrays, card=task.card)
    measured = {"parameter_stability": float(np.linalg.norm(w_full - w_loo)),
                "head_direction_stability": _directions(w_full, w_loo),
                "pointwise_hypothesis_stability": abs(loss(w_full) - loss(w_loo))}
    return TrainedPair(run, measured, dict(kind="quadratic", n_samples=n_samples, n_features=n_features,
                                           distance=distance, noise=noise, seed=seed, lr_scale=lr_scale,
                                           iteration=iteration, left_out=left_out, start=start,
                                           batch_size=batch_size, step_reference=step_reference))


HEAD_LOSSES = ("logistic", "exponential", "squared")


def _head_gradient(loss: str, Z: np.ndarray, w: np.ndarray) -> np.ndarray:
    margins = Z @ w
    if loss == "logistic":
        weights = -0.5 * (1.0 - np.tanh(0.5 * margins))  # d/dm log(1 + e^{-m}) = -1/(1 + e^m)
    elif loss == "exponential":
        weights = -np.exp(-margins)
    else:  # squared: ½(m − 1)² on the signed margin, i.e. ½(x·w − s)²
        weights = margins - 1.0
    return Z.T @ weights / len(Z)


def head_pair(*, n_samples: int, n_features: int, margin: float, seed: int, lr_scale: float,
              iteration: int, left_out: int, loss: str = "logistic", label_noise: float = 0.0,
              n_classes: int = 2, batch_size: int | None = None, n_heads: int = 1) -> TrainedPair:
    """A linear head (no bias) trained by T steps of GD on separable data with a certified margin.

    The step is ``lr_scale / R²`` (R the data radius, 1 here); the head starts at 0 (``n_heads`` > 1:
    the mean of that many heads started at seeded random points, as MHLoss does). ``label_noise`` >
    0 makes the data non-separable; ``n_classes`` > 2 trains the one-vs-rest head of class 1.
    """
    data = make_separable(n_samples, n_features, margin=margin, n_classes=n_classes,
                          label_noise=label_noise, n_test=8, random_state=seed)
    X, y = data.X, data.y
    signs = np.where(y == 1, 1.0, -1.0)
    Z = signs[:, None] * X
    lr = lr_scale / float(np.max(np.sum(X ** 2, axis=1)))
    keep = np.delete(np.arange(n_samples), left_out)
    rng = np.random.default_rng(seed)
    starts = (np.zeros((1, n_features)) if n_heads == 1
              else 0.1 * rng.standard_normal((n_heads, n_features)))

    def train(members: np.ndarray) -> np.ndarray:
        heads = []
        for start in starts:
            order = np.random.default_rng(seed)
            w = start.copy()
            for batch in _batches(order, members, batch_size, iteration):
                w = w - lr * _head_gradient(loss, Z[batch], w)
            heads.append(w)
        return np.mean(heads, axis=0)

    w_full, w_loo = train(np.arange(n_samples)), train(keep)
    if loss == "squared":
        point_loss = lambda w: 0.5 * float(Z[left_out] @ w - 1.0) ** 2  # noqa: E731
    elif loss == "exponential":
        point_loss = lambda w: float(np.exp(-Z[left_out] @ w))  # noqa: E731
    else:
        point_loss = lambda w: float(np.logaddexp(0.0, -Z[left_out] @ w))  # noqa: E731
    run = RunContext(setting="head", model="linear", loss=loss, X=X, y=y, left_out=left_out, lr=lr,
                     iteration=iteration, batch_size=batch_size, w0=starts.mean(axis=0),
                     w_full=w_full, w_loo=w_loo, n_heads=n_heads, arrays=data.arrays, card=data.card)
    measured = {"parameter_stability": float(np.linalg.norm(w_full - w_loo)),
                "head_direction_stability": _directions(w_full, w_loo),
                "pointwise_hypothesis_stability": abs(point_loss(w_full) - point_loss(w_loo))}
    return TrainedPair(run, measured, dict(kind="separable", n_samples=n_samples, n_features=n_features,
                                           margin=margin, seed=seed, lr_scale=lr_scale,
                                           iteration=iteration, left_out=left_out, loss=loss,
                                           label_noise=label_noise, n_classes=n_classes,
                                           batch_size=batch_size, n_heads=n_heads))
