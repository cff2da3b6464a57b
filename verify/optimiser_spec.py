"""Which optimiser and schedule a training config trains with: a torch-free, JSON-serialisable spec.

The update rules it names are in :mod:`verify.trainers.optimisers` (which builds the batched and the
``torch.optim`` optimisers from it); the spec lives apart so that configs, their loading and the
``ftstab`` parser never import torch.
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

NAMES = ("sgd", "momentum", "adamw")
DECAYS = ("constant", "linear")


@dataclass(frozen=True)
class OptimiserSpec:
    """Which optimiser and schedule to train with (JSON-serialisable, no learning rate in it).

    Parameters
    ----------
    name : {"sgd", "momentum", "adamw"}
        Plain gradient steps (GD on full batches), heavy-ball momentum, or AdamW.
    momentum : float
        Heavy-ball coefficient mu in [0, 1) (``"momentum"`` only).
    beta1, beta2 : float
        AdamW's moment decay rates, each in [0, 1).
    eps : float
        AdamW's denominator offset, > 0.
    bias_correction : bool
        Divide AdamW's moments by ``1 - beta^t`` (True) or not (the BERT optimiser).
    weight_decay : float
        Decoupled weight decay lambda >= 0 (toward 0, every parameter).
    warmup_steps : int
        Steps of linear warm-up from 0, >= 0.
    decay : {"constant", "linear"}
        After warm-up: constant rate, or linear decay to 0 at ``n_steps``.
    """

    name: str = "sgd"
    momentum: float = 0.0
    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-8
    bias_correction: bool = True
    weight_decay: float = 0.0
    warmup_steps: int = 0
    decay: str = "constant"

    def __post_init__(self) -> None:
        if self.name not in NAMES:
            raise ValueError(f"optimiser name: must be one of {NAMES}, got {self.name!r}")
        for label, value in (("momentum", self.momentum), ("beta1", self.beta1),
                             ("beta2", self.beta2)):
            if not (isinstance(value, (int, float)) and 0.0 <= value < 1.0):
                raise ValueError(f"{label}: must be a number in [0, 1), got {value!r}")
        if self.name != "momentum" and self.momentum != 0.0:
            raise ValueError(f"momentum: must be 0 unless name='momentum', got {self.momentum!r}")
        if not (isinstance(self.eps, (int, float)) and math.isfinite(self.eps) and self.eps > 0):
            raise ValueError(f"eps: must be a number in (0, inf), got {self.eps!r}")
        if not isinstance(self.bias_correction, bool):
            raise ValueError(f"bias_correction: must be True or False, got {self.bias_correction!r}")
        if not (isinstance(self.weight_decay, (int, float)) and math.isfinite(self.weight_decay)
                and self.weight_decay >= 0):
            raise ValueError(f"weight_decay: must be a number in [0, inf), got {self.weight_decay!r}")
        if (isinstance(self.warmup_steps, bool) or not isinstance(self.warmup_steps, int)
                or self.warmup_steps < 0):
            raise ValueError(f"warmup_steps: must be an integer in [0, inf), got {self.warmup_steps!r}")
        if self.decay not in DECAYS:
            raise ValueError(f"decay: must be one of {DECAYS}, got {self.decay!r}")

    @property
    def is_plain(self) -> bool:
        """Whether every step is ``w - eta * g`` at one constant eta (what the theorems assume)."""
        return (self.name == "sgd" and self.weight_decay == 0.0 and self.warmup_steps == 0
                and self.decay == "constant")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> OptimiserSpec:
        """Inverse of :meth:`to_dict`; unknown keys raise ValueError naming them."""
        unknown = sorted(set(values) - set(cls.__dataclass_fields__))
        if unknown:
            raise ValueError(f"optimiser: unknown field(s) {unknown}; allowed: "
                             f"{sorted(cls.__dataclass_fields__)}")
        return cls(**values)


PLAIN = OptimiserSpec()
