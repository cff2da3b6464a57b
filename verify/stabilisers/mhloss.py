"""MHLoss: several linear heads trained at once on a shared encoder (Fu, So & Collier 2023)."""
from __future__ import annotations

import numbers
from typing import Any

from synth.validation import Interval, Options
from verify.effects import Effects, Heads
from verify.stabilisers.base import MAX_MULTIPLIER, Stabiliser

REDUCTIONS = ("mean", "sum")


class MHLoss(Stabiliser):
    """H heads with independent initialisations; loss = mean (or sum) of the heads' losses.

    Prediction is by the mean logit over heads. With ``"sum"`` (the default) each head moves as a
    single head would while the initialisation-dependent part of the mean head shrinks like
    1/sqrt(H), which lowers the seed variance of the head direction (theory: ``init_variance``);
    the encoder's gradient is the sum over heads, so it grows with H. ``"mean"`` at learning rate
    η is exactly ``"sum"`` at η/H: every head learns H times slower, and at equal η it does not
    reduce the seed variance early in training (tested). Head h of a model is the h-th draw of the
    same per-seed stream the plain trainer uses, so H = 1 is exactly the plain trainer.

    Parameters
    ----------
    n_heads : int
        H in [1, 1000] (``MAX_MULTIPLIER``).
    reduction : {"mean", "sum"}
    """

    name = "mhloss"
    targets = ("init_variance",)
    parameter_constraints = {"n_heads": [Interval(numbers.Integral, 1, MAX_MULTIPLIER)],
                             "reduction": [Options(REDUCTIONS)]}
    identity_params = {"n_heads": 1}
    strength_grid = {"n_heads": (2, 4, 8)}

    def __init__(self, *, n_heads: int = 4, reduction: str = "sum"):
        self.check_param("n_heads", n_heads)
        self.check_param("reduction", reduction)
        self.n_heads = int(n_heads)
        self.reduction = reduction

    def params(self) -> dict[str, Any]:
        return {"n_heads": self.n_heads, "reduction": self.reduction}

    def effects(self) -> Effects:
        return Effects(heads=Heads(self.n_heads, self.reduction))
