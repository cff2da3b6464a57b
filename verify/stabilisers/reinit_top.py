"""Re-initialise the top encoder layers before fine-tuning (Zhang et al. 2021)."""
from __future__ import annotations

import numbers
from dataclasses import replace
from typing import Any

import torch

from synth.validation import Interval
from verify.stabilisers.base import MAX_MULTIPLIER, Stabiliser, init_layer


class ReinitTop(Stabiliser):
    """Replace the top ``n_layers`` encoder layers by fresh draws from each model's seed.

    Fresh layers use torch.nn.Linear's default U(−1/sqrt(fan_in), 1/sqrt(fan_in)). Theory: it moves
    the starting point of those layers (it changes D either way, and the variance over seeds), so
    its effect is measured rather than assumed.

    Parameters
    ----------
    n_layers : int
        How many layers, counted from the top encoder layer, >= 1 (at most the encoder's depth).
    """

    name = "reinit_top"
    targets = ("D", "init_variance")
    applies_to = frozenset({"mlp"})
    parameter_constraints = {"n_layers": [Interval(numbers.Integral, 1, MAX_MULTIPLIER)]}

    def __init__(self, *, n_layers: int = 1):
        self.check_param("n_layers", n_layers)
        self.n_layers = int(n_layers)

    def params(self) -> dict[str, Any]:
        return {"n_layers": self.n_layers}

    def check_encoder(self, n_layers: int) -> None:
        if self.n_layers > n_layers:
            raise ValueError(f"n_layers must be an int in [1, {n_layers}] for this encoder "
                             f"(got {self.n_layers})")

    def selected_layers(self, problem) -> list[tuple[str, ...]]:
        encoder_layers = [layer for layer in problem.layers if problem.groups[layer[0]] == "encoder"]
        self.check_encoder(len(encoder_layers))
        return encoder_layers[len(encoder_layers) - self.n_layers:]

    def prepare(self, problem, generators):
        params = dict(problem.params)
        for layer in self.selected_layers(problem):
            shapes = {name: problem.reference[name].shape for name in layer}
            fresh = [init_layer(shapes, generator, problem.reference[layer[0]].dtype)
                     for generator in generators]
            params.update({name: torch.stack([draw[name] for draw in fresh]) for name in layer})
        return replace(problem, params=params)
