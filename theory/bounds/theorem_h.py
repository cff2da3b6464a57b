"""Theorem H (a posteriori): head direction stability from the measured margins of the trained heads.

‖u_S − u_{S\\i}‖ ≤ M(γ_S − m_S, γ_S) + M(γ_{S\\i} − m_{S\\i}, γ_{S\\i}) + ‖u*_S − u*_{S\\i}‖,

m = normalised margin of the trained head on its own training set, M the midpoint lemma
(theory.implicit_bias.midpoint_direction_bound). It holds for any heads, however trained.
"""
from __future__ import annotations

from theory.bounds.base import BoundTerms
from theory.bounds.head_constants import head_assumptions, head_constants
from theory.context import RunContext
from theory.implicit_bias import midpoint_direction_bound


class TheoremH(BoundTerms):
    r"""Theorem H, a posteriori (from the trained heads' margins).

    Monotone: increasing in support_term; decreasing in margin_full, margin_loo.

    ``value``, ``terms`` and ``assumptions`` take these constants, which ``estimate_constants``
    returns; each is named with its symbol in docs/theory.md.

    Parameters
    ----------
    n : float
        :math:`n`, the size of the training set S.
    gamma : float
        :math:`\gamma_S`, the max margin of S.
    gamma_loo : float
        :math:`\gamma_{S^{\setminus i}}`, the max margin of S\i.
    support_term : float
        :math:`\|u^*_S-u^*_{S^{\setminus i}}\|`, the distance of the max-margin directions of S and
        S\i (exact).
    margin_full : float
        :math:`m_S(w_S)`, the normalised margin of the head trained on S, on S.
    margin_loo : float
        :math:`m_{S^{\setminus i}}(w_{S^{\setminus i}})`, the normalised margin of the head trained
        on S\i, on S\i.
    binary : float
        ``binary``, indicator of the assumption: 1 for two classes, else 0.
    linear_head : float
        ``linear_head``, indicator of the assumption: 1 for a linear head on fixed features, else 0.
    separable : float
        ``separable``, indicator of the assumption: 1 when S is linearly separable through the
        origin, else 0.
    """

    name = "theorem_h"
    setting = "head"
    measure = "head_direction_stability"
    constants = ("n", "gamma", "gamma_loo", "support_term", "margin_full", "margin_loo", "binary",
                 "linear_head", "separable")

    def estimate_constants(self, run: RunContext) -> dict[str, float]:
        c = head_constants(run)
        return {key: c[key] for key in self.constants}

    # Computed from the trained heads, it holds for ANY two unit vectors (docs/theory.md §3.2): a
    # consistency check of the solver and the measurements, not evidence about training.
    a_posteriori = True

    def _inapplicable(self, c: dict[str, float]) -> bool:
        return bool(head_assumptions(c))

    def terms(self, **c: float) -> dict[str, float]:
        return {"margin_full": midpoint_direction_bound(c["gamma"] - c["margin_full"], c["gamma"]),
                "margin_loo": midpoint_direction_bound(c["gamma_loo"] - c["margin_loo"], c["gamma_loo"]),
                "support_vectors": c["support_term"]}

    def assumptions(self, **c: float) -> list[str]:
        return head_assumptions(c)


THEOREM_H = TheoremH()
