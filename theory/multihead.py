"""MHLoss on fixed features: what H independently initialised heads change (docs/theory.md §M).

With features fixed, the multi-head objective (1/H) Σ_h L(w_h) (``reduction="mean"``) or Σ_h L(w_h)
(``"sum"``) decouples: each head runs plain GD with step η/H (mean) or η (sum), and the prediction is
the mean logit, i.e. the linear head w̄ = (1/H) Σ_h w_h. The balanced reading (``"balanced"``: the
mean objective with each head's gradient multiplied by H) steps each head by η as the sum does, and
leaves the encoder's gradient the mean over heads, as the mean does. Every gradient of L lies in the row space of X,
so each head's component in the null space of X stays at its initial value: for i.i.d. N(0, σ²I)
initialisations the null-space part of w̄ is N(0, (σ²/H) P_null) exactly. The row-space part is
init-dependent too: its component in span(X) ⊖ span(support vectors) moves only through the
non-support gradients and keeps an init-dependent limit, so full-rank X does not make the seed
variance vanish; GD being non-expansive, the row-space variance never exceeds its initial σ² rank X / H.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np
from scipy.linalg import null_space

from theory.asymptotics import asymptotic_weights

HEAD_REDUCTIONS = ("balanced", "sum", "mean")


def _check(n_heads: int, reduction: str) -> None:
    if int(n_heads) < 1:
        raise ValueError(f"n_heads must be >= 1, got {n_heads!r}")
    if reduction not in HEAD_REDUCTIONS:
        raise ValueError(f"reduction must be one of {HEAD_REDUCTIONS}, got {reduction!r}")


def per_head_lr(lr: float, *, n_heads: int, reduction: str = "mean") -> float:
    """The step size each head effectively trains with: η/H (mean reduction) or η (sum, balanced)."""
    _check(n_heads, reduction)
    return lr / n_heads if reduction == "mean" else lr


def encoder_gradient_scale(*, n_heads: int, reduction: str = "mean") -> float:
    """Encoder gradient of the multi-head loss relative to the mean over heads of their gradients.

    ∇_θ Σ_h ℓ(w_h·φ_θ(x)) = H · (1/H) Σ_h ∇_θ ℓ(w_h·φ_θ(x)): the summed loss multiplies the encoder's
    gradient (hence its effective learning rate) by H; the mean and balanced readings leave it at 1.
    """
    _check(n_heads, reduction)
    return float(n_heads) if reduction == "sum" else 1.0


def mean_head_null_variance(X: np.ndarray, *, init_std: float, n_heads: int) -> float:
    """E‖P_null w̄‖² = σ² (d − rank X) / H: the init-dependent part of the mean head, at every t."""
    _check(n_heads, "mean")
    if init_std < 0:
        raise ValueError(f"init_std must be >= 0, got {init_std!r}")
    return init_std ** 2 * null_space(np.asarray(X, dtype=np.float64)).shape[1] / n_heads


class VarianceRange(NamedTuple):
    """First-order lower and upper values of a seed variance."""

    low: float
    high: float


def mean_head_direction_variance(X: np.ndarray, y: np.ndarray, *, lr: float, iteration: int,
                                 init_std: float, n_heads: int, reduction: str = "mean") -> VarianceRange:
    """First-order range of the seed variance E‖ū − E ū‖² of the mean head's direction (Prop. M.3).

    With w̄ = c̄ + ν̄ (row space of X, null space), ν̄ ~ N(0, σ²P_null/H) is independent of c̄(t), and GD
    is non-expansive, so E‖c̄(t) − E c̄(t)‖² ≤ σ² rank X / H at every t. To first order in the
    init-dependent part, with ‖E w̄(t)‖ taken from the asymptotic predictor ‖c(t)‖ (theory.asymptotics,
    per-head step):

        σ² (d − rank X) / (H ‖c(t)‖²)  ≤  E‖ū − E ū‖²  ≤  σ² d / (H ‖c(t)‖²).

    The lower end is the null-space part alone; the upper end adds the row-space part at its initial
    variance. The former statement, the lower end as the prediction, is 0 for full-rank X although
    the component in span(X) ⊖ span(support vectors) keeps an init-dependent limit.
    """
    step = per_head_lr(lr, n_heads=n_heads, reduction=reduction)
    row_part = asymptotic_weights(X, y, lr=step, iteration=iteration, reduction="mean")
    scale = float(row_part @ row_part)
    dimension = np.asarray(X).shape[1]
    return VarianceRange(mean_head_null_variance(X, init_std=init_std, n_heads=n_heads) / scale,
                         init_std ** 2 * dimension / (n_heads * scale))
