"""Theorem H (a priori): head direction stability of full-batch GD on the mean exponential or logistic
loss, from the data alone (γ, R, n, ‖w0‖, L(w0)) and (η, t):

‖u_S(t) − u_{S\\i}(t)‖ ≤ M(ε̄_S(t), γ_S) + M(ε̄_{S\\i}(t), γ_{S\\i}) + ‖u*_S − u*_{S\\i}‖,

ε̄ the margin-gap rate of Theorem H.3 (theory.implicit_bias.margin_gap_bound), M the midpoint lemma.
"""
from __future__ import annotations

from theory.bounds.base import BoundTerms
from theory.bounds.head_constants import head_assumptions, head_constants
from theory.context import RunContext
from theory.implicit_bias import margin_gap_bound, midpoint_direction_bound, step_size_condition


class TheoremHApriori(BoundTerms):
    r"""Theorem H, a priori (from the data and (η, t)).

    Monotone: increasing in support_term.

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
    radius : float
        :math:`R`, the largest feature norm max_j ||x_j||.
    lr : float
        :math:`\eta`, the step size.
    iteration : float
        :math:`t`, the number of GD steps (the checkpoint's iteration).
    init_norm : float
        :math:`\|w_0\|`, the norm of the initial head.
    init_loss : float
        :math:`L(w_0)`, the mean training loss of the initial head on S.
    init_loss_loo : float
        :math:`L(w_0)`, the mean training loss of the initial head on S\i.
    binary : float
        ``binary``, indicator of the assumption: 1 for two classes, else 0.
    linear_head : float
        ``linear_head``, indicator of the assumption: 1 for a linear head on fixed features, else 0.
    separable : float
        ``separable``, indicator of the assumption: 1 when S is linearly separable through the
        origin, else 0.
    full_batch : float
        ``full_batch``, indicator of the assumption: 1 for full-batch runs with plain constant
        steps, else 0.
    single_head : float
        ``single_head``, indicator of the assumption: 1 for one head (not MHLoss's mean of several),
        else 0.
    exponential_tailed : float
        ``exponential_tailed_loss``, indicator of the assumption: 1 for the exponential or logistic
        loss, else 0.
    logistic : float
        :math:`\log(1+e^{-s})`, 1 for the logistic loss log(1 + e^{-s}), 0 for the exponential loss
        e^{-s}.
    """

    name = "theorem_h_apriori"
    setting = "head"
    measure = "head_direction_stability"
    constants = ("n", "gamma", "gamma_loo", "support_term", "radius", "lr", "iteration", "init_norm",
                 "init_loss", "init_loss_loo", "binary", "linear_head", "separable", "full_batch", "single_head",
                 "exponential_tailed", "logistic")

    def estimate_constants(self, run: RunContext) -> dict[str, float]:
        c = head_constants(run)
        return {key: c[key] for key in self.constants}

    def _inapplicable(self, c: dict[str, float]) -> bool:
        return bool(self.assumptions(**c))

    def terms(self, **c: float) -> dict[str, float]:
        loss = "logistic" if c["logistic"] else "exponential"
        shared = dict(radius=c["radius"], lr=c["lr"], iteration=int(c["iteration"]), init_norm=c["init_norm"])
        gap = margin_gap_bound(loss, n=int(c["n"]), gamma=c["gamma"], init_loss=c["init_loss"], **shared)
        gap_loo = margin_gap_bound(loss, n=int(c["n"]) - 1, gamma=c["gamma_loo"],
                                   init_loss=c["init_loss_loo"], **shared)
        return {"margin_full": midpoint_direction_bound(gap, c["gamma"]),
                "margin_loo": midpoint_direction_bound(gap_loo, c["gamma_loo"]),
                "support_vectors": c["support_term"]}

    def assumptions(self, **c: float) -> list[str]:
        violated = head_assumptions(c)
        if not c["full_batch"]:
            violated.append("full_batch")
        if not c["single_head"]:
            # The mean of H heads (MHLoss) is not a GD iterate of one head with step η: each head
            # moves with η/H (mean reduction) and their average is outside Theorem H.5.
            violated.append("single_head")
        if not c["exponential_tailed"]:
            violated.append("exponential_tailed_loss")
        elif not violated:
            loss = "logistic" if c["logistic"] else "exponential"
            if not all(step_size_condition(loss, lr=c["lr"], radius=c["radius"], init_loss=init)
                       for init in (c["init_loss"], c["init_loss_loo"])):
                violated.append("eta_small")
        return violated


THEOREM_H_APRIORI = TheoremHApriori()
