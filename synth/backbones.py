"""The pre-trained backbones by family: build the network, continue its self-supervised training.

A card's ``architecture`` names its family: ``"tanh"`` (:mod:`synth.mlp`, the default when the
key is absent) or ``"layernorm_tanh"`` (:mod:`synth.deep_backbone`). Trainers and stabilisers go
through these two functions, never through one family's module.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import cast

import numpy as np
from torch import nn

FAMILIES = ("tanh", "layernorm_tanh")


def family(architecture: Mapping) -> str:
    name = architecture.get("family", "tanh")
    if name not in FAMILIES:
        raise ValueError(f"architecture family: must be one of {FAMILIES}, got {name!r}")
    return name


def architecture_of(model: nn.Module) -> dict:
    """The ``architecture`` of a network built by :func:`build_network` (without ``n_classes``)."""
    from synth.deep_backbone import DeepMLP
    if isinstance(model, DeepMLP):
        return {key: value for key, value in model.architecture.items() if key != "n_classes"}
    linears = [module for module in cast(nn.Sequential, model.encoder) if isinstance(module, nn.Linear)]
    return {"family": "tanh", "n_features": linears[0].in_features,
            "hidden": [module.out_features for module in linears]}


def build_network(architecture: Mapping) -> nn.Module:
    """The fine-tuning network (``encoder`` + ``head``) of a card's ``architecture``."""
    if family(architecture) == "tanh":
        from synth.mlp import build_model
        return build_model(architecture)
    from synth.deep_backbone import build_deep_model
    return build_deep_model(architecture)


def continue_pretraining(params: Mapping[str, np.ndarray], X: np.ndarray, *,
                         architecture: Mapping, n_steps: int, lr: float, mask_rate: float,
                         random_state):
    """Masked-feature reconstruction from ``params`` (``encoder.*``, ``decoder.*``) on ``X``;
    returns the family's ``PretrainingResult``."""
    if family(architecture) == "tanh":
        from synth.mlp import pretrain
        return pretrain(params, X, architecture=architecture, n_steps=n_steps, lr=lr,
                        mask_rate=mask_rate, random_state=random_state)
    from synth.deep_backbone import pretrain_deep
    return pretrain_deep(params, X, architecture=architecture, n_steps=n_steps, lr=lr,
                         mask_rate=mask_rate, random_state=random_state)
