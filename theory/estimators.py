"""Estimators of the constants the bounds use: extreme Hessian eigenvalues (Lanczos on Hessian-vector
products, or exact for quadratics), the hard-margin solution of S and of S\\i by an exact QP, the radius
R, the gradient norms ρ_i and the distance D. Per-dataset quantities are cached on a content hash,
because verify asks for the constants of every left-out index and checkpoint of the same dataset.
"""
from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass

import numpy as np
from scipy.linalg import eigvalsh, lstsq
from scipy.optimize import nnls

from theory.lanczos import lanczos_extreme_eigenvalues


class ArrayKey:
    """A hashable handle on float64 arrays; two keys are equal when their contents are equal."""

    __slots__ = ("arrays", "_digest")

    def __init__(self, *arrays: np.ndarray):
        self.arrays = tuple(np.ascontiguousarray(a, dtype=np.float64) for a in arrays)
        digest = hashlib.blake2b(digest_size=20)
        for array in self.arrays:
            digest.update(repr(array.shape).encode())
            digest.update(array.tobytes())
        self._digest = digest.digest()

    def __hash__(self) -> int:
        return hash(self._digest)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ArrayKey) and self._digest == other._digest


def radius(X: np.ndarray) -> float:
    """R = max_j ‖x_j‖."""
    return float(np.max(np.linalg.norm(np.asarray(X, float), axis=1), initial=0.0))


def signed_points(X: np.ndarray, y: np.ndarray) -> np.ndarray:
    """z_j = y_j x_j with labels mapped to ±1 (labels 0/1 or ±1: positive means +1)."""
    signs = np.where(np.asarray(y) > 0, 1.0, -1.0)
    return signs[:, None] * np.asarray(X, dtype=np.float64)


def is_binary(y: np.ndarray) -> bool:
    """True when the labels take at most two values (0/1 or ±1)."""
    return np.unique(np.asarray(y)).size <= 2


@dataclass(frozen=True)
class MaxMargin:
    """Hard-margin (no bias) solution of min ½‖w‖² s.t. z_j·w ≥ 1.

    Attributes
    ----------
    separable : bool
        False when no w satisfies the constraints (then the other fields are zeros).
    gamma : float
        Max margin γ = max_{‖u‖=1} min_j z_j·u = 1/‖ŵ‖.
    direction : ndarray (d,)
        u* = ŵ/‖ŵ‖.
    svm_weights : ndarray (d,)
        ŵ, the solution scaled to margin 1.
    dual : ndarray (n,)
        Multipliers α ≥ 0 with ŵ = Σ α_j z_j and α_j (z_j·ŵ − 1) = 0.
    support : ndarray of int
        Indices with α_j > 0.
    kkt_residual : float
        Largest violation of stationarity, primal feasibility and complementary slackness.
    """

    separable: bool
    gamma: float
    direction: np.ndarray
    svm_weights: np.ndarray
    dual: np.ndarray
    support: np.ndarray
    kkt_residual: float


def _kkt_residual(Z: np.ndarray, w: np.ndarray, alpha: np.ndarray) -> float:
    slack = Z @ w - 1.0
    return float(max(np.max(np.abs(w - Z.T @ alpha)), np.max(-slack, initial=0.0),
                     np.max(np.abs(alpha * slack), initial=0.0)))


def _solve_max_margin(Z: np.ndarray) -> MaxMargin:
    n, d = Z.shape
    # Least-distance programming (Lawson & Hanson 1974, ch. 23): min ‖w‖ s.t. Zw ≥ 1 is solved exactly
    # by the NNLS problem min_{u ≥ 0} ‖[Zᵀ; 1ᵀ]u − e_{d+1}‖ (active-set, finite termination).
    E = np.vstack([Z.T, np.ones((1, n))])
    f = np.zeros(d + 1)
    f[-1] = 1.0
    u, _ = nnls(E, f, maxiter=50 * (n + d + 1))
    r = E @ u - f
    if -r[-1] <= 1e-12 or np.linalg.norm(r[:-1]) <= 1e-12:
        zeros = np.zeros(d)
        return MaxMargin(False, 0.0, zeros, zeros, np.zeros(n), np.array([], dtype=np.int64), np.inf)
    alpha = u / (-r[-1])
    w = Z.T @ alpha
    support = np.flatnonzero(alpha > 1e-10 * alpha.max())
    # Polish on the support: there the constraints are active, Z_S Z_Sᵀ α_S = 1 with w = Z_Sᵀ α_S.
    polished = np.zeros(n)
    polished[support] = lstsq(Z[support] @ Z[support].T, np.ones(support.size))[0]
    if np.all(polished[support] > 0):
        w_polished = Z.T @ polished
        if _kkt_residual(Z, w_polished, polished) <= _kkt_residual(Z, w, alpha):
            alpha, w = polished, w_polished
    norm = float(np.linalg.norm(w))
    return MaxMargin(True, 1.0 / norm, w / norm, w, alpha, support, _kkt_residual(Z, w, alpha))


