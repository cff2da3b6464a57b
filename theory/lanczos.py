"""Extreme eigenvalues of a symmetric operator by Lanczos, bitwise repeatable across processes.

Why not scipy's ARPACK: its BLAS calls run on arrays whose 64-byte alignment depends on the heap,
and OpenBLAS's kernels round differently with it, so one operator and one start vector gave
eigenvalues that differ in the last bits from process to process (measured: up to 9e-13 relative on
the smoke grid's MLP Hessians, eight repeats in one process giving eight values). Here every vector
lives in torch's allocator, which aligns each buffer to 64 bytes, so the same operator and start give
the same bits wherever they run; the small tridiagonal problem is solved by scalar code.

The method is Lanczos with full re-orthogonalisation (Gram-Schmidt twice) from a fixed start vector,
without restarts: the Krylov space only grows, so both ends of the spectrum come from one run and
the Ritz values converge at least as fast per product as a restarted method; once the space reaches
the operator's dimension (or an invariant subspace) they are exact.
"""
from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
from scipy.linalg import eigvalsh_tridiagonal

# Ritz values are checked every max(MIN_CHECK_STEPS, m // CHECKS_PER_DOUBLING) steps: a check costs
# O(m^2) (bisection for the m Ritz values, then two twisted factorisations in Python), so checks thin
# out as m grows, at most 1/8 extra products past convergence.
MIN_CHECK_STEPS = 4
CHECKS_PER_DOUBLING = 8
# Below this relative size a new Lanczos vector is taken to be zero: the Krylov space is invariant.
BREAKDOWN = 1e-12


