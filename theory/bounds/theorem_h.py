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
    """Theorem H, a posteriori (from the trained heads' margins).

    Monotone: increasing in support_term; decreasing in margin_full, margin_loo.
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
