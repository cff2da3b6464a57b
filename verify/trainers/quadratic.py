"""Least-squares fine-tuning from w0, M models at once: batched GD and its exact closed form.

Model m minimises, over its own samples (``masks[m]``),

    L_m(w) = ½ mean_i (x_i·w − y_i)² + ½ l2sp ‖w − w0‖² + ½ weight_decay ‖w‖²
           = ½ wᵀ H_m w − b_mᵀ w + c_m,

with ``H_m = Xᵀ diag(p_m) X + (l2sp + weight_decay) I`` (``p_m`` = mask / n_m), ``b_m = Xᵀ(p_m ∘ y)
+ l2sp w0`` and ``c_m = ½ Σ p_m y² + ½ l2sp ‖w0‖²``. Gradient descent from w0 with step η is
``w ← w − η (H_m w − b_m)``. The models of a sweep train on the full set and on sets with one
sample left out, so their Hessians are rank-one downdates of one Gram matrix ``G = Xᵀ X``:
``H_m = (G − x_{r_m} x_{r_m}ᵀ) / n_m + (l2sp + weight_decay) I`` with ``r_m`` the sample model m
leaves out. When every model leaves out at most one sample and ``d >= DOWNDATE_MIN_FEATURES``, a
step is one ``(M, d) x (d, d)`` matrix product for all models plus the rank-one corrections (2 M d²
flops in one GEMM, and 4 M d); otherwise each model's Hessian is formed and a step is one batched
matrix-vector product (M d² reads of memory per step, after an M n d² set-up).

Closed form: with ``g0 = b − H w0`` (minus the gradient at w0) and ``H = Q diag(λ) Qᵀ``,

    w_T = w0 + Q diag(φ_T(λ)) Qᵀ g0,    φ_T(λ) = η Σ_{s<T} (1 − ηλ)^s = (1 − (1 − ηλ)^T) / λ,

(φ_T(0) = ηT), which is ``w* + (I − ηH)^T (w0 − w*)`` whenever H is invertible. When H is singular (a
mask keeps fewer than d samples and there is no penalty), g0 lies in the range of H, GD never leaves
``w0 + range(H)``, and the iterates converge (for η < 2/λ_max) to the minimiser closest to w0:
``w* = w0 + H⁺ g0``, the minimum-norm-displacement solution, which :func:`quadratic_minimiser`
returns. The formula above is the exact iterate in both cases and needs no rank decision.

Divergence, as for heads: the first iteration whose objective is NaN, inf or above ``BLOWUP`` times
``max(L_m(w0), L_m(0))``; from then on the model's weights and loss are NaN. The recorded
``train_loss`` is the objective L_m, penalties included.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from verify.trainers.checkpoints import check_checkpoints
from verify.trainers.head import BLOWUP
from verify.trainers.trace import Trace


@dataclass(frozen=True)
class QuadraticProblem:
    """Validated inputs of a quadratic run, shared by the batched, naive and closed-form solvers."""

    X: np.ndarray            # (n, d)
    y: np.ndarray            # (n,) float64 targets
    masks: np.ndarray        # (M, n) bool
    w0: np.ndarray           # (M, d)
    lr: float
    n_steps: int
    checkpoints: np.ndarray  # (K,) int64
    l2sp: float
    weight_decay: float

    def normal_equations(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(H, b, c)`` of shapes (M, d, d), (M, d), (M,): L_m(w) = ½ wᵀH_m w − b_mᵀw + c_m."""
        p = self.masks / self.masks.sum(1, keepdims=True)
        d = self.X.shape[1]
        hessians = (np.einsum("mi,ij,ik->mjk", p, self.X, self.X)
                    + (self.l2sp + self.weight_decay) * np.eye(d))
        return (hessians,) + self.linear_terms()

    def linear_terms(self) -> tuple[np.ndarray, np.ndarray]:
        """``(b, c)`` of shapes (M, d), (M,) of the normal equations."""
        p = self.masks / self.masks.sum(1, keepdims=True)
        linear = p * self.y @ self.X + self.l2sp * self.w0
        constant = 0.5 * p @ self.y ** 2 + 0.5 * self.l2sp * (self.w0 ** 2).sum(1)
        return linear, constant