def lanczos_extreme_eigenvalues(matvec: Callable[[np.ndarray], np.ndarray], dim: int, *,
                                tol: float = 1e-10, max_steps: int | None = None,
                                random_state: int = 0) -> tuple[float, float]:
    """Smallest and largest eigenvalue of the symmetric operator ``matvec`` on R^dim.

    Parameters
    ----------
    matvec : callable
        ``matvec(v) -> A v`` for a float64 vector of length ``dim`` (numpy in, array-like out).
    dim : int
        The dimension, >= 1.
    tol : float, default=1e-10
        Each end's Ritz pair is accepted when its residual ``|beta_m s_m|`` is at most
        ``tol * max(|theta|, eps ** (2/3) * ||T||)`` (ARPACK's rule), in (0, 1).
    max_steps : int, optional
        The most Lanczos steps (products); by default ``dim``, where the values are exact.
    random_state : int, default=0
        Seed of the start vector.

    Returns
    -------
    (float, float)
        The smallest and the largest eigenvalue.

    Raises
    ------
    ValueError
        If ``dim`` < 1, ``tol`` is outside (0, 1) or ``max_steps`` < 1.
    RuntimeError
        If the Ritz values have not converged within ``max_steps`` products.
    """
    import torch

    dim = int(dim)
    if dim < 1:
        raise ValueError(f"dim must be >= 1, got {dim}")
    if not 0 < tol < 1:
        raise ValueError(f"tol must be in (0, 1), got {tol!r}")
    steps = dim if max_steps is None else min(int(max_steps), dim)
    if steps < 1:
        raise ValueError(f"max_steps must be >= 1, got {max_steps!r}")
    generator = torch.Generator().manual_seed(int(random_state))
    basis = torch.zeros(steps + 1, dim, dtype=torch.float64)
    alpha = torch.zeros(steps, dtype=torch.float64)
    beta = torch.zeros(steps, dtype=torch.float64)
    start = torch.randn(dim, dtype=torch.float64, generator=generator)
    basis[0] = start / torch.linalg.vector_norm(start)
    eps = float(np.finfo(np.float64).eps)
    next_check, scale = MIN_CHECK_STEPS, 0.0
    for j in range(steps):
        # A copy into torch's allocator: the product's own buffer may have any alignment.
        w = torch.tensor(np.asarray(matvec(basis[j].numpy()), dtype=np.float64).reshape(dim))
        alpha[j] = basis[j] @ w
        for _ in range(2):
            w -= basis[: j + 1].T @ (basis[: j + 1] @ w)
        beta[j] = torch.linalg.vector_norm(w)
        scale = max(scale, abs(float(alpha[j])), float(beta[j]))
        # An invariant Krylov space: a random start has a component in every eigenspace, so its
        # Ritz values already contain both ends of the spectrum.
        invariant = float(beta[j]) <= BREAKDOWN * max(scale, eps)
        if invariant or j + 1 == steps or j + 1 >= next_check:
            low, high, converged = _ritz_extremes(alpha[: j + 1], beta[: j + 1], tol, eps)
            if converged or invariant or j + 1 == dim:
                return low, high
            next_check = j + 1 + max(MIN_CHECK_STEPS, (j + 1) // CHECKS_PER_DOUBLING)
        basis[j + 1] = w / beta[j]
    raise RuntimeError(f"Lanczos did not converge to tol={tol:g} in {steps} steps (dim={dim})")


def _ritz_extremes(alpha, beta, tol: float, eps: float) -> tuple[float, float, bool]:
    """The extreme Ritz values of the tridiagonal T (diagonal ``alpha``, couplings ``beta[:-1]``)
    and whether both residuals ``|beta[-1] * s_last|`` meet the tolerance.

    The values come from LAPACK's bisection (``stebz``: scalar code, the same bits at any memory
    alignment); the last component of each unit Ritz vector from the downward factorisation
    T - theta I = L D L^T, whose solution with last component 1 is z_k = -beta_k z_{k+1} / D_k.
    """
    diagonal, couplings = alpha.tolist(), beta.tolist()
    m = len(diagonal)
    low, high = (float(value) for value in eigvalsh_tridiagonal(
        np.array(diagonal), np.array(couplings[: m - 1]), select="i", select_range=(0, m - 1),
        lapack_driver="stebz")[[0, -1]])
    norm = max(abs(low), abs(high))
    converged = all(abs(couplings[m - 1]) * _last_component(diagonal, couplings, theta, norm)
                    <= tol * max(abs(theta), eps ** (2 / 3) * norm) for theta in (low, high))
    return low, high, converged


def _last_component(diagonal: list[float], couplings: list[float], theta: float, norm: float) -> float:
    """|s_m| of the unit eigenvector of T for its eigenvalue ``theta``, by the twisted factorisation.

    Forward and backward pivots of T - theta I give gamma_k (zero at an exact eigenvalue); the
    eigenvector is solved with z_r = 1 at the twist r of smallest |gamma_r|, which keeps it accurate
    even where its last entry is tiny. Plain floats, so the result is repeatable.
    """
    m = len(diagonal)
    if m == 1:
        return 1.0
    tiny = np.finfo(np.float64).tiny ** 0.5 * max(norm, 1.0)
    shifted = [value - theta for value in diagonal]

    def nonzero(value: float) -> float:
        return value if value != 0.0 else tiny

    forward = [shifted[0]]
    for k in range(1, m):
        forward.append(shifted[k] - couplings[k - 1] ** 2 / nonzero(forward[-1]))
    backward = [0.0] * m
    backward[m - 1] = shifted[m - 1]
    for k in range(m - 2, -1, -1):
        backward[k] = shifted[k] - couplings[k] ** 2 / nonzero(backward[k + 1])
    twist = min(range(m), key=lambda k: abs(forward[k] + backward[k] - shifted[k]))
    z = [0.0] * m
    z[twist] = 1.0
    for k in range(twist - 1, -1, -1):
        z[k] = -couplings[k] * z[k + 1] / nonzero(forward[k])
    for k in range(twist + 1, m):
        z[k] = -couplings[k - 1] * z[k - 1] / nonzero(backward[k])
    scale = max(abs(value) for value in z)
    length = math.sqrt(math.fsum((value / scale) ** 2 for value in z))
    return abs(z[m - 1]) / scale / length
