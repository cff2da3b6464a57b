"""SURT for the real models: continue each backbone's *own* self-supervised objective on the target
task's unlabelled training inputs before fine-tuning.

:class:`verify.stabilisers.surt.SURT` continues the synthetic MLP backbones' masked-feature
reconstruction; the real backbones were pre-trained with other objectives, so they get their own
stage under the same name (``surt``) and the same contract: each model (seed, left-out set) is
re-trained on the inputs of its own training set only (the model on S\\i never sees x_i), from its
seed's ``prepare:surt`` generator; the reference w0 of other stabilisers stays the pre-trained weights.

- digits CNN (:class:`DigitsSURT`): masked-pixel reconstruction through the pre-training decoder,
  with Adam, as in :func:`verify.real.digits.pretrain_digits_cnn` (full batch); the decoder is held at
  its pre-trained weights, so all the adaptation lands in the encoder that is fine-tuned next.
- MiniLM (:class:`ContrastiveSURT`): all-MiniLM-L6-v2 was trained with a contrastive objective on
  (anchor, positive) text pairs such as (title, body), with in-batch negatives and cosine similarity
  scaled by 20 (multiple-negatives ranking loss). BBC articles come as a title line and a body, so the
  model's own objective applies unchanged to the target's unlabelled articles: (title, body) pairs,
  in-batch negatives, scale 20. The checkpoint has no masked-language-model head (one would have to
  be trained first and would not be the model's own), hence this choice.
"""
from __future__ import annotations

import numbers
from dataclasses import replace
from typing import Any

import torch
from torch.func import functional_call

from verify.real.digits import MASK_RATE
from synth.validation import Interval
from verify.stabilisers.base import Stabiliser

CONTRASTIVE_SCALE = 20.0


def _encoder_names(problem) -> list[str]:
    return [name for layer in problem.layers for name in layer if problem.groups[name] == "encoder"]


def _encode(problem, params: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    local = {name.split(".", 1)[1]: value for name, value in params.items()}
    return functional_call(problem.model.encoder, local, (x,))


def _retrain_each_model(problem, generators, retrain) -> Any:
    """Apply ``retrain(start_params, own_rows, generator) -> params`` to every model's encoder."""
    names = _encoder_names(problem)
    retrained: dict[str, list[torch.Tensor]] = {name: [] for name in names}
    for m, generator in enumerate(generators):
        own = problem.masks[m] > 0
        start = {name: problem.params[name][m].detach().clone() for name in names}
        result = retrain(start, own, generator)
        for name in names:
            retrained[name].append(result[name].detach().to(problem.params[name].dtype))
    return replace(problem, params={**problem.params, **{name: torch.stack(values)
                                                         for name, values in retrained.items()}})


class DigitsSURT(Stabiliser):
    """Continue masked-pixel reconstruction (the CNN's pre-training objective) on the training images.

    Parameters
    ----------
    n_steps : int
        Full-batch Adam steps, >= 1.
    lr : float
        Adam's learning rate, > 0 (pre-training used 3e-3).
    """

    name = "surt"
    targets = ("D",)
    parameter_constraints = {"n_steps": [Interval(numbers.Integral, 1, None)],
                             "lr": [Interval(numbers.Real, 0.0, None, "neither")]}

    def __init__(self, *, n_steps: int = 100, lr: float = 3e-3):
        self.check_param("n_steps", n_steps)
        self.check_param("lr", lr)
        self.n_steps = int(n_steps)
        self.lr = float(lr)

    def params(self) -> dict[str, Any]:
        return {"n_steps": self.n_steps, "lr": self.lr}

    def prepare(self, problem, generators):
        if "decoder.weight" not in problem.pretrained:
            raise ValueError("surt: the pre-trained weights must include the reconstruction decoder")

        def retrain(start, own, generator):
            x = problem.X[own]
            dtype = x.dtype
            params = {name: value.requires_grad_() for name, value in start.items()}
            decoder = {name: torch.as_tensor(problem.pretrained[f"decoder.{name}"], dtype=dtype)
                       for name in ("weight", "bias")}
            optimiser = torch.optim.Adam(list(params.values()), lr=self.lr)
            for _ in range(self.n_steps):
                keep = (torch.rand(x.shape, generator=generator, dtype=dtype) >= MASK_RATE).to(dtype)
                features = _encode(problem, params, x * keep)
                reconstruction = torch.nn.functional.linear(features, decoder["weight"], decoder["bias"])
                loss = ((reconstruction - x) ** 2).mean()
                optimiser.zero_grad()
                loss.backward()
                optimiser.step()
            return params

        return _retrain_each_model(problem, generators, retrain)


class ContrastiveSURT(Stabiliser):
    """Continue MiniLM's contrastive objective on (title, body) pairs of the training articles.

    Parameters
    ----------
    n_steps : int
        Full-batch Adam steps, >= 1.
    lr : float
        Adam's learning rate, > 0.
    pairs : tuple of two tensors, optional
        Token rows (as :func:`verify.real.minilm_classifier.token_rows`) of each training article's
        title and of its body, aligned with the training samples; given by the runner, not a
        parameter of the results.
    """

    name = "surt"
    targets = ("D",)
    parameter_constraints = {"n_steps": [Interval(numbers.Integral, 1, None)],
                             "lr": [Interval(numbers.Real, 0.0, None, "neither")]}

    def __init__(self, *, n_steps: int = 3, lr: float = 2e-5,
                 pairs: tuple[torch.Tensor, torch.Tensor] | None = None):
        self.check_param("n_steps", n_steps)
        self.check_param("lr", lr)
        self.n_steps = int(n_steps)
        self.lr = float(lr)
        self.pairs = pairs

    def params(self) -> dict[str, Any]:
        return {"n_steps": self.n_steps, "lr": self.lr}

    def prepare(self, problem, generators):
        if self.pairs is None:
            raise ValueError("surt: ContrastiveSURT needs the (title, body) token rows of the articles")
        titles, bodies = self.pairs

        def retrain(start, own, generator):
            params = {name: value.requires_grad_() for name, value in start.items()}
            optimiser = torch.optim.Adam(list(params.values()), lr=self.lr)
            targets = torch.arange(int(own.sum()))
            problem.model.train()
            for _ in range(self.n_steps):
                torch.manual_seed(int(torch.randint(2**62, (1,), generator=generator)))  # dropout
                anchors = torch.nn.functional.normalize(_encode(problem, params, titles[own]), dim=-1)
                positives = torch.nn.functional.normalize(_encode(problem, params, bodies[own]), dim=-1)
                loss = torch.nn.functional.cross_entropy(CONTRASTIVE_SCALE * anchors @ positives.T, targets)
                optimiser.zero_grad()
                loss.backward()
                optimiser.step()
            return params

        return _retrain_each_model(problem, generators, retrain)
