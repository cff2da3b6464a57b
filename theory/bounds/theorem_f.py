"""Theorem F: parameter stability of full-batch GD on a convex quadratic objective (docs/theory.md §F).

‖w_T(S) − w_T(S\\i)‖ ≤ (1 − q'^T) ρ_i / ((n−1) μ') + D · min(max(q^T, q'^T), η δ_H Σ_{k<T} q^k q'^{T−1−k})

with q = 1 − ημ, q' = 1 − ημ' (the first term is ηTρ_i/(n−1) when μ' = 0).
"""
from __future__ import annotations

import math

from theory.bounds.base import RTOL
from theory.bounds.full_constants import full_constants
from theory.context import RunContext


def geometric_mix(q: float, q_loo: float, steps: int) -> float:
    """Σ_{k<T} q^k q'^{T−1−k} for q, q' in [0, 1] (an upper bound T·max^{T−1} when q ≈ q')."""
    if steps <= 0:
        return 0.0
    if abs(q - q_loo) <= 1e-9:
        return steps * max(q, q_loo) ** (steps - 1)
    return (q ** steps - q_loo ** steps) / (q - q_loo)


def accumulated_step(mu: float, lr: float, steps: int) -> float:
    """η Σ_{k<T} (1 − ημ)^k = (1 − q^T)/μ, or ηT when μ = 0."""
    if mu <= 0:
        return lr * steps
    if lr * mu >= 1:
        return (1.0 / mu) if steps > 0 else 0.0
    return -math.expm1(steps * math.log1p(-lr * mu)) / mu


def theorem_f_value(*, n: float, mu: float, mu_loo: float, beta: float, lr: float, iteration: float,
                    rho: float, D: float, delta_H: float) -> float:
    """The bound of Theorem F from its named constants (+inf outside 0 ≤ μ, μ' and ηβ ≤ 1)."""
    if lr * beta > 1 + RTOL or mu < 0 or mu_loo < 0 or n < 2:
        return math.inf
    steps = int(iteration)
    q, q_loo = max(1 - lr * mu, 0.0), max(1 - lr * mu_loo, 0.0)
    gradient_term = accumulated_step(mu_loo, lr, steps) * rho / (n - 1)
    init_factor = min(max(q, q_loo) ** steps, lr * delta_H * geometric_mix(q, q_loo, steps))
    return gradient_term + init_factor * D


class TheoremF:
    name = "theorem_f"
    setting = "full"
    measure = "parameter_stability"
    constants = ("n", "mu", "mu_loo", "beta", "lr", "iteration", "rho", "D", "delta_H", "quadratic",
                 "full_batch")

    def estimate_constants(self, run: RunContext) -> dict[str, float]:
        all_constants = full_constants(run)
        return {key: all_constants[key] for key in self.constants}

    def value(self, **c: float) -> float:
        if not c["full_batch"]:
            return math.inf
        return theorem_f_value(n=c["n"], mu=c["mu"], mu_loo=c["mu_loo"], beta=c["beta"], lr=c["lr"],
                               iteration=c["iteration"], rho=c["rho"], D=c["D"], delta_H=c["delta_H"])

    def assumptions(self, **c: float) -> list[str]:
        return full_assumptions(c)


def full_assumptions(c: dict[str, float]) -> list[str]:
    """Violated assumptions of the full-batch GD bounds on a convex quadratic."""
    violated = []
    if not c["quadratic"]:
        violated.append("quadratic_objective")
    if not c["full_batch"]:
        violated.append("full_batch")
    if c["mu"] < 0 or c["mu_loo"] < 0:
        violated.append("convex")
    if c["lr"] * c["beta"] > 1 + RTOL:
        violated.append("eta_le_1_over_beta")
    if c["n"] < 2:
        violated.append("n_at_least_2")
    return violated


THEOREM_F = TheoremF()