def _number(name: str, value, *, low: float, strict: bool) -> float:
    ok = (isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
          and math.isfinite(value) and (value > low if strict else value >= low))
    if not ok:
        raise ValueError(f"{name}: must be a finite number {'>' if strict else '>='} {low}, "
                         f"got {value!r}")
    return float(value)


def check_quadratic_problem(X, y, *, masks, w0, lr=None, n_steps=0, checkpoints=(0,), l2sp=0.0,
                            weight_decay=0.0) -> QuadraticProblem:
    """Validate the arguments of :func:`train_quadratic` (``lr=None`` skips the step size check).

    Raises
    ------
    ValueError
        Naming the first invalid parameter and its allowed values.
    """
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2 or X.shape[0] < 1 or X.shape[1] < 1 or not np.isfinite(X).all():
        raise ValueError(f"X: must be a finite (n, d) array with n, d >= 1, got shape {X.shape}")
    n, d = X.shape
    y = np.asarray(y, dtype=np.float64)
    if y.shape != (n,) or not np.isfinite(y).all():
        raise ValueError(f"y: must be ({n},) finite targets, got shape {y.shape}")
    masks = np.asarray(masks)
    if masks.ndim != 2 or masks.shape[1] != n or masks.shape[0] < 1 or not np.isin(masks, (0, 1)).all():
        raise ValueError(f"masks: must be an (M, {n}) array of 0/1 with M >= 1, got shape {masks.shape}")
    masks = masks.astype(bool)
    if not masks.any(axis=1).all():
        raise ValueError("masks: every model needs at least one sample, got an all-zero row")
    w0 = np.asarray(w0, dtype=np.float64)
    if w0.shape == (d,):
        w0 = np.broadcast_to(w0, (len(masks), d))
    if w0.shape != (len(masks), d) or not np.isfinite(w0).all():
        raise ValueError(f"w0: must be finite with shape ({d},) or ({len(masks)}, {d}), "
                         f"got {w0.shape}")
    lr = math.nan if lr is None else _number("lr", lr, low=0.0, strict=True)
    if isinstance(n_steps, bool) or not isinstance(n_steps, (int, np.integer)) or n_steps < 0:
        raise ValueError(f"n_steps: must be an integer >= 0, got {n_steps!r}")
    return QuadraticProblem(X=X, y=y, masks=masks, w0=np.array(w0), lr=lr, n_steps=int(n_steps),
                            checkpoints=check_checkpoints(checkpoints, int(n_steps)),
                            l2sp=_number("l2sp", l2sp, low=0.0, strict=False),
                            weight_decay=_number("weight_decay", weight_decay, low=0.0, strict=False))


class _DenseHessians:
    """``H_m w − b_m`` for all models from each model's own Hessian (one batched product)."""

    def __init__(self, problem: QuadraticProblem, linear: torch.Tensor, w: torch.Tensor,
                 out: torch.Tensor):
        self.hessians = torch.from_numpy(problem.normal_equations()[0])
        self.neg_linear = -linear[:, :, None]
        self.w, self.out = w[:, :, None], out[:, :, None]

    def gradient(self) -> None:
        """Write ``H_m w_m − b_m`` of the (M, d) weights ``w`` into ``out`` (M, d)."""
        torch.baddbmm(self.neg_linear, self.hessians, self.w, out=self.out)


class _DowndatedHessians:
    """``H_m w − b_m = (G w_m − x_{r_m} (x_{r_m}·w_m)) / n_m + λ w_m − b_m``: one GEMM for all models.

    ``r_m`` is the sample model m leaves out (none: a zero row), ``G = Xᵀ X``, ``λ`` the penalty.
    """

    def __init__(self, problem: QuadraticProblem, linear: torch.Tensor, w: torch.Tensor,
                 out: torch.Tensor, left_out: np.ndarray):
        X = torch.from_numpy(problem.X)
        self.gram = X.t() @ X                                                  # (d, d)
        padded = torch.cat([X, torch.zeros(1, X.shape[1], dtype=X.dtype)])    # row n is zero
        self.removed = padded[torch.from_numpy(left_out)]                      # (M, d)
        self.inverse_count = torch.from_numpy(1.0 / problem.masks.sum(1))[:, None]
        self.penalty = problem.l2sp + problem.weight_decay
        self.neg_linear = -linear
        self.removed_scores = torch.empty(len(left_out), 1, dtype=X.dtype)
        self.w, self.out = w, out

    def gradient(self) -> None:
        """Write ``H_m w_m − b_m`` of the (M, d) weights ``w`` into ``out`` (M, d)."""
        w, out = self.w, self.out
        torch.mm(w, self.gram, out=out)                                  # G w_m (G is symmetric)
        torch.sum(self.removed * w, 1, keepdim=True, out=self.removed_scores)
        out.addcmul_(self.removed, self.removed_scores, value=-1.0)
        torch.addcmul(self.neg_linear, out, self.inverse_count, out=out)
        if self.penalty:
            out.add_(w, alpha=self.penalty)


