"""MHLoss on fixed features: what H independently initialised heads change (docs/theory.md §M).

With features fixed, the multi-head objective (1/H) Σ_h L(w_h) (``reduction="mean"``) or Σ_h L(w_h)
(``"sum"``) decouples: each head runs plain GD with step η/H (mean) or η (sum), and the prediction is
the mean logit, i.e. the linear head w̄ = (1/H) Σ_h w_h. Every gradient of L lies in the row space of X,
so each head's component in the null space of X stays at its initial value: for i.i.d. N(0, σ²I)
initialisations the null-space part of w̄ is N(0, (σ²/H) P_null) exactly.
"""
from __future__ import annotations

import numpy as np
from scipy.linalg import null_space

from theory.asymptotics import REDUCTIONS, asymptotic_weights


def _check(n_heads: int, reduction: str) -> None:
    if int(n_heads) < 1:
        raise ValueError(f"n_heads must be >= 1, got {n_heads!r}")
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}")


def per_head_lr(lr: float, *, n_heads: int, reduction: str = "mean") -> float:
    """The step size each head effectively trains with: η/H (mean reduction) or η (sum)."""
    _check(n_heads, reduction)
    return lr / n_heads if reduction == "mean" else lr


def encoder_gradient_scale(*, n_heads: int, reduction: str = "mean") -> float:
    """Encoder gradient of the multi-head loss relative to the mean over heads of their gradients.

    ∇_θ Σ_h ℓ(w_h·φ_θ(x)) = H · (1/H) Σ_h ∇_θ ℓ(w_h·φ_θ(x)): the summed loss multiplies the encoder's
    gradient (hence its effective learning rate) by H; the mean reduction leaves it at 1.
    """
    _check(n_heads, reduction)
    return float(n_heads) if reduction == "sum" else 1.0


def mean_head_null_variance(X: np.ndarray, *, init_std: float, n_heads: int) -> float:
    """E‖P_null w̄‖² = σ² (d − rank X) / H: the init-dependent part of the mean head, at every t."""
    _check(n_heads, "mean")
    if init_std < 0:
        raise ValueError(f"init_std must be >= 0, got {init_std!r}")
    return init_std ** 2 * null_space(np.asarray(X, dtype=np.float64)).shape[1] / n_heads


def mean_head_direction_variance(X: np.ndarray, y: np.ndarray, *, lr: float, iteration: int,
                                 init_std: float, n_heads: int, reduction: str = "mean") -> float:
    """First-order prediction of the seed variance E‖ū − E ū‖² of the mean head's direction.

    On separable data the row-space part of every head tends to the init-independent ŵ log t + w̃
    (theory.asymptotics, with the per-head step); the null-space part is the mean of the H initial
    null-space parts. To first order in the null-space part ν, ū ≈ c/‖c‖ + (I − ĉĉᵀ)ν/‖c‖ with ν ⊥ c,
    so E‖ū − E ū‖² ≈ E‖ν‖²/‖c‖² = σ² (d − rank X) / (H ‖c(t)‖²).
    """
    step = per_head_lr(lr, n_heads=n_heads, reduction=reduction)
    row_part = asymptotic_weights(X, y, lr=step, iteration=iteration, reduction="mean")
    return mean_head_null_variance(X, init_std=init_std, n_heads=n_heads) / float(row_part @ row_part)
