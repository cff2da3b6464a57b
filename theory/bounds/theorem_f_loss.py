"""Theorem F, loss form: |ℓ_i(w_T(S)) − ℓ_i(w_T(S\\i))| ≤ G_i · (Theorem F bound).

G_i is the gradient norm of ℓ_i at the midpoint w̄ = (w_T(S) + w_T(S\\i))/2: for a quadratic ℓ_i,
ℓ_i(a) − ℓ_i(b) = ∇ℓ_i((a + b)/2)·(a − b) exactly, so G_i is the Lipschitz constant along the segment
that the mean-value argument needs. For an MLP it is the largest gradient norm at the two endpoints and
the midpoint (an estimate).
"""
from __future__ import annotations

import numpy as np

from theory.bounds.full_constants import full_constants, is_least_squares
from theory.bounds.theorem_f import TheoremF
from theory.context import RunContext
from theory.estimators import least_squares_gradient, objective_functions


def segment_lipschitz(run: RunContext) -> float:
    """G_i: ‖∇ℓ_i(w̄)‖ at the midpoint (least squares, exact) or the largest of three samples (MLP)."""
    midpoint = 0.5 * (np.asarray(run.w_full, float) + np.asarray(run.w_loo, float))
    if is_least_squares(run):
        return float(np.linalg.norm(least_squares_gradient(run.X, run.y, midpoint, run.left_out)))
    one_hot = np.zeros(len(run.X))
    one_hot[run.left_out] = 1.0
    return max(float(np.linalg.norm(objective_functions(run.objective, w, one_hot)[0]))
               for w in (run.w_full, run.w_loo, midpoint))


class TheoremFLoss(TheoremF):
    """Theorem F, the loss form (G_i times each term of Theorem F).

    Monotone: increasing in rho, D, delta_H, lipschitz; decreasing in n, mu, mu_loo.
    """

    name = "theorem_f_loss"
    measure = "pointwise_hypothesis_stability"
    constants = TheoremF.constants + ("lipschitz",)

    def estimate_constants(self, run: RunContext) -> dict[str, float]:
        all_constants = full_constants(run)
        constants = {key: all_constants[key] for key in TheoremF.constants}
        constants["lipschitz"] = segment_lipschitz(run)
        return constants

    def terms(self, **c: float) -> dict[str, float]:
        # G · (each term of Theorem F); a zero term stays zero whatever G is.
        return {name: c["lipschitz"] * term if term > 0 else 0.0
                for name, term in super().terms(**c).items()}


THEOREM_F_LOSS = TheoremFLoss()