# Below this many features a model's d x d Hessian-vector product costs less than the downdate's
# fixed elementwise work (measured: d = 4 dense 8 µs vs downdated 14 µs per step at M = 41..161;
# d = 16 about even; d = 32 dense 200-290 µs vs 47-51 µs at M = 161..257).
DOWNDATE_MIN_FEATURES = 16


def _left_out_sample(masks: np.ndarray) -> np.ndarray | None:
    """(M,) the one sample each model leaves out (n where it keeps all); None if some leaves out more."""
    n_models, n = masks.shape
    left_out = ~masks
    if int(left_out.sum(1).max()) > 1:
        return None
    return np.where(left_out.any(1), left_out.argmax(1), n)


def _objective(problem: QuadraticProblem, W: np.ndarray) -> np.ndarray:
    """(..., M) objective at weights (..., M, d), from residuals (accurate near the optimum)."""
    residuals = W @ problem.X.T - problem.y
    p = problem.masks / problem.masks.sum(1, keepdims=True)
    return (0.5 * (p * residuals ** 2).sum(-1) + 0.5 * problem.l2sp * ((W - problem.w0) ** 2).sum(-1)
            + 0.5 * problem.weight_decay * (W ** 2).sum(-1))


def train_quadratic(X, y, *, masks, w0, lr, n_steps, checkpoints, l2sp=0.0,
                    weight_decay=0.0) -> Trace:
    """Gradient descent on M least-squares objectives at once (see the module docstring).

    Parameters
    ----------
    X : array of shape (n, d)
    y : array of shape (n,)
        Real targets.
    masks : array of shape (M, n)
        0/1 sample membership of each model.
    w0 : array of shape (d,) or (M, d)
        Pre-trained weights: the start of GD and the centre of the L2-SP penalty.
    lr : float
        Step size η > 0.
    n_steps : int
        Number of updates T >= 0.
    checkpoints : sequence of int
        Strictly increasing iterations in ``[0, n_steps]``.
    l2sp : float, default=0.0
        Strength of ½ l2sp ‖w − w0‖² (L2-SP), >= 0.
    weight_decay : float, default=0.0
        Strength of ½ weight_decay ‖w‖², >= 0.

    Returns
    -------
    Trace
        ``weights["w"]`` of shape (K, M, d); ``train_loss`` the objective L_m (penalties included).
    """
    problem = check_quadratic_problem(X, y, masks=masks, w0=w0, lr=lr, n_steps=n_steps,
                                      checkpoints=checkpoints, l2sp=l2sp, weight_decay=weight_decay)
    linear, constant = (torch.from_numpy(a) for a in problem.linear_terms())
    n_models, d = problem.w0.shape
    w = torch.from_numpy(problem.w0.copy())                             # (M, d)
    gradient = torch.empty_like(w)
    left_out = _left_out_sample(problem.masks) if d >= DOWNDATE_MIN_FEATURES else None
    products = (_DenseHessians(problem, linear, w, gradient) if left_out is None
                else _DowndatedHessians(problem, linear, w, gradient, left_out))
    alive = torch.ones(n_models, dtype=torch.bool)
    diverged_at = torch.full((n_models,), -1, dtype=torch.int64)
    points = problem.checkpoints.tolist()
    recorded = np.empty((len(points), n_models, d))
    k = 0
    for t in range(problem.n_steps + 1):
        products.gradient()
        # ½ wᵀHw − bᵀw + c = ½ wᵀ(Hw − b) − ½ bᵀw + c; loses digits near the optimum, which is
        # harmless for a blow-up test against BLOWUP times the reference.
        value = 0.5 * ((gradient - linear) * w).sum(1) + constant
        if t == 0:
            zero_value = constant
            threshold = BLOWUP * torch.where(torch.isfinite(value), value.clamp(min=0).maximum(zero_value),
                                             zero_value)
        newly = alive & ~(value <= threshold)
        if newly.any():
            diverged_at[newly] = t
            alive &= ~newly
            w[newly] = 0.0
            gradient[newly] = 0.0
        if t == points[k]:
            recorded[k] = w.numpy()
            recorded[k][~alive.numpy()] = np.nan
            k += 1
            if k == len(points):
                break
        w.sub_(gradient, alpha=problem.lr)
    return Trace(iterations=problem.checkpoints, weights={"w": recorded},
                 train_loss=_objective(problem, recorded), diverged_at=diverged_at.numpy())


