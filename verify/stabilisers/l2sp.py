"""L2-SP: decay toward the pre-trained weights (Li, Grandvalet & Davoine 2018)."""
from __future__ import annotations

from typing import Any

from synth.validation import BOOLEAN
from verify.effects import Effects, Penalty
from verify.stabilisers.base import STRENGTH, Stabiliser


class L2SP(Stabiliser):
    """Add ½ λ ‖w − w0‖² over the encoder (and the head only when ``include_head``).

    Theory: the penalty adds λ to every Hessian eigenvalue of the selected block, raising μ, and
    pulls the optimum toward w0, shrinking D (Theorem F).

    Parameters
    ----------
    strength : float
        λ in [0, 100] (``MAX_STRENGTH``).
    include_head : bool
        Also decay the head toward the head entries of w0 (off by default: a new head has no
        pre-trained value).
    """

    name = "l2sp"
    targets = ("mu", "D")
    parameter_constraints = {"strength": [STRENGTH], "include_head": [BOOLEAN]}
    identity_params = {"strength": 0.0}
    strength_grid = {"strength": (0.001, 0.01, 0.1)}

    def __init__(self, *, strength: float = 0.01, include_head: bool = False):
        self.check_param("strength", strength)
        self.check_param("include_head", include_head)
        self.strength = float(strength)
        self.include_head = include_head

    @property
    def groups(self) -> tuple[str, ...]:
        return ("encoder", "head") if self.include_head else ("encoder",)

    def params(self) -> dict[str, Any]:
        return {"strength": self.strength, "include_head": self.include_head}

    def effects(self) -> Effects:
        return Effects(l2sp=Penalty(self.strength, self.groups))
