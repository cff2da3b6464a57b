"""Decoupled weight decay toward zero (Loshchilov & Hutter 2019)."""
from __future__ import annotations

from typing import Any

from verify.effects import Effects, Penalty
from verify.stabilisers.base import GROUP_CONSTRAINTS, STRENGTH, Stabiliser, check_groups


class WeightDecay(Stabiliser):
    """Add λ w to the gradient of the selected parameters, outside the loss.

    Being decoupled, the decay is not seen by loss terms or by MMR/LNSR penalties, but it is scaled
    by the learning rate and by any gradient transform listed after it (e.g. layer-wise decay). For
    plain GD it equals the penalty ½ λ ‖w‖², so the objective the theory sees (its record, ``effects()``)
    has μ raised by λ.

    Parameters
    ----------
    strength : float
        λ in [0, 100] (``MAX_STRENGTH``).
    groups : sequence of {"encoder", "head"}
        Which parameters decay (all by default).
    """

    name = "weight_decay"
    targets = ("mu",)
    parameter_constraints = {"strength": [STRENGTH], "groups": GROUP_CONSTRAINTS}
    identity_params = {"strength": 0.0}
    strength_grid = {"strength": (0.001, 0.01, 0.1)}

    def __init__(self, *, strength: float = 0.01, groups=("encoder", "head")):
        self.check_param("strength", strength)
        self.strength = float(strength)
        self.groups = check_groups(groups)

    def params(self) -> dict[str, Any]:
        return {"strength": self.strength, "groups": list(self.groups)}

    def effects(self) -> Effects:
        return Effects(weight_decay=Penalty(self.strength, self.groups))
