"""Uniform-stability bounds for (stochastic) gradient methods on convex losses, after Hardt, Recht &
Singer (2016, Theorems 3.7 and 3.9), in the remove-one, parameter form proved in docs/theory.md §F.5:

convex, η β_sample ≤ 2:             E‖w_T(S) − w_T(S\\i)‖ ≤ 2ηTL/n
m-strongly convex, η β_sample ≤ 1:  E‖w_T(S) − w_T(S\\i)‖ ≤ 2L(1 − (1 − ηm)^T)/(nm)

L bounds every per-sample gradient norm on the ball of radius D + ηTρ_max around w* that holds both
runs' iterates; m is μ' for full-batch GD and λ (the L2-SP strength: per-sample strong convexity) for
SGD. For minibatch runs the expectation is over the sampling, so one run may exceed it
("deterministic_run" is reported violated).
"""
from __future__ import annotations

import math

from theory.bounds.base import RTOL, BoundTerms
from theory.bounds.full_constants import full_constants, is_least_squares
from theory.context import RunContext


def _constants(run: RunContext) -> dict[str, float]:
    c = full_constants(run)
    reach = c["D"] + c["lr"] * c["iteration"] * c["rho_max"]
    modulus = c["mu_loo"] if c["full_batch"] else float(run.l2sp + run.weight_decay)
    return dict(n=c["n"], lr=c["lr"], iteration=c["iteration"],
                lipschitz=c["rho_max"] + c["beta_sample"] * reach, beta_sample=c["beta_sample"],
                strong_convexity=modulus, convex=float(is_least_squares(run)), full_batch=c["full_batch"],
                plain_steps=float(bool(run.plain_steps)))


class HardtSGDConvex(BoundTerms):
    """Hardt, Recht & Singer, convex: 2ηTL/n.

    Monotone: increasing in lipschitz, iteration, lr; decreasing in n.
    """

    name = "hardt_sgd_convex"
    setting = "full"
    measure = "parameter_stability"
    constants = ("n", "lr", "iteration", "lipschitz", "beta_sample", "strong_convexity", "convex",
                 "full_batch", "plain_steps")
    step_limit = 2.0

    def estimate_constants(self, run: RunContext) -> dict[str, float]:
        return _constants(run)

    def _numeric_violations(self, c: dict[str, float]) -> list[str]:
        if not c["convex"]:
            return ["convex"]
        violated = []
        if not c["lr"] * c["beta_sample"] <= self.step_limit * (1 + RTOL):
            violated.append("eta_le_2_over_beta_sample" if self.step_limit == 2.0
                            else "eta_le_1_over_beta_sample")
        return violated

    def _inapplicable(self, c: dict[str, float]) -> bool:
        return bool(self._numeric_violations(c))

    def terms(self, **c: float) -> dict[str, float]:
        return {"gradient": 2 * c["lr"] * c["iteration"] * c["lipschitz"] / c["n"]}

    def assumptions(self, **c: float) -> list[str]:
        violated = self._numeric_violations(c)
        if not c["full_batch"]:
            violated.append("deterministic_run")
        if not c.get("plain_steps", 1.0):  # the bound is about (S)GD steps, not momentum or AdamW
            violated.append("plain_gradient_steps")
        return violated


class HardtSGDStronglyConvex(HardtSGDConvex):
    """Hardt, Recht & Singer, m-strongly convex: 2L(1 − (1 − ηm)^T)/(nm).

    Monotone: increasing in lipschitz, iteration; decreasing in n, strong_convexity.
    """

    name = "hardt_sgd_strongly_convex"
    step_limit = 1.0

    def _numeric_violations(self, c: dict[str, float]) -> list[str]:
        violated = super()._numeric_violations(c)
        if c["strong_convexity"] <= 0:
            violated.append("strongly_convex")
        return violated

    def terms(self, **c: float) -> dict[str, float]:
        m = c["strong_convexity"]
        contraction = -math.expm1(c["iteration"] * math.log1p(-min(c["lr"] * m, 1.0 - 1e-16)))
        return {"gradient": 2 * c["lipschitz"] * contraction / (c["n"] * m)}


HARDT_SGD_CONVEX = HardtSGDConvex()
HARDT_SGD_STRONGLY_CONVEX = HardtSGDStronglyConvex()
