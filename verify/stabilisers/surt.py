"""SURT: Self-Unsupervised Re-Training before fine-tuning (Fu, So & Collier 2023)."""
from __future__ import annotations

import numbers
from dataclasses import replace
from typing import Any

import torch

from synth.validation import Interval, Options
from verify.stabilisers.base import Stabiliser

# Re-training steps: the suite pre-trains with a few hundred (synth.pretrained, pretrain_steps).
MAX_STEPS = 100_000
INPUTS = ("shared", "own")


class SURT(Stabiliser):
    """Continue the backbone's own masked-feature reconstruction on unlabelled target inputs.

    Before fine-tuning, each model's encoder (with the pre-training decoder ``decoder.*`` handed
    to the trainer among the pre-trained weights) is trained further by the backbone family's
    self-supervised objective (:func:`synth.backbones.continue_pretraining`). Fine-tuning then
    starts from the re-trained encoder; the reference w0 of other stabilisers stays the original
    pre-trained weights. Theory: a backbone adapted to the target inputs starts closer to the
    fine-tuned optimum (smaller D) when the target optimum lies toward it.

    Which inputs (``inputs``):

    - ``"shared"`` (default, the transductive / task-adaptive pre-training reading): the task's
      unlabelled target pool (``problem.unlabelled``) when it has one, else the inputs of the full
      set S; the same for the model on S and every model on S\\i, so re-training adds no
      leave-one-out difference (models sharing a seed start from the same re-trained encoder);
    - ``"own"``: each model's own training inputs, so the model on S\\i never sees x_i, not even
      unlabelled. This adds leave-one-out distance by construction: the two starts differ before
      fine-tuning begins.

    The masks of this stage come from the model's seed (``prepare:surt``).

    Parameters
    ----------
    n_steps : int
        Re-training steps (full-batch Adam, as pre-training), in [1, 100000].
    lr : float
        Adam learning rate, in (0, 1].
    mask_rate : float
        Fraction of input entries hidden per step, in (0, 1).
    inputs : {"shared", "own"}
        The re-training inputs (above).
    """

    name = "surt"
    targets = ("D", "D_encoder", "teacher_distance")
    parameter_constraints = {"n_steps": [Interval(numbers.Integral, 1, MAX_STEPS)],
                             # Adam steps beyond 1 only diverge
                             "lr": [Interval(numbers.Real, 0.0, 1.0, "right")],
                             "mask_rate": [Interval(numbers.Real, 0.0, 1.0, "neither")],
                             "inputs": [Options(INPUTS)]}
    strength_grid = {"n_steps": (30, 100, 300)}

    def __init__(self, *, n_steps: int = 100, lr: float = 1e-2, mask_rate: float = 0.25,
                 inputs: str = "shared"):
        self.check_param("n_steps", n_steps)
        self.check_param("lr", lr)
        self.check_param("mask_rate", mask_rate)
        self.check_param("inputs", inputs)
        self.n_steps = int(n_steps)
        self.lr = float(lr)
        self.mask_rate = float(mask_rate)
        self.inputs = inputs

    def params(self) -> dict[str, Any]:
        return {"n_steps": self.n_steps, "lr": self.lr, "mask_rate": self.mask_rate,
                "inputs": self.inputs}

    def prepare(self, problem, generators):
        from synth.backbones import architecture_of, continue_pretraining

        decoder = {name: value for name, value in problem.pretrained.items()
                   if name.startswith("decoder.")}
        if not decoder:
            raise ValueError("surt: the pre-trained weights must include the pre-training decoder "
                             "(decoder.* entries of init_params)")
        architecture = architecture_of(problem.model)
        encoder_names = [name for layer in problem.layers for name in layer
                         if problem.groups[name] == "encoder"]
        shared = (problem.unlabelled if problem.unlabelled is not None
                  else problem.X.numpy())
        retrained = {name: [] for name in encoder_names}
        by_seed = {}
        for m, generator in enumerate(generators):
            random_state = int(torch.randint(2**32, (1,), generator=generator))
            key = (int(problem.seeds[m]), random_state)
            if self.inputs == "own" or key not in by_seed:
                start = {name: problem.params[name][m].numpy() for name in encoder_names}
                inputs = (problem.X.numpy()[problem.masks[m].numpy() > 0] if self.inputs == "own"
                          else shared)
                by_seed[key] = continue_pretraining(
                    {**start, **decoder}, inputs, architecture=architecture,
                    n_steps=self.n_steps, lr=self.lr, mask_rate=self.mask_rate,
                    random_state=random_state).params
            for name in encoder_names:
                retrained[name].append(torch.as_tensor(by_seed[key][name],
                                                       dtype=problem.params[name].dtype))
        params = {**problem.params, **{name: torch.stack(values)
                                       for name, values in retrained.items()}}
        return replace(problem, params=params)
