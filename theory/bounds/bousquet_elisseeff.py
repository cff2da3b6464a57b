"""Regularised-ERM stability (Bousquet & Elisseeff 2002, the strong-convexity argument of their
Theorem 22) carried to T steps of GD by the triangle inequality (docs/theory.md, Proposition F.5):

‖w_T(S) − w_T(S\\i)‖ ≤ (1 + q'^T) Δ + (q^T + q'^T) D,  Δ = ρ_i / ((n−1) μ') ≥ ‖w*_S − w*_{S\\i}‖.

This is the project's first statement of Theorem F (docs/theory.md §9): valid, but never smaller than Theorem F's bound
on a quadratic, and it needs μ' > 0.
"""
from __future__ import annotations

from theory.bounds.base import BoundTerms
from theory.bounds.full_constants import full_constants
from theory.bounds.theorem_f import full_assumptions
from theory.context import RunContext


class BousquetElisseeff(BoundTerms):
    r"""Proposition F.5: the regularised-ERM gap carried to T steps.

    Monotone: increasing in rho, D; decreasing in n.

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
    quadratic : float
        ``quadratic_objective``, indicator of the assumption: 1 when the objective is quadratic
        (least squares), else 0 (the Taylor surrogate).
    full_batch : float
        ``full_batch``, indicator of the assumption: 1 for full-batch runs with plain constant
        steps, else 0.
    """

    name = "bousquet_elisseeff"
    setting = "full"
    measure = "parameter_stability"
    constants = ("n", "mu", "mu_loo", "beta", "lr", "iteration", "rho", "D", "quadratic", "full_batch")

    def estimate_constants(self, run: RunContext) -> dict[str, float]:
        all_constants = full_constants(run)
        return {key: all_constants[key] for key in self.constants}

    def terms(self, **c: float) -> dict[str, float]:
        steps = int(c["iteration"])
        q, q_loo = 1 - c["lr"] * c["mu"], 1 - c["lr"] * c["mu_loo"]
        erm_gap = c["rho"] / ((c["n"] - 1) * c["mu_loo"])
        return {"erm_gap": (1 + q_loo ** steps) * erm_gap, "init": (q ** steps + q_loo ** steps) * c["D"]}

    def _inapplicable(self, c: dict[str, float]) -> bool:
        return bool([name for name in self.assumptions(**c) if name != "quadratic_objective"])

    def assumptions(self, **c: float) -> list[str]:
        violated = full_assumptions(c)
        if c["mu"] < 0 or c["mu_loo"] < 0:
            violated.append("convex")
        if c["mu_loo"] <= 0:
            violated.append("mu_loo_positive")
        return violated


BOUSQUET_ELISSEEFF = BousquetElisseeff()
