"""Head tuning on separable data: the midpoint lemma and an a priori margin-gap rate for full-batch GD
on the mean exponential or logistic loss (docs/theory.md, Lemma H.2 and Theorem H.3).
"""
from __future__ import annotations

import functools
import math

import numpy as np

EXPONENTIAL_TAILED = ("exponential", "logistic")


def midpoint_direction_bound(gap: float, gamma: float) -> float:
    """Lemma H.2: a unit u whose normalised margin is γ − ε satisfies ‖u − u*‖ ≤ √(x(4 − x)), x = ε/γ.

    For x ≥ 2 (including a head that does not separate) only the trivial bound 2 holds. The weaker
    form 2√(ε/γ) follows from √(x(4 − x)) ≤ 2√x.
    """
    if gamma <= 0:
        return 2.0
    ratio = min(max(gap, 0.0) / gamma, 2.0)
    return math.sqrt(ratio * (4.0 - ratio))


def step_size_condition(loss: str, *, lr: float, radius: float, init_loss: float) -> bool:
    """The step-size assumption of Theorem H.3.

    Exponential: η R² L(w0) ≤ ½ (then GD is a descent method and L(w_{s+1}) ≤ L(w_s) − (η/2)‖∇L‖²).
    Logistic: η R² ≤ 4 (η ≤ 1/β with β = R²/4) and η R² L(w0) ≤ 2.
    """
    scale = lr * radius ** 2
    if loss == "exponential":
        return scale * init_loss <= 0.5
    if loss == "logistic":
        return scale <= 4.0 and scale * init_loss <= 2.0
    raise ValueError(f"loss must be one of {EXPONENTIAL_TAILED}, got {loss!r}")


def _reference_radii(gamma: float, lr: float, iteration: int, init_norm: float) -> np.ndarray:
    top = (math.log(2.0 + lr * gamma ** 2 * iteration) + 1.0) * 2.0 / gamma + init_norm
    return np.linspace(0.0, top, 257)


def loss_upper_bound(steps: np.ndarray, *, gamma: float, lr: float, init_norm: float,
                     init_loss: float, radii: np.ndarray) -> np.ndarray:
    """Ū_s ≥ L(w_s): min(L(w0), min_r e^{−rγ} + (‖w0‖ + r)²/(2ηs) + L(w0)/s) (Lemma H.4).

    With a fixed grid of reference radii r the bound is non-increasing in s.
    """
    steps = np.asarray(steps, dtype=np.float64)[:, None]
    with np.errstate(divide="ignore"):
        candidates = (np.exp(-radii * gamma)[None, :] + (init_norm + radii[None, :]) ** 2 / (2 * lr * steps)
                      + init_loss / steps)
    return np.minimum(init_loss, candidates.min(axis=1))


def _block_starts(iteration: int) -> np.ndarray:
    """Left ends of blocks partitioning [0, t): single steps up to 1024, then 1 % geometric growth."""
    exact = np.arange(min(iteration, 1024))
    if iteration <= 1024:
        return exact
    count = int(math.ceil(math.log(iteration / 1024) / math.log(1.01))) + 1
    geometric = np.unique(np.floor(1024 * 1.01 ** np.arange(count)).astype(np.int64))
    return np.concatenate([exact, geometric[geometric < iteration]])


@functools.lru_cache(maxsize=65536)
def margin_gap_bound(loss: str, *, n: int, gamma: float, radius: float, lr: float, iteration: int,
                     init_norm: float, init_loss: float) -> float:
    """Theorem H.3: an a priori upper bound on ε_t = γ − min_j z_j·w_t/‖w_t‖ after t GD steps.

    GD on the mean loss L(w) = (1/n) Σ ℓ(z_j·w) with step η from w0, under
    :func:`step_size_condition`. With ψ = −log(n L), K_t = γ‖w0‖ − ψ(w0) + c_t + b_t,

        ε_t ≤ γ · max(K_t, 0) / log(1 / (κ n Ū_t)),   κ = 1 (exponential), 2 (logistic),

    where c_t = γR Σ_{s<t} ηŪ_s (τ_s + ηŪ_s R²/2), τ_s = 0 (exponential) or min(1, e^{nŪ_s} − 1)
    (logistic), b_t = 0 (exponential) or nŪ_t (logistic). +inf while κ n Ū_t ≥ 1.
    """
    if loss not in EXPONENTIAL_TAILED:
        raise ValueError(f"loss must be one of {EXPONENTIAL_TAILED}, got {loss!r}")
    if gamma <= 0 or iteration < 1:
        return math.inf
    radii = _reference_radii(gamma, lr, iteration, init_norm)
    starts = _block_starts(iteration)
    lengths = np.diff(np.append(starts, iteration))
    bounds = loss_upper_bound(np.maximum(starts, 1), gamma=gamma, lr=lr, init_norm=init_norm,
                              init_loss=init_loss, radii=radii)
    bounds[starts == 0] = init_loss
    steps = lr * bounds
    tail = 0.0 if loss == "exponential" else 1.0
    tau = tail * np.minimum(1.0, np.expm1(np.minimum(n * bounds, 50.0)))
    c_t = gamma * radius * float(np.sum(lengths * steps * (tau + steps * radius ** 2 / 2)))
    final = float(loss_upper_bound(np.array([iteration]), gamma=gamma, lr=lr, init_norm=init_norm,
                                   init_loss=init_loss, radii=radii)[0])
    kappa = 1.0 if loss == "exponential" else 2.0
    if kappa * n * final >= 1.0:
        return math.inf
    psi0 = -math.log(n * init_loss)
    numerator = gamma * init_norm - psi0 + c_t + tail * n * final
    return gamma * max(numerator, 0.0) / math.log(1.0 / (kappa * n * final))


def mean_loss(loss: str, margins: np.ndarray) -> float:
    """L = mean_j ℓ(m_j) for ℓ(s) = e^{−s} (exponential) or log(1 + e^{−s}) (logistic)."""
    margins = np.asarray(margins, dtype=np.float64)
    if loss == "exponential":
        return float(np.mean(np.exp(-margins)))
    if loss == "logistic":
        return float(np.mean(np.logaddexp(0.0, -margins)))
    raise ValueError(f"loss must be one of {EXPONENTIAL_TAILED}, got {loss!r}")
