"""Layer-wise learning-rate decay (Howard & Ruder 2018; Sun et al. 2019)."""
from __future__ import annotations

import numbers
from typing import Any

from synth.validation import Interval
from verify.stabilisers.base import Stabiliser


class LayerwiseLRDecay(Stabiliser):
    """Scale the step of each encoder layer by ξ^k, k its depth below the top encoder layer.

    The head and the top encoder layer move at the full learning rate; the layer below at ξ times
    it, the next at ξ², and so on (Sun et al. 2019's convention). Layers come from the problem's
    bottom-to-top order. Theory: lower layers stay nearer w0 (smaller effective η there).

    Parameters
    ----------
    factor : float
        ξ in (0, 1].
    """

    name = "llrd"
    targets = ("D",)
    identity_params = {"factor": 1.0}
    parameter_constraints = {"factor": [Interval(numbers.Real, 0.0, 1.0, "right")]}
    strength_grid = {"factor": (0.6, 0.8, 0.95)}

    def __init__(self, *, factor: float = 0.8):
        self.check_param("factor", factor)
        self.factor = float(factor)

    def params(self) -> dict[str, Any]:
        return {"factor": self.factor}

    def layer_scales(self, ctx) -> dict[str, float]:
        """Step scale of every parameter name."""
        encoder_layers = [layer for layer in ctx.layers if ctx.groups[layer[0]] == "encoder"]
        scales = {name: 1.0 for layer in ctx.layers for name in layer}
        for depth, layer in enumerate(reversed(encoder_layers)):
            scales.update({name: self.factor ** depth for name in layer})
        return scales

    def transform_grads(self, grads, params, ctx):
        scales = self.layer_scales(ctx)
        return {name: grad * scales[name] for name, grad in grads.items()}
