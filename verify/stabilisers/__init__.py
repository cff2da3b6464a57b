"""Stabilisers as plug-ins of the trainers: one small file each, one API (:mod:`.base`)."""
from verify.stabilisers.base import FineTuningProblem, Stabiliser, StepContext
from verify.stabilisers.l2sp import L2SP
from verify.stabilisers.llrd import LayerwiseLRDecay
from verify.stabilisers.lnsr import LNSR
from verify.stabilisers.mhloss import MHLoss
from verify.stabilisers.mixout import Mixout
from verify.stabilisers.mmr import MMR
from verify.stabilisers.reinit_top import ReinitTop
from verify.stabilisers.small_lr_long import SmallLRLong
from verify.stabilisers.surt import SURT
from verify.stabilisers.weight_decay import WeightDecay

STABILISERS: dict[str, type[Stabiliser]] = {
    cls.name: cls for cls in (MMR, MHLoss, SURT, L2SP, WeightDecay, Mixout, ReinitTop,
                              LayerwiseLRDecay, LNSR, SmallLRLong)
}

__all__ = ["STABILISERS", "FineTuningProblem", "Stabiliser", "StepContext", *(
    cls.__name__ for cls in STABILISERS.values())]
