"""Re-initialisation and LNSR for MiniLM, under the registry's names (``reinit_top``, ``lnsr``).

The registry's versions assume layers with one weight matrix each and continuous inputs; MiniLM's
layers are transformer blocks and its inputs are token ids, so the real path gives them these
counterparts, which keep the registry's meaning:

- :class:`MiniLMReinitTop` re-initialises the top transformer blocks the way MiniLM's own
  initialiser does (Zhang et al. 2021): linear weights N(0, initializer_range²), biases 0, layer-norm
  scales 1 and shifts 0, drawn from each model's seed;
- :class:`MiniLMLNSR` adds LNSR's noise to the input *embeddings* (the continuous input of the
  transformer; Hua et al. 2021 perturb hidden inputs the same way) and penalises the squared change of
  the sentence embedding.
"""
from __future__ import annotations

import numbers
from dataclasses import replace
from typing import Any

import torch
from torch import nn
from torch.func import functional_call

from synth.validation import Interval
from verify.stabilisers.base import Stabiliser


class MiniLMReinitTop(Stabiliser):
    """Replace the top ``n_layers`` transformer blocks by MiniLM-style fresh draws from each seed.

    Parameters
    ----------
    n_layers : int
        Blocks counted from the top, in [1, 6].
    """

    name = "reinit_top"
    targets = ("D", "init_variance")

    parameter_constraints = {"n_layers": [Interval(numbers.Integral, 1, 6)]}

    def __init__(self, *, n_layers: int = 1):
        self.check_param("n_layers", n_layers)
        self.n_layers = int(n_layers)

    def params(self) -> dict[str, Any]:
        return {"n_layers": self.n_layers}

    def prepare(self, problem, generators):
        encoder_layers = [layer for layer in problem.layers if problem.groups[layer[0]] == "encoder"]
        chosen = {name for layer in encoder_layers[len(encoder_layers) - self.n_layers:] for name in layer}
        std = problem.model.encoder.bert.config.initializer_range
        modules = [(prefix, module) for prefix, module in problem.model.named_modules()
                   if isinstance(module, (nn.Linear, nn.LayerNorm)) and f"{prefix}.weight" in chosen]
        fresh = {name: [] for name in chosen}
        for generator in generators:
            for prefix, module in modules:
                weight = module.weight
                if isinstance(module, nn.Linear):
                    drawn = torch.empty(weight.shape, dtype=weight.dtype).normal_(0.0, std, generator=generator)
                else:
                    drawn = torch.ones(weight.shape, dtype=weight.dtype)
                fresh[f"{prefix}.weight"].append(drawn)
                fresh[f"{prefix}.bias"].append(torch.zeros(module.bias.shape, dtype=weight.dtype))
        missing = chosen - {name for name, values in fresh.items() if values}
        if missing:
            raise ValueError(f"reinit_top: no initialiser for {sorted(missing)[:3]}")
        params = {**problem.params, **{name: torch.stack(values).to(problem.params[name].dtype)
                                       for name, values in fresh.items()}}
        return replace(problem, params=params)


class MiniLMLNSR(Stabiliser):
    """Penalise λ Σ_j w_j ‖f(e_j + σ ε_j) − f(e_j)‖² with e_j the word embeddings of document j
    and f the unit sentence embedding (the encoder's output divided by its scale).

    Parameters
    ----------
    strength : float
        λ >= 0.
    noise : float
        σ > 0 per embedding coordinate (MiniLM's word embeddings have coordinates of about 0.05).
    encoder : torch.nn.Module, optional
        The classifier's encoder (:class:`verify.real.minilm_classifier.MiniLMEncoder`), given by the
        runner; not a parameter of the results.
    """

    name = "lnsr"
    targets = ("rho",)

    parameter_constraints = {"strength": [Interval(numbers.Real, 0.0, None)],
                             "noise": [Interval(numbers.Real, 0.0, None, "neither")]}

    def __init__(self, *, strength: float = 1.0, noise: float = 0.01, encoder: nn.Module | None = None):
        self.check_param("strength", strength)
        self.check_param("noise", noise)
        self.strength = float(strength)
        self.noise = float(noise)
        self.encoder = encoder

    def params(self) -> dict[str, Any]:
        return {"strength": self.strength, "noise": self.noise}

    def draw(self, problem, batch_size, generator):
        length = problem.X.shape[1] // 2
        hidden = self.encoder.bert.config.hidden_size
        return {"epsilon": torch.randn((batch_size, length, hidden), generator=generator,
                                       dtype=problem.X.dtype)}

    def penalty(self, params, ctx):
        if self.encoder is None:
            raise ValueError("lnsr: MiniLMLNSR needs the classifier's encoder")
        local = {name.split(".", 1)[1]: value for name, value in ctx.forward_params.items()
                 if ctx.groups[name] == "encoder"}
        noisy = functional_call(self.encoder, local, (ctx.x,),
                                {"embedding_noise": self.noise * ctx.noise["epsilon"]})
        change = (noisy - ctx.features) / self.encoder.scale
        return self.strength * (ctx.weights * (change ** 2).sum(-1)).sum()