@functools.lru_cache(maxsize=256)
def _cached_max_margin(key: ArrayKey) -> MaxMargin:
    return _solve_max_margin(key.arrays[0])


def max_margin_solution(Z: np.ndarray) -> MaxMargin:
    """Exact hard-margin solution for signed points ``Z`` (rows z_j = y_j x_j), cached on content."""
    return _cached_max_margin(ArrayKey(Z))


def max_margin(X: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """(γ, u*, support indices) of the hard-margin, no-bias problem on binary data.

    γ is 0 and u* is zero when the data are not linearly separable through the origin.
    """
    if not is_binary(y):
        raise ValueError(f"y must hold at most two classes for max_margin, got {np.unique(y).size}")
    solution = max_margin_solution(signed_points(X, y))
    return solution.gamma, solution.direction, solution.support


@functools.lru_cache(maxsize=4096)
def _cached_loo_max_margin(key: ArrayKey, left_out: int) -> MaxMargin:
    Z = key.arrays[0]
    full = _cached_max_margin(key)
    if full.separable and full.dual[left_out] == 0.0:
        # The same multipliers satisfy the KKT conditions of S\i, so the solution is unchanged.
        keep = np.delete(np.arange(len(Z)), left_out)
        support = np.flatnonzero(full.dual[keep] > 0)
        return MaxMargin(True, full.gamma, full.direction, full.svm_weights, full.dual[keep], support,
                         full.kkt_residual)
    return _solve_max_margin(np.delete(Z, left_out, axis=0))


def loo_max_margin_solution(Z: np.ndarray, left_out: int) -> MaxMargin:
    """Hard-margin solution of S\\i (exact QP; reused from S when z_i has a zero multiplier)."""
    if not 0 <= left_out < len(Z):
        raise ValueError(f"left_out must be in [0, {len(Z) - 1}], got {left_out}")
    return _cached_loo_max_margin(ArrayKey(Z), int(left_out))


def support_vector_term(Z: np.ndarray, left_out: int) -> float:
    """‖u*_S − u*_{S\\i}‖: zero unless z_i has a positive multiplier, then computed by the QP on S\\i."""
    full = max_margin_solution(Z)
    loo = loo_max_margin_solution(Z, left_out)
    return float(np.linalg.norm(full.direction - loo.direction))


def normalised_margin(Z: np.ndarray, w: np.ndarray) -> float:
    """min_j z_j·w/‖w‖ (−inf for a zero head)."""
    norm = float(np.linalg.norm(w))
    return float(np.min(Z @ w)) / norm if norm > 0 else -np.inf


def hessian_extreme_eigenvalues(hvp, dim: int, *, tol: float = 1e-10) -> tuple[float, float]:
    """Smallest and largest eigenvalue of a symmetric operator given by ``hvp(v) -> H v``.

    Lanczos with full re-orthogonalisation from a fixed start vector
    (:func:`theory.lanczos.lanczos_extreme_eigenvalues`): the same operator gives the same bits in
    every process, which ARPACK does not.
    """
    return lanczos_extreme_eigenvalues(hvp, dim, tol=tol)


def spectral_norm(hvp, dim: int, *, tol: float = 1e-10) -> float:
    """‖H‖₂ of a symmetric operator given by ``hvp``: the larger |extreme eigenvalue|."""
    low, high = hessian_extreme_eigenvalues(hvp, dim, tol=tol)
    return max(abs(low), abs(high))


def objective_functions(objective, w: np.ndarray, sample_weights: np.ndarray):
    """Gradient and Hessian-vector product (numpy in, numpy out) of a torch objective at ``w``.

    ``objective(w_flat, sample_weights) -> scalar`` is RunContext.objective. The HVP differentiates
    the gradient's graph, built once and retained (double backward): about four times faster per
    product than re-tracing ``torch.func.jvp(torch.func.grad(...))`` on each Lanczos step, with the
    same values to rounding.
    """
    import torch

    point = torch.tensor(np.asarray(w, dtype=np.float64), requires_grad=True)
    weights = torch.as_tensor(np.asarray(sample_weights, dtype=np.float64))
    (gradient,) = torch.autograd.grad(objective(point, weights), point, create_graph=True)

    def hvp(v: np.ndarray) -> np.ndarray:
        tangent = torch.as_tensor(np.asarray(v, dtype=np.float64))
        if not gradient.requires_grad:  # an objective linear in w has a zero Hessian
            return np.zeros_like(tangent.numpy())
        (product,) = torch.autograd.grad(gradient, point, grad_outputs=tangent, retain_graph=True)
        return product.detach().numpy()

    return gradient.detach().numpy(), hvp


@dataclass(frozen=True)
class LeastSquaresConstants:
    """Exact constants of F_S(w) = (1/2n)‖Xw − y‖² + (λ/2)‖w − w0‖² (Theorem F, quadratic case).

    ``w_star`` is the minimiser nearest to w0 (the limit of GD from w0); ``rho`` holds
    ρ_j = ‖∇f_j(w*)‖ for the regularised per-sample losses f_j = ℓ_j + (λ/2)‖w − w0‖².
    """

    n: int
    mu: float
    beta: float
    w_star: np.ndarray
    D: float
    rho: np.ndarray


@functools.lru_cache(maxsize=256)
def _least_squares(key: ArrayKey, l2sp: float, weight_decay: float) -> LeastSquaresConstants:
    X, y, w0 = key.arrays
    n, d = X.shape
    hessian = X.T @ X / n + (l2sp + weight_decay) * np.eye(d)
    spectrum = eigvalsh(hessian)
    step = lstsq(hessian, X.T @ (y - X @ w0) / n - weight_decay * w0, cond=1e-12)[0]
    w_star = w0 + step
    gradients = X * (X @ w_star - y)[:, None] + l2sp * (w_star - w0) + weight_decay * w_star
    return LeastSquaresConstants(n, float(max(spectrum[0], 0.0)), float(spectrum[-1]), w_star,
                                 float(np.linalg.norm(step)), np.linalg.norm(gradients, axis=1))


def least_squares_constants(X: np.ndarray, y: np.ndarray, w0: np.ndarray, l2sp: float = 0.0,
                            weight_decay: float = 0.0) -> LeastSquaresConstants:
    """Exact μ, β, w*, D and ρ_j of least squares fine-tuned from ``w0`` with ½ l2sp ‖w − w0‖² and
    ½ weight_decay ‖w‖² added to every per-sample loss (cached)."""
    if l2sp < 0:
        raise ValueError(f"l2sp must be >= 0, got {l2sp}")
    if weight_decay < 0:
        raise ValueError(f"weight_decay must be >= 0, got {weight_decay}")
    return _least_squares(ArrayKey(X, y, w0), float(l2sp), float(weight_decay))


@functools.lru_cache(maxsize=8192)
def _least_squares_loo(key: ArrayKey, l2sp: float, left_out: int) -> tuple[float, float, float]:
    X = key.arrays[0]
    n, d = X.shape
    x_i = X[left_out]
    gram_loo = (X.T @ X - np.outer(x_i, x_i)) / (n - 1)
    spectrum = eigvalsh(gram_loo)
    difference = eigvalsh((np.outer(x_i, x_i) - gram_loo) / n)
    return (float(max(spectrum[0] + l2sp, 0.0)), float(spectrum[-1] + l2sp),
            float(np.max(np.abs(difference))))


def least_squares_loo_constants(X: np.ndarray, y: np.ndarray, w0: np.ndarray, l2sp: float,
                                left_out: int) -> tuple[float, float, float]:
    """(μ', β', δ_H) of S\\i: extreme eigenvalues of H_{S\\i} + λI and δ_H = ‖H_S − H_{S\\i}‖₂.

    H_S − H_{S\\i} = (x_i x_iᵀ − H_{S\\i})/n exactly, so δ_H ≤ max(‖x_i‖², β')/n.
    """
    n = len(X)
    if not 0 <= left_out < n:
        raise ValueError(f"left_out must be in [0, {n - 1}], got {left_out}")
    return _least_squares_loo(ArrayKey(X, y, w0), float(l2sp), int(left_out))


def least_squares_gradient(X: np.ndarray, y: np.ndarray, w: np.ndarray, index: int) -> np.ndarray:
    """∇ℓ_i(w) = x_i (x_i·w − y_i) for ℓ_i(w) = ½(x_i·w − y_i)²."""
    return X[index] * (X[index] @ w - y[index])