def _eigen(problem: QuadraticProblem):
    hessians, linear, _ = problem.normal_equations()
    eigenvalues, eigenvectors = np.linalg.eigh(hessians)
    displacement_direction = linear - np.einsum("mjk,mk->mj", hessians, problem.w0)     # g0
    return eigenvalues, eigenvectors, np.einsum("mjk,mj->mk", eigenvectors, displacement_direction)


def quadratic_closed_form(X, y, *, masks, w0, lr, iterations, l2sp=0.0, weight_decay=0.0) -> np.ndarray:
    """Exact GD iterates w_t of :func:`train_quadratic` at the given iterations, by eigendecomposition.

    Parameters
    ----------
    X, y, masks, w0, lr, l2sp, weight_decay
        As for :func:`train_quadratic`.
    iterations : sequence of int
        Strictly increasing iterations t >= 0.

    Returns
    -------
    ndarray of shape (K, M, d)
        ``w_t = w0 + Q diag(φ_t(λ)) Qᵀ g0`` (module docstring); unlike GD, no divergence test is
        applied, so for η > 2/λ_max the entries simply grow.
    """
    iterations = np.asarray(iterations)
    last = int(iterations.max()) if iterations.size and np.issubdtype(iterations.dtype, np.integer) else 0
    problem = check_quadratic_problem(X, y, masks=masks, w0=w0, lr=lr, n_steps=last,
                                      checkpoints=iterations, l2sp=l2sp, weight_decay=weight_decay)
    eigenvalues, eigenvectors, coordinates = _eigen(problem)
    eta = problem.lr
    t = problem.checkpoints.astype(np.float64)[:, None, None]
    step = eta * eigenvalues[None]
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        # expm1/log1p keep the digits of 1 − (1 − ηλ)^t when ηλ is tiny; the power is exact otherwise.
        stable = -np.expm1(t * np.log1p(-np.minimum(step, 0.5)))
        factor = np.where(step < 0.5, stable, 1.0 - (1.0 - step) ** t) / eigenvalues[None]
    factor = np.where(eigenvalues[None] == 0.0, eta * t, factor)
    return problem.w0[None] + np.einsum("mjk,tmk->tmj", eigenvectors, factor * coordinates[None])


def quadratic_minimiser(X, y, *, masks, w0, l2sp=0.0, weight_decay=0.0) -> np.ndarray:
    """The minimiser of each model's objective closest to w0: ``w* = w0 + H⁺ (b − H w0)``.

    Unique when H is invertible; when H is singular (fewer than d samples and no penalty) it is the
    minimum-norm-displacement solution from w0, the limit of GD from w0 for η < 2/λ_max. Eigenvalues
    below ``d · eps · λ_max`` count as zero (the pseudo-inverse's cut-off).

    Returns
    -------
    ndarray of shape (M, d)
    """
    problem = check_quadratic_problem(X, y, masks=masks, w0=w0, l2sp=l2sp, weight_decay=weight_decay)
    eigenvalues, eigenvectors, coordinates = _eigen(problem)
    cutoff = eigenvalues.shape[1] * np.finfo(np.float64).eps * eigenvalues.max(1, keepdims=True)
    inverse = np.where(eigenvalues > cutoff, 1.0 / np.where(eigenvalues > cutoff, eigenvalues, 1.0), 0.0)
    return problem.w0 + np.einsum("mjk,mk->mj", eigenvectors, inverse * coordinates)
