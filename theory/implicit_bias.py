"""Head tuning on separable data: the midpoint lemma and an a priori margin-gap rate for full-batch GD
on the mean exponential or logistic loss (docs/theory.md, Lemma H.2 and Theorem H.3).
"""
from __future__ import annotations

import functools
import math
from typing import NamedTuple

import numpy as np

from theory.estimators import max_margin_solution, radius

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


class SeedSpreadBound(NamedTuple):
    """Two a priori bounds on the seed spread mean_k ‖u_k(t) − ū(t)‖² of GD heads on one S."""

    midpoint: float
    contraction: float


def seed_spread_bound(Z: np.ndarray, inits: np.ndarray, *, loss: str, lr: float,
                      iteration: int) -> SeedSpreadBound:
    """Theorem S: bounds on the seed spread of K heads trained by full-batch GD on the same S.

    Parameters
    ----------
    Z : ndarray (n, d)
        Signed points z_j = y_j x_j of a separable binary training set.
    inits : ndarray (K, d)
        The heads' initial weights (one row per seed).
    loss : {"exponential", "logistic"}
    lr : float
        Step η; the bounds need :func:`step_size_condition` for every initial loss.
    iteration : int >= 1

    Returns
    -------
    SeedSpreadBound
        ``midpoint`` = mean_k M(ε̄_t(w_k(0)), γ)² (Lemmas H.1, H.3 and Theorem H.5 on one set: the
        spread is at most the mean squared distance to u*). ``contraction`` = spread of the initial
        weights · (γ / log(1/(κ n max_k Ū_t)))² (GD is non-expansive, Lemma S.1, and the norms grow,
        Theorem H.5 (v)). +inf where the theorem does not apply (step too large, not separable, or
        κ n Ū_t >= 1).
    """
    Z = np.asarray(Z, dtype=np.float64)
    inits = np.atleast_2d(np.asarray(inits, dtype=np.float64))
    if inits.shape[1] != Z.shape[1]:
        raise ValueError(f"inits must have {Z.shape[1]} columns like Z, got {inits.shape[1]}")
    if int(iteration) < 1:
        raise ValueError(f"iteration must be >= 1, got {iteration!r}")
    solution = max_margin_solution(Z)
    init_losses = [mean_loss(loss, Z @ w) for w in inits]
    R, n, gamma = radius(Z), len(Z), solution.gamma
    if not solution.separable or not all(step_size_condition(loss, lr=lr, radius=R, init_loss=value)
                                         for value in init_losses):
        return SeedSpreadBound(math.inf, math.inf)
    gaps, finals = [], []
    for w, init_loss in zip(inits, init_losses):
        norm = float(np.linalg.norm(w))
        gaps.append(margin_gap_bound(loss, n=n, gamma=gamma, radius=R, lr=lr, iteration=int(iteration),
                                     init_norm=norm, init_loss=init_loss))
        radii = _reference_radii(gamma, lr, int(iteration), norm)
        finals.append(float(loss_upper_bound(np.array([int(iteration)]), gamma=gamma, lr=lr,
                                             init_norm=norm, init_loss=init_loss, radii=radii)[0]))
    midpoint = float(np.mean([midpoint_direction_bound(gap, gamma) ** 2 for gap in gaps]))
    kappa = 1.0 if loss == "exponential" else 2.0
    worst = kappa * n * max(finals)
    if worst >= 1.0:
        return SeedSpreadBound(midpoint, math.inf)
    init_spread = float(np.mean(np.sum((inits - inits.mean(axis=0)) ** 2, axis=1)))
    return SeedSpreadBound(midpoint, init_spread * (gamma / math.log(1.0 / worst)) ** 2)


def measured_contraction_spread_bound(inits: np.ndarray, heads: np.ndarray) -> float:
    """Theorem S (b) with the measured norms: spread ≤ (1/2K²) Σ_{k,l} 4‖w_k(0) − w_l(0)‖² / (‖w_k‖ + ‖w_l‖)².

    Valid for heads trained by full-batch GD on one S under :func:`step_size_condition` (pairwise
    distances never grow, Lemma S.1; Dunkl–Williams: ‖a/‖a‖ − b/‖b‖‖ ≤ 2‖a − b‖/(‖a‖ + ‖b‖)). Unlike the
    a posteriori Theorem H it can fail for heads not so trained.
    """
    inits = np.asarray(inits, dtype=np.float64)
    heads = np.asarray(heads, dtype=np.float64)
    if inits.shape != heads.shape or inits.ndim != 2:
        raise ValueError(f"inits and heads must have the same shape (K, d), got {inits.shape} and {heads.shape}")
    start = np.sum((inits[:, None] - inits[None]) ** 2, axis=-1)
    norms = np.linalg.norm(heads, axis=1)
    total = norms[:, None] + norms[None]
    ratio = np.divide(4.0 * start, total ** 2, out=np.full_like(start, np.inf), where=total > 0)
    np.fill_diagonal(ratio, 0.0)
    return float(np.sum(ratio) / (2 * len(heads) ** 2))
