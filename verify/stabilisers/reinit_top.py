"""Re-initialise the top encoder layers before fine-tuning (Zhang et al. 2021)."""
from __future__ import annotations

import copy
import numbers
from dataclasses import replace
from typing import Any

import torch

from synth.validation import Interval
from verify.stabilisers.base import MAX_MULTIPLIER, Stabiliser, init_layer


def encoder_blocks(problem) -> list[list[tuple[str, ...]]]:
    """The encoder's layers grouped into blocks, bottom to top: a layer holding a weight matrix
    starts a block, and the layers above it without one (normalisation) belong to it."""
    blocks: list[list[tuple[str, ...]]] = []
    for layer in problem.layers:
        if problem.groups[layer[0]] != "encoder":
            continue
        if any(problem.reference[name].dim() >= 2 for name in layer) or not blocks:
            blocks.append([layer])
        else:
            blocks[-1].append(layer)
    return blocks


def initial_values(problem, layer: tuple[str, ...]) -> dict[str, torch.Tensor]:
    """The values the architecture's own initialisation gives a layer without a weight matrix
    (a normalisation layer's ``reset_parameters``: deterministic, e.g. LayerNorm's 1 and 0)."""
    prefix = layer[0].rsplit(".", 1)[0]
    module = copy.deepcopy(problem.model.get_submodule(prefix))
    module.reset_parameters()
    own = dict(module.named_parameters())
    return {name: own[name.rsplit(".", 1)[1]].detach().to(problem.reference[name].dtype)
            for name in layer}


class ReinitTop(Stabiliser):
    """Replace the top ``n_layers`` encoder layers by fresh draws from each model's seed.

    A layer is a weight-matrix layer with the normalisation layers above it (a block of a deep
    backbone: Linear, LayerNorm). Fresh weight-matrix layers use torch.nn.Linear's default
    U(−1/sqrt(fan_in), 1/sqrt(fan_in)); their normalisation layers go back to the architecture's
    own initial values (LayerNorm: weight 1, bias 0). Theory: it moves the starting point of those
    layers (it changes D either way, and the variance over seeds), so its effect is measured
    rather than assumed.

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
        """The layers of the top ``n_layers`` blocks (:func:`encoder_blocks`), bottom to top."""
        blocks = encoder_blocks(problem)
        self.check_encoder(len(blocks))
        return [layer for block in blocks[len(blocks) - self.n_layers:] for layer in block]

    def prepare(self, problem, generators):
        params = dict(problem.params)
        for layer in self.selected_layers(problem):
            if all(problem.reference[name].dim() < 2 for name in layer):
                values = initial_values(problem, layer)
                params.update({name: values[name].expand_as(params[name]).clone() for name in layer})
                continue
            shapes = {name: problem.reference[name].shape for name in layer}
            fresh = [init_layer(shapes, generator, problem.reference[layer[0]].dtype)
                     for generator in generators]
            params.update({name: torch.stack([draw[name] for draw in fresh]) for name in layer})
        return replace(problem, params=params)
