"""Constants of the full fine-tuning bounds for one left-out run.

Least squares (``model="linear"``, ``loss="squared"``): exact (eigvalsh, closed-form w*). MLPs: the
Taylor surrogate at the trained weights A(S) (standing in for w*), with μ, β, μ', β' and δ_H from
Lanczos on Hessian-vector products of the exact training objective
(:func:`theory.objective.training_objective`: data loss plus each penalty on its own weights); the
bound is then a prediction, not a theorem, and ``quadratic = 0`` makes the assumptions check say so.
"""
from __future__ import annotations

import functools

import numpy as np

from theory.bounds.base import flag
from theory.context import RunContext
from theory.objective import training_objective
from theory.estimators import (ArrayKey, hessian_extreme_eigenvalues, least_squares_constants,
                               least_squares_loo_constants, objective_functions, spectral_norm)

# Relative accuracy of the Lanczos eigenvalues on networks: a surrogate's constants need not be exact,
# and Lanczos's cost grows quickly as the tolerance tightens (the smallest eigenvalue converges slowly).
LANCZOS_TOL = 1e-6


def is_least_squares(run: RunContext) -> bool:
    return run.model == "linear" and run.loss == "squared"


def full_constants(run: RunContext) -> dict[str, float]:
    """n, μ, μ', β (= max of S and S\\i), η, T, ρ_i, D, δ_H, ρ_max, β_sample and indicator flags."""
    i = int(run.left_out)
    if is_least_squares(run):
        # Both penalties are λ I in the Hessian; the loo spectrum only needs their sum.
        penalty = run.l2sp + run.weight_decay
        exact = least_squares_constants(run.X, run.y, run.w0, run.l2sp, run.weight_decay)
        mu_loo, beta_loo, delta_h = least_squares_loo_constants(run.X, run.y, run.w0, penalty, i)
        constants = dict(mu=exact.mu, mu_loo=mu_loo, beta=max(exact.beta, beta_loo), rho=float(exact.rho[i]),
                         D=exact.D, delta_H=delta_h, rho_max=float(exact.rho.max()),
                         beta_sample=float(np.max(np.sum(run.X ** 2, axis=1))) + penalty)
    else:
        constants = _surrogate_constants(training_objective(run), ArrayKey(run.w_full), ArrayKey(run.w0),
                                         len(run.X), i)
    return dict(n=float(len(run.X)), lr=float(run.lr), iteration=float(run.iteration),
                quadratic=flag(is_least_squares(run)), full_batch=flag(run.gradient_descent),
                **constants)


@functools.lru_cache(maxsize=64)
def _surrogate_full(objective, w_key: ArrayKey, n: int) -> tuple[float, float]:
    w = w_key.arrays[0]
    _, hvp = objective_functions(objective, w, np.ones(n))
    return hessian_extreme_eigenvalues(hvp, w.size, tol=LANCZOS_TOL)


@functools.lru_cache(maxsize=4096)
def _surrogate_constants(objective, w_key: ArrayKey, w0_key: ArrayKey, n: int,
                         left_out: int) -> dict[str, float]:
    # ``objective`` is the exact training objective (data loss + penalties on their groups), so the
    # penalties' curvature and gradients are in every constant, each only where it acts.
    w, w0 = w_key.arrays[0], w0_key.arrays[0]
    mu, beta = _surrogate_full(objective, w_key, n)
    keep = np.ones(n)
    keep[left_out] = 0.0
    _, hvp_full = objective_functions(objective, w, np.ones(n))
    _, hvp_loo = objective_functions(objective, w, keep)
    low_loo, high_loo = hessian_extreme_eigenvalues(hvp_loo, w.size, tol=LANCZOS_TOL)
    delta_h = spectral_norm(lambda v: hvp_full(v) - hvp_loo(v), w.size, tol=LANCZOS_TOL)
    one_hot = np.zeros(n)
    one_hot[left_out] = 1.0
    gradient_i, _ = objective_functions(objective, w, one_hot)
    return dict(mu=mu, mu_loo=low_loo, beta=max(beta, high_loo), rho=float(np.linalg.norm(gradient_i)),
                D=float(np.linalg.norm(w - w0)), delta_H=delta_h, rho_max=np.nan, beta_sample=np.nan)
