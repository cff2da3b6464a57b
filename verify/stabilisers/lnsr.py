"""LNSR-style noise-stability regulariser on encoder features (Hua et al. 2021; cf. R3F/R4F)."""
from __future__ import annotations

import numbers
from typing import Any

import torch

from synth.validation import Interval
from verify.stabilisers.base import STRENGTH, Stabiliser

# σ is in input units; the suite's inputs are O(1) (synth), so noise beyond 10 only measures the
# response to noise, not to the data.
MAX_NOISE = 10.0


class LNSR(Stabiliser):
    """Penalise λ Σ_j w_j ‖f(x_j + σ ε_j) − f(x_j)‖² with ε_j ~ N(0, I) drawn at every step.

    f is the encoder with the forward pass's parameters and w_j the model's sample weights, so the
    penalty is the mean squared response of the features to input noise of scale σ: a Lipschitz
    (noise-stability) control. Theory: a smoother model has smaller per-sample gradient norms ρ.
    The noise comes from the seed's training stream (shared by the models on S and on S\\i).

    Parameters
    ----------
    strength : float
        λ in [0, 100] (``MAX_STRENGTH``).
    noise : float
        σ in (0, 10], in input units.
    """

    name = "lnsr"
    targets = ("rho",)
    identity_params = {"strength": 0.0}
    parameter_constraints = {"strength": [STRENGTH],
                             "noise": [Interval(numbers.Real, 0.0, MAX_NOISE, "right")]}
    strength_grid = {"strength": (0.1, 1.0, 10.0)}

    def __init__(self, *, strength: float = 1.0, noise: float = 0.1):
        self.check_param("strength", strength)
        self.check_param("noise", noise)
        self.strength = float(strength)
        self.noise = float(noise)

    def params(self) -> dict[str, Any]:
        return {"strength": self.strength, "noise": self.noise}

    def draw(self, problem, batch_size, generator):
        shape = (batch_size, problem.X.shape[1])
        return {"epsilon": torch.randn(shape, generator=generator, dtype=problem.X.dtype)}

    def penalty(self, params, ctx):
        noisy = ctx.encode(ctx.forward_params, ctx.x + self.noise * ctx.noise["epsilon"])
        return self.strength * (ctx.weights * ((noisy - ctx.features) ** 2).sum(-1)).sum()
