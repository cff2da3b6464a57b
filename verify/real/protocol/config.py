"""The practitioners' fine-tuning protocol as a training config (the ``config`` column of results).

AdamW (bias correction on or off, Mosbach et al. 2021), a peak learning rate in 1e-5 to 1e-4, a
linear warm-up over the first ``warmup_fraction`` of the steps and a linear decay to 0, minibatches
of 8 or 16 drawn epoch by epoch in a per-seed order, dropout 0.1 in the encoder, a fresh linear head
per seed, texts truncated to 64 or 128 tokens.
"""
from __future__ import annotations

import numbers
from dataclasses import asdict, dataclass, fields

import numpy as np

from synth.validation import (BOOLEAN, Constraint, InstanceOf, Interval, Options, Subset,
                              validate_params)
from verify.configs import COUNT, SIZE
from verify.optimiser_spec import OptimiserSpec
from verify.real.models.registry import ENCODERS

LEARNING_RATES = (1e-5, 2e-5, 5e-5, 1e-4)
BATCH_SIZES = (8, 16)
MAX_LENGTHS = (64, 128)
MAX_WARMUP_FRACTION = 0.5
# The declared range of every field, in field order (synth.validation's vocabulary); the fields
# after ``dropout`` are the protocol's fixed facts (a full fine-tuning of a text encoder's weights
# and a fresh softmax head), recorded as a config's are.
PARAMETER_CONSTRAINTS: dict[str, list[Constraint]] = {
    "name": [InstanceOf(str)], "encoder": [Options(tuple(sorted(ENCODERS)))], "n_steps": [COUNT],
    "lr": [Options(LEARNING_RATES)], "batch_size": [Options(BATCH_SIZES)],
    "max_length": [Options(MAX_LENGTHS)], "bias_correction": [BOOLEAN],
    "warmup_fraction": [Interval(numbers.Real, 0.0, MAX_WARMUP_FRACTION)],
    "weight_decay": [Interval(numbers.Real, 0.0, None)],
    "dropout": [Interval(numbers.Real, 0.0, 1.0, "left")],
    "setting": [Options(("full",))], "kinds": [Subset(("real-text",))], "loss": [Options(("softmax",))],
    "init": [Options(("pretrained",))], "n_heads": [COUNT], "lr_scale": [Options((None,))],
    "max_left_out": [SIZE], "n_checkpoints": [COUNT],
}


@dataclass(frozen=True)
class ProtocolConfig:
    """How every model of a full fine-tuning task on text is trained.

    Every field is checked against :data:`PARAMETER_CONSTRAINTS` (``synth.validation``): a bad one
    raises ``ValueError("<field> must be <form> (got <value>)")``.

    Parameters
    ----------
    name : str
        Stored in the ``config`` column; a different definition needs a different name.
    encoder : str
        A name in :data:`verify.real.models.registry.ENCODERS`.
    n_steps : int
        Optimiser steps T, >= 1 (before a stabiliser's schedule change, ``Effects.schedule``).
    lr : float
        Peak learning rate, one of :data:`LEARNING_RATES`.
    batch_size : int
        One of :data:`BATCH_SIZES` (capped at the training set's size).
    max_length : int
        Tokens per text, one of :data:`MAX_LENGTHS`.
    bias_correction : bool
        AdamW's bias correction (False: the original BERT optimiser).
    warmup_fraction : float
        Share of the steps with linear warm-up, in [0, 0.5].
    weight_decay : float
        AdamW's decoupled weight decay, finite and >= 0.
    dropout : float
        Dropout probability of the encoder (attention and hidden), in [0, 1).
    """

    name: str
    encoder: str
    n_steps: int
    lr: float = 2e-5
    batch_size: int = 8
    max_length: int = 64
    bias_correction: bool = True
    warmup_fraction: float = 0.1
    weight_decay: float = 0.01
    dropout: float = 0.1
    setting: str = "full"
    kinds: tuple[str, ...] = ("real-text",)
    loss: str = "softmax"
    init: str = "pretrained"
    n_heads: int = 1
    lr_scale: None = None
    max_left_out: int = 0
    n_checkpoints: int = 1

    def __post_init__(self) -> None:
        values = {field.name: getattr(self, field.name) for field in fields(self)}
        for name, value in validate_params(PARAMETER_CONSTRAINTS, values).items():
            object.__setattr__(self, name, value)

    @property
    def stochastic(self) -> bool:
        return True

    def learning_rate(self, features=None) -> float:
        return float(self.lr)

    def optimiser(self, n_steps: int) -> OptimiserSpec:
        """AdamW over ``n_steps`` (the steps after any stabiliser's schedule change)."""
        return OptimiserSpec(name="adamw", bias_correction=self.bias_correction,
                             weight_decay=self.weight_decay,
                             warmup_steps=int(round(self.warmup_fraction * n_steps)), decay="linear")

    def checkpoints(self) -> np.ndarray:
        return np.array([self.n_steps])

    def to_dict(self) -> dict:
        return {**asdict(self), "kinds": list(self.kinds)}


def protocol_name(config_fields: dict) -> str:
    """A name that changes with every field that changes training."""
    f = config_fields
    return (f"real_ft_{f['encoder'].replace('-', '_')}_lr{f['lr']:g}_b{f['batch_size']}_T{f['n_steps']}"
            f"_L{f['max_length']}_bc{int(f.get('bias_correction', True))}"
            f"_wu{f.get('warmup_fraction', 0.1):g}_wd{f.get('weight_decay', 0.01):g}"
            f"_do{f.get('dropout', 0.1):g}")
