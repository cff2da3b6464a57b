"""Theorem F: parameter stability of full-batch GD on a quadratic objective (docs/theory.md §2).

‖w_T(S) − w_T(S\\i)‖ ≤ (1 − q'^T) ρ_i / ((n−1) μ') + D · min(max(q^T, q'^T), η δ_H Σ_{k<T} q^k q'^{T−1−k})

with q = 1 − ημ, q' = 1 − ημ' (the first term is ηTρ_i/(n−1) when μ' = 0). Convexity is not needed:
with ηβ ≤ 1 it holds for any quadratic with a stationary point w*, and when μ' < 0 (an indefinite
Hessian, e.g. the Taylor surrogate of a network) both terms grow like (1 + η|μ'|)^T.
"""
from __future__ import annotations

import math

from theory.bounds.base import RTOL, BoundTerms
from theory.bounds.full_constants import full_constants
from theory.context import RunContext

# exp(709) is the largest finite float64 power: beyond it a power is +inf.
_LOG_MAX = 709.0


def _power(q: float, steps: int) -> float:
    """q^T for q >= 0, +inf where it overflows."""
    if q == 0.0:
        return 0.0 if steps > 0 else 1.0
    exponent = steps * math.log(q)
    return math.inf if exponent > _LOG_MAX else math.exp(exponent)


def geometric_mix(q: float, q_loo: float, steps: int) -> float:
    """Σ_{k<T} q^k q'^{T−1−k} for q, q' >= 0 (the upper bound T·max^{T−1} when q ≈ q')."""
    if steps <= 0:
        return 0.0
    if abs(q - q_loo) <= 1e-9 * max(1.0, q, q_loo):
        top = max(q, q_loo)
        return steps * _power(top, steps - 1)
    return (_power(q, steps) - _power(q_loo, steps)) / (q - q_loo)


def accumulated_step(mu: float, lr: float, steps: int) -> float:
    """‖η Σ_{k<T} (I − ηH)^k‖ = η Σ_{k<T} (1 − ημ)^k = (1 − q^T)/μ (ηT when μ = 0; μ < 0 allowed)."""
    if steps <= 0:
        return 0.0
    if mu == 0:
        return lr * steps
    if lr * mu >= 1:
        return 1.0 / mu
    exponent = steps * math.log1p(-lr * mu)
    if exponent > _LOG_MAX:
        return math.inf
    return -math.expm1(exponent) / mu


def theorem_f_terms(*, n: float, mu: float, mu_loo: float, beta: float, lr: float, iteration: float,
                    rho: float, D: float, delta_H: float) -> dict[str, float]:
    """The two terms of Theorem F: ``gradient`` (the ρ_i term) and ``init`` (the D term).

    Both +inf outside ηβ ≤ 1 and n >= 2.
    """
    if lr * beta > 1 + RTOL or n < 2:
        return {"gradient": math.inf, "init": math.inf}
    steps = int(iteration)
    q, q_loo = max(1 - lr * mu, 0.0), max(1 - lr * mu_loo, 0.0)
    gradient_term = accumulated_step(mu_loo, lr, steps) * rho / (n - 1) if rho > 0 else 0.0
    if D == 0 or steps == 0:
        return {"gradient": gradient_term, "init": 0.0}
    telescoped = lr * delta_H * geometric_mix(q, q_loo, steps) if delta_H > 0 else 0.0
    return {"gradient": gradient_term, "init": min(max(_power(q, steps), _power(q_loo, steps)), telescoped) * D}


def theorem_f_value(**constants: float) -> float:
    """The bound of Theorem F from its named constants (+inf outside ηβ ≤ 1 and n >= 2)."""
    return math.fsum(theorem_f_terms(**constants).values())


class TheoremF(BoundTerms):
    r"""Theorem F, the parameter form.

    Monotone: increasing in rho, D, delta_H; decreasing in n, mu, mu_loo.

    ``value``, ``terms`` and ``assumptions`` take these constants, which ``estimate_constants``
    returns; each is named with its symbol in docs/theory.md.

    Parameters
    ----------
    n : float
        :math:`n`, the size of the training set S.
    mu : float
        :math:`\mu`, the smallest eigenvalue of the Hessian H of the objective on S.
    mu_loo : float
        :math:`\mu'`, the smallest eigenvalue of the Hessian H' of the objective on S\i.
    beta : float
        :math:`\max(\beta,\beta')`, the larger of the top Hessian eigenvalues on S and S\i.
    lr : float
        :math:`\eta`, the step size.
    iteration : float
        :math:`T`, the number of steps (the checkpoint's iteration).
    rho : float
        :math:`\rho_i`, the norm of the left-out sample's objective gradient at w*.
    D : float
        :math:`D`, the distance from the start w0 to the minimiser w*.
    delta_H : float
        :math:`\delta_H`, the spectral norm of the difference of the data Hessians of S and S\i.
    quadratic : float
        ``quadratic_objective``, indicator of the assumption: 1 when the objective is quadratic
        (least squares), else 0 (the Taylor surrogate).
    full_batch : float
        ``full_batch``, indicator of the assumption: 1 for full-batch runs with plain constant
        steps, else 0.
    """

    name = "theorem_f"
    setting = "full"
    measure = "parameter_stability"
    constants: tuple[str, ...] = ("n", "mu", "mu_loo", "beta", "lr", "iteration", "rho", "D", "delta_H", "quadratic",
                 "full_batch")

    def estimate_constants(self, run: RunContext) -> dict[str, float]:
        all_constants = full_constants(run)
        return {key: all_constants[key] for key in self.constants}

    def terms(self, **c: float) -> dict[str, float]:
        return theorem_f_terms(n=c["n"], mu=c["mu"], mu_loo=c["mu_loo"], beta=c["beta"], lr=c["lr"],
                               iteration=c["iteration"], rho=c["rho"], D=c["D"], delta_H=c["delta_H"])

    def _inapplicable(self, c: dict[str, float]) -> bool:
        return not c["full_batch"]

    def assumptions(self, **c: float) -> list[str]:
        return full_assumptions(c)


def full_assumptions(c: dict[str, float]) -> list[str]:
    """Violated assumptions of Theorem F (full-batch GD on a quadratic; convexity is not needed)."""
    violated = []
    if not c["quadratic"]:
        violated.append("quadratic_objective")
    if not c["full_batch"]:
        violated.append("full_batch")
    if c["lr"] * c["beta"] > 1 + RTOL:
        violated.append("eta_le_1_over_beta")
    if c["n"] < 2:
        violated.append("n_at_least_2")
    return violated


THEOREM_F = TheoremF()
