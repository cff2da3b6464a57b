"""Small learning rate, longer training (Mosbach et al. 2021)."""
from __future__ import annotations

from typing import Any

from verify.stabilisers.base import Stabiliser, check_number


class SmallLRLong(Stabiliser):
    """Divide the learning rate by c and multiply the number of steps by c (same η T).

    Only the schedule changes, through :meth:`adjust_schedule`, which the sweep applies for every
    trainer (checkpoints should scale with the steps so that η t is compared at equal values).
    Theory: at equal η T, a smaller η keeps η <= 1/β (no divergence beyond 2/β) and is closer to
    gradient flow.

    Parameters
    ----------
    factor : int
        c >= 1.
    """

    name = "small_lr_long"
    targets = ("eta_T",)
    applies_to = frozenset({"head", "quadratic", "mlp"})

    def __init__(self, *, factor: int = 4):
        check_number("factor", factor, low=1, integer=True)
        self.factor = int(factor)

    def params(self) -> dict[str, Any]:
        return {"factor": self.factor}

    def adjust_schedule(self, lr: float, n_steps: int) -> tuple[float, int]:
        return lr / self.factor, n_steps * self.factor
