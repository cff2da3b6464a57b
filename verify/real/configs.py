"""Training configurations of the real tasks (the ``config`` column of the results).

They carry the same fields the sweep records for its own configs. Head tuning states its learning rate
like the synthetic configs, as ``lr_scale / beta_hat`` with ``beta_hat = lambda_max(X^T X / n) / 2``, an
upper bound on the smoothness of the mean softmax cross-entropy of a linear head on features X; full
fine-tuning states an absolute learning rate (``lr_scale`` is then None).
"""
from __future__ import annotations

import numbers
from dataclasses import asdict, dataclass, fields

import numpy as np

from synth.validation import Constraint, InstanceOf, Interval, Options, Subset, validate_params
from verify.configs import COUNT, SIZE
from verify.trainers.checkpoints import log_spaced_checkpoints

SETTINGS = ("head", "full")
KINDS = ("real-text", "real-digits")
LOSSES = ("softmax", "logistic")
INITS = ("random", "pretrained")
STEP: list[Constraint] = [Options((None,)), Interval(numbers.Real, 0.0, None, "neither")]
# The declared range of every field, in field order (synth.validation's vocabulary). The name is
# any text (``ftstab real`` names a config after building it); the encoder is looked up where a
# head reads its features (``verify.real.models.registry``, not imported here: it needs torch).
PARAMETER_CONSTRAINTS: dict[str, list[Constraint]] = {
    "name": [InstanceOf(str)], "setting": [Options(SETTINGS)], "kinds": [Subset(KINDS)],
    "n_steps": [COUNT], "lr": STEP, "lr_scale": STEP, "batch_size": [Options((None,)), COUNT],
    "max_left_out": [Options((None,)), SIZE], "n_checkpoints": [COUNT], "loss": [Options(LOSSES)],
    "init": [Options(INITS)], "n_heads": [COUNT], "encoder": [InstanceOf(str)],
}


@dataclass(frozen=True)
class RealConfig:
    """How every model of a real task is trained.

    Every field is checked against :data:`PARAMETER_CONSTRAINTS` (``synth.validation``): a bad one
    raises ``ValueError("<field> must be <form> (got <value>)")``.

    Parameters
    ----------
    name : str
        Stored in the results' ``config`` column; a different definition needs a different name.
    setting : {"head", "full"}
    kinds : tuple of str
        The dataset kind it trains, ``("real-text",)`` or ``("real-digits",)`` (as the sweep's configs).
    n_steps : int
        Training iterations T, ``>= 1``.
    lr : float or None
        Absolute step size (full fine-tuning), finite and > 0; None to use ``lr_scale``.
    lr_scale : float or None
        Step size in units of ``1 / beta_hat`` (head tuning), finite and > 0; None with an absolute
        ``lr``. Exactly one of ``lr`` and ``lr_scale`` is given.
    batch_size : int or None
        SGD minibatch size, ``>= 1``; None is full-batch gradient descent.
    max_left_out : int or None
        Leave-one-out sets per seed, ``>= 0``; None trains every one.
    n_checkpoints : int
        Log-spaced checkpoints in ``[1, n_steps]``, ``>= 1``.
    loss : {"softmax", "logistic"}
        Softmax cross-entropy, or the logistic loss of one weight vector (binary head tuning).
    init : str
        "random" (a fresh head from each seed) for head tuning, "pretrained" for full fine-tuning
        (encoder at the pre-trained weights, fresh head from each seed).
    n_heads : int
        Heads per model before any stabiliser changes it, ``>= 1``.
    encoder : str
        The text encoder (:data:`verify.real.models.registry.ENCODERS`) whose features a head reads.
    """

    name: str
    setting: str
    kinds: tuple[str, ...]
    n_steps: int
    lr: float | None = None
    lr_scale: float | None = None
    batch_size: int | None = None
    max_left_out: int | None = None
    n_checkpoints: int = 8
    loss: str = "softmax"
    init: str = "random"
    n_heads: int = 1
    encoder: str = "minilm-l6"

    def __post_init__(self) -> None:
        values = {field.name: getattr(self, field.name) for field in fields(self)}
        for name, value in validate_params(PARAMETER_CONSTRAINTS, values).items():
            object.__setattr__(self, name, value)
        if (self.lr is None) == (self.lr_scale is None):
            raise ValueError(f"lr must be given exactly when lr_scale is None (got lr={self.lr!r}, "
                             f"lr_scale={self.lr_scale!r})")

    @property
    def stochastic(self) -> bool:
        """Always true: every seed draws its own head (and minibatches for SGD)."""
        return True

    def checkpoints(self) -> np.ndarray:
        """Log-spaced iterations in ``[1, n_steps]`` ending at ``n_steps``."""
        return log_spaced_checkpoints(self.n_steps, num=self.n_checkpoints)

    def learning_rate(self, features: np.ndarray | None = None) -> float:
        """The absolute step size; with ``lr_scale``, ``lr_scale / beta_hat`` on ``features``."""
        if self.lr is not None:
            return float(self.lr)
        # lr_scale is given when lr is not (__post_init__); a head config is asked with its features.
        assert self.lr_scale is not None and features is not None
        beta_hat = 0.5 * float(np.linalg.eigvalsh(features.T @ features / len(features))[-1])
        return self.lr_scale / beta_hat

    def to_dict(self) -> dict:
        return {**asdict(self), "kinds": list(self.kinds)}
