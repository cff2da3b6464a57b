"""Every bound, one small module each, registered by name in ``BOUNDS``."""
from __future__ import annotations

from theory.bounds.base import Bound
from theory.bounds.bousquet_elisseeff import BOUSQUET_ELISSEEFF
from theory.bounds.hardt_sgd import HARDT_SGD_CONVEX, HARDT_SGD_STRONGLY_CONVEX
from theory.bounds.theorem_f import THEOREM_F
from theory.bounds.theorem_f_loss import THEOREM_F_LOSS
from theory.bounds.theorem_h import THEOREM_H
from theory.bounds.theorem_h_apriori import THEOREM_H_APRIORI

BOUNDS: dict[str, Bound] = {bound.name: bound for bound in (
    THEOREM_F, THEOREM_F_LOSS, BOUSQUET_ELISSEEFF, HARDT_SGD_CONVEX, HARDT_SGD_STRONGLY_CONVEX,
    THEOREM_H, THEOREM_H_APRIORI)}

__all__ = ["BOUNDS", "Bound"]
