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
    r"""Hardt, Recht & Singer, convex: 2ηTL/n.

    Monotone: increasing in lipschitz, iteration, lr; decreasing in n.

    ``value``, ``terms`` and ``assumptions`` take these constants, which ``estimate_constants``
    returns; each is named with its symbol in docs/theory.md.

    Parameters
    ----------
    n : float
        :math:`n`, the size of the training set S.
    lr : float
        :math:`\eta`, the step size.
    iteration : float
        :math:`T`, the number of steps (the checkpoint's iteration).
    lipschitz : float
        :math:`L = \rho_{\max}+\beta_s r_T`, the per-sample gradient bound on the ball holding both
        runs' iterates (Lemma F.7).
    beta_sample : float
        :math:`\beta_s`, the largest per-sample smoothness.
    strong_convexity : float
        :math:`m`, the strong-convexity modulus: mu' for full-batch GD, the L2-SP and weight-decay
        strength for SGD.
    convex : float
        ``convex``, indicator of the assumption: 1 when every per-sample loss is convex (least
        squares), else 0.
    full_batch : float
        ``full_batch``, indicator of the assumption: 1 for full-batch runs with plain constant
        steps, else 0.
    plain_steps : float
        ``plain_gradient_steps``, indicator of the assumption: 1 when every step is w - eta grad at
        one constant eta, else 0.
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
    r"""Hardt, Recht & Singer, m-strongly convex: 2L(1 − (1 − ηm)^T)/(nm).

    Monotone: increasing in lipschitz, iteration; decreasing in n, strong_convexity.

    ``value``, ``terms`` and ``assumptions`` take these constants, which ``estimate_constants``
    returns; each is named with its symbol in docs/theory.md.

    Parameters
    ----------
    n : float
        :math:`n`, the size of the training set S.
    lr : float
        :math:`\eta`, the step size.
    iteration : float
        :math:`T`, the number of steps (the checkpoint's iteration).
    lipschitz : float
        :math:`L = \rho_{\max}+\beta_s r_T`, the per-sample gradient bound on the ball holding both
        runs' iterates (Lemma F.7).
    beta_sample : float
        :math:`\beta_s`, the largest per-sample smoothness.
    strong_convexity : float
        :math:`m`, the strong-convexity modulus: mu' for full-batch GD, the L2-SP and weight-decay
        strength for SGD.
    convex : float
        ``convex``, indicator of the assumption: 1 when every per-sample loss is convex (least
        squares), else 0.
    full_batch : float
        ``full_batch``, indicator of the assumption: 1 for full-batch runs with plain constant
        steps, else 0.
    plain_steps : float
        ``plain_gradient_steps``, indicator of the assumption: 1 when every step is w - eta grad at
        one constant eta, else 0.
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
