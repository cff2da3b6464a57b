"""Mixout toward the pre-trained weights (Lee, Cho & Kang 2020), element-wise variant."""
from __future__ import annotations

import numbers
from typing import Any

import torch

from synth.validation import BOOLEAN, Interval
from verify.stabilisers.base import GROUP_CONSTRAINTS, Stabiliser, check_groups, map_selected, selected_names


class Mixout(Stabiliser):
    """mixout(w0, p): each selected element is swapped for its pre-trained value with probability p.

    At every step and for every element independently, B ~ Bernoulli(p) and the forward pass uses
    w̃ = (B w0 + (1 − B) w − p w0) / (1 − p), so E[w̃] = w: the expected forward weights are the
    current weights, and the gradient reaches w only through the kept elements, scaled by
    1/(1 − p). This is Lee et al.'s element-wise mixout on weight matrices (biases are left alone
    unless ``include_bias``). Draws come from the seed's training stream, so the models on S and on
    S\\i share them.

    Parameters
    ----------
    p : float
        Mix probability in [0, 1).
    include_bias : bool
        Also mix vectors (biases), not only weight matrices.
    groups : sequence of {"encoder", "head"}
        Which parameters mix (the encoder by default; the head's w0 is not pre-trained).
    """

    name = "mixout"
    targets = ("mu", "D")
    identity_params = {"p": 0.0}
    parameter_constraints = {"p": [Interval(numbers.Real, 0.0, 1.0, "left")], "include_bias": [BOOLEAN],
                             "groups": GROUP_CONSTRAINTS}
    strength_grid = {"p": (0.05, 0.1, 0.3)}

    def __init__(self, *, p: float = 0.1, include_bias: bool = False, groups=("encoder",)):
        self.check_param("p", p)
        self.check_param("include_bias", include_bias)
        self.p = float(p)
        self.include_bias = include_bias
        self.groups = check_groups(groups)

    def params(self) -> dict[str, Any]:
        return {"p": self.p, "include_bias": self.include_bias, "groups": list(self.groups)}

    def _names(self, where):
        return selected_names(where, self.groups, matrices_only=not self.include_bias)

    def draw(self, problem, batch_size, generator):
        return {name: (torch.rand(problem.reference[name].shape, generator=generator,
                                  dtype=problem.reference[name].dtype) < self.p
                       ).to(problem.reference[name].dtype)
                for name in self._names(problem)}

    def perturb(self, params, ctx):
        def mix(name, weight):
            reference, swapped = ctx.reference[name], ctx.noise[name]
            return (swapped * reference + (1 - swapped) * weight - self.p * reference) / (1 - self.p)
        return map_selected(params, self._names(ctx), mix)
