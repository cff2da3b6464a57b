"""MHLoss: several linear heads trained at once on a shared encoder (Fu, So & Collier 2023)."""
from __future__ import annotations

import numbers
from typing import Any

from synth.validation import Interval, Options
from verify.effects import CURVATURES, HEAD_REDUCTIONS, Effects, Heads
from verify.stabilisers.base import MAX_MULTIPLIER, Stabiliser


class MHLoss(Stabiliser):
    """H heads with independent initialisations, prediction by the mean logit over heads.

    Readings (``reduction``; docs/theory.md §4):

    - ``"balanced"`` (default, the reading in which "accelerates convergence" is testable): each
      head steps as a single head would and the encoder's effective step is unchanged: the heads'
      losses are averaged and each head's gradient is multiplied by H (equivalently: summed over
      heads, the encoder at lr / H). The mean head then averages H single-head runs, so the
      initialisation-dependent part of its direction has 1/H of a single head's seed variance, at
      the same per-head and encoder steps as plain training (H = 1 is plain training);
    - ``"sum"``: the heads' losses summed; each head steps as a single head and the encoder's
      gradient is multiplied by H;
    - ``"mean"``: the heads' losses averaged; each head steps lr / H.

    The step size comes from the curvature of the objective trained (``curvature="trained"``: the
    multi-head objective with the reading's step scaling, docs/theory.md §4), so no reading sits
    past η = 2/β by construction. ``curvature="single_head"`` sets it from one head's data loss at
    the mean of the heads, the former setup: with ``reduction="sum"`` it is the null control whose
    summed objective's curvature is 1.40–1.79 times that curvature at H = 4 and 2.0–3.0 times at
    H = 16 (the smoke MLP datasets), so it stepped at η β = 1.4–1.8, and at or past 2 at H = 16.
    Head h of a model is the h-th draw of the same per-seed stream the plain trainer uses, so
    H = 1 is exactly the plain trainer.

    Parameters
    ----------
    n_heads : int
        H in [1, 1000] (``MAX_MULTIPLIER``).
    reduction : {"balanced", "sum", "mean"}
    curvature : {"trained", "single_head"}
    """

    name = "mhloss"
    targets = ("init_variance",)
    parameter_constraints = {"n_heads": [Interval(numbers.Integral, 1, MAX_MULTIPLIER)],
                             "reduction": [Options(HEAD_REDUCTIONS)],
                             "curvature": [Options(CURVATURES)]}
    identity_params = {"n_heads": 1}
    strength_grid = {"n_heads": (2, 4, 8)}

    def __init__(self, *, n_heads: int = 4, reduction: str = "balanced", curvature: str = "trained"):
        self.check_param("n_heads", n_heads)
        self.check_param("reduction", reduction)
        self.check_param("curvature", curvature)
        self.n_heads = int(n_heads)
        self.reduction = reduction
        self.curvature = curvature

    def params(self) -> dict[str, Any]:
        return {"n_heads": self.n_heads, "reduction": self.reduction, "curvature": self.curvature}

    def effects(self) -> Effects:
        return Effects(heads=Heads(self.n_heads, self.reduction, self.curvature))
