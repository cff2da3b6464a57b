"""Training configurations of the real tasks (the ``config`` column of the results).

They carry the same fields the sweep records for its own configs. Head tuning states its learning rate
like the synthetic configs, as ``lr_scale / beta_hat`` with ``beta_hat = lambda_max(X^T X / n) / 2``, an
upper bound on the smoothness of the mean softmax cross-entropy of a linear head on features X; full
fine-tuning states an absolute learning rate (``lr_scale`` is then None).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from verify.trainers.checkpoints import log_spaced_checkpoints

SETTINGS = ("head", "full")
KINDS = ("real-text", "real-digits")


@dataclass(frozen=True)
class RealConfig:
    """How every model of a real task is trained.

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
        Absolute step size (full fine-tuning); None to use ``lr_scale``.
    lr_scale : float or None
        Step size in units of ``1 / beta_hat`` (head tuning); None with an absolute ``lr``.
    batch_size : int or None
        SGD minibatch size; None is full-batch gradient descent.
    max_left_out : int or None
        Leave-one-out sets per seed; None trains every one.
    n_checkpoints : int
        Log-spaced checkpoints in ``[1, n_steps]``.
    loss : {"softmax", "logistic"}
        Softmax cross-entropy, or the logistic loss of one weight vector (binary head tuning).
    init : str
        "random" (a fresh head from each seed) for head tuning, "pretrained" for full fine-tuning
        (encoder at the pre-trained weights, fresh head from each seed).
    n_heads : int
        Heads per model before any stabiliser changes it.
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
        if self.setting not in SETTINGS:
            raise ValueError(f"setting must be one of {SETTINGS}, got {self.setting!r}")
        if not self.kinds or set(self.kinds) - set(KINDS):
            raise ValueError(f"kinds must be a non-empty subset of {KINDS}, got {self.kinds!r}")
        if isinstance(self.n_steps, bool) or not isinstance(self.n_steps, int) or self.n_steps < 1:
            raise ValueError(f"steps must be an integer >= 1, got {self.n_steps!r}")
        given = [step for step in (self.lr, self.lr_scale) if step is not None]
        if len(given) != 1:
            raise ValueError("exactly one of lr and lr_scale must be given")
        step = given[0]
        if not (np.isfinite(step) and step > 0):
            raise ValueError(f"learning rate must be a finite number > 0, got {step!r}")
        if self.batch_size is not None and self.batch_size < 1:
            raise ValueError(f"batch size must be >= 1 or None, got {self.batch_size}")
        if self.max_left_out is not None and self.max_left_out < 0:
            raise ValueError(f"left-out must be >= 0, got {self.max_left_out}")

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
