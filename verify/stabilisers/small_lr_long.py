"""Small learning rate, longer training (Mosbach et al. 2021)."""
from __future__ import annotations

import numbers
from typing import Any

from synth.validation import Interval
from verify.effects import Effects, Schedule
from verify.stabilisers.base import Stabiliser

# The factor multiplies the number of steps: 100 × the longest config (10^4 steps) is 10^6 steps.
MAX_FACTOR = 100


class SmallLRLong(Stabiliser):
    """Divide the learning rate by c and multiply the number of steps by c (same η T).

    Only the schedule changes (its record's ``schedule``), which the sweep applies for every
    trainer (checkpoints should scale with the steps so that η t is compared at equal values).
    Theory: at equal η T, a smaller η keeps η <= 1/β (no divergence beyond 2/β) and is closer to
    gradient flow.

    Parameters
    ----------
    factor : int
        c in [1, 100].
    """

    name = "small_lr_long"
    targets = ("eta_T",)
    parameter_constraints = {"factor": [Interval(numbers.Integral, 1, MAX_FACTOR)]}
    identity_params = {"factor": 1}
    strength_grid = {"factor": (2, 4)}

    def __init__(self, *, factor: int = 4):
        self.check_param("factor", factor)
        self.factor = int(factor)

    def params(self) -> dict[str, Any]:
        return {"factor": self.factor}

    def effects(self) -> Effects:
        return Effects(schedule=Schedule(lr_divisor=self.factor, steps_factor=self.factor))
