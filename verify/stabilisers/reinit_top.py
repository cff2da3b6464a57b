"""Re-initialise the top encoder layers before fine-tuning (Zhang et al. 2021)."""
from __future__ import annotations

import numbers
from typing import Any

from synth.validation import Interval
from verify.effects import Effects, Start
from verify.stabilisers.base import MAX_MULTIPLIER, Stabiliser


class ReinitTop(Stabiliser):
    """Replace the top ``n_layers`` encoder layers by fresh draws from each model's seed.

    A layer is a weight-matrix layer with the normalisation layers above it (a block of a deep
    backbone: Linear, LayerNorm; :func:`verify.stabilisers.base.encoder_blocks`). Fresh
    weight-matrix layers use torch.nn.Linear's default U(−1/sqrt(fan_in), 1/sqrt(fan_in)); their
    normalisation layers go back to the architecture's own initial values (LayerNorm: weight 1,
    bias 0). The MLP trainer does it from the record (``Start(reinit_top=n_layers)``). Theory: it
    moves the starting point of those layers (it changes D either way, and the variance over seeds),
    so its effect is measured rather than assumed.

    Parameters
    ----------
    n_layers : int
        How many layers, counted from the top encoder layer, >= 1 (at most the encoder's depth).
    """

    name = "reinit_top"
    targets = ("D", "init_variance")
    parameter_constraints = {"n_layers": [Interval(numbers.Integral, 1, MAX_MULTIPLIER)]}
    strength_grid = {"n_layers": (1, 2)}

    def __init__(self, *, n_layers: int = 1):
        self.check_param("n_layers", n_layers)
        self.n_layers = int(n_layers)

    def params(self) -> dict[str, Any]:
        return {"n_layers": self.n_layers}

    def effects(self) -> Effects:
        return Effects(start=Start(reinit_top=self.n_layers))
