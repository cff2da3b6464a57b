"""Which optimiser and schedule a training config trains with: a torch-free, JSON-serialisable spec.

The update rules it names are in :mod:`verify.trainers.optimisers` (which builds the batched and the
``torch.optim`` optimisers from it); the spec lives apart so that configs, their loading and the
``ftstab`` parser never import torch.
"""
from __future__ import annotations

import numbers
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

from synth.validation import BOOLEAN, Constraint, Interval, Options, validate_params

NAMES = ("sgd", "momentum", "adamw")
DECAYS = ("constant", "linear")
RATE = Interval(numbers.Real, 0.0, 1.0, "left")
# The declared range of every field, in field order (synth.validation's vocabulary).
PARAMETER_CONSTRAINTS: dict[str, list[Constraint]] = {
    "name": [Options(NAMES)], "momentum": [RATE], "beta1": [RATE], "beta2": [RATE],
    "eps": [Interval(numbers.Real, 0.0, None, "neither")], "bias_correction": [BOOLEAN],
    "weight_decay": [Interval(numbers.Real, 0.0, None)],
    "warmup_steps": [Interval(numbers.Integral, 0, None)], "decay": [Options(DECAYS)],
}


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
        values = {field.name: getattr(self, field.name) for field in fields(self)}
        for name, value in validate_params(PARAMETER_CONSTRAINTS, values).items():
            object.__setattr__(self, name, value)
        if self.name != "momentum" and self.momentum != 0.0:
            raise ValueError(f"momentum must be 0 unless name is 'momentum' (got {self.momentum!r})")

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
