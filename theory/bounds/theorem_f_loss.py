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
    r"""Theorem F, the loss form (G_i times each term of Theorem F).

    Monotone: increasing in rho, D, delta_H, lipschitz; decreasing in n, mu, mu_loo.

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
    lipschitz : float
        :math:`\|\nabla\ell_i(\bar w)\|`, G_i, the gradient norm of the left-out loss at the
        midpoint of the two weights (an estimate for MLPs).
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
