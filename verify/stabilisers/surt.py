"""SURT: Self-Unsupervised Re-Training before fine-tuning (Fu, So & Collier 2023)."""
from __future__ import annotations

from dataclasses import replace
from typing import Any

import torch

from verify.errors import NumberRange
from verify.stabilisers.base import Stabiliser

# Re-training steps: the suite pre-trains with a few hundred (synth.pretrained, pretrain_steps).
MAX_STEPS = 100_000


class SURT(Stabiliser):
    """Continue the backbone's own masked-feature reconstruction on the target's unlabelled inputs.

    Before fine-tuning, each model's encoder (with the pre-training decoder ``decoder.*`` handed
    to the trainer among the pre-trained weights) is trained further by
    :func:`synth.mlp.pretrain` on the inputs of that model's own training set — the model on S\\i
    never sees x_i, not even unlabelled. The masks of this stage come from the model's seed, so
    the models on S and on S\\i share them. Fine-tuning then starts from the re-trained encoder;
    the reference w0 of other stabilisers stays the original pre-trained weights. Theory: a
    backbone adapted to the target inputs starts closer to the fine-tuned optimum (smaller D).

    Parameters
    ----------
    n_steps : int
        Re-training steps (full-batch Adam, as pre-training), in [1, 100000].
    lr : float
        Adam learning rate, in (0, 1].
    mask_rate : float
        Fraction of input entries hidden per step, in (0, 1).
    """

    name = "surt"
    targets = ("D",)
    applies_to = frozenset({"mlp"})
    ranges = {"n_steps": NumberRange(1, MAX_STEPS, integer=True),
              "lr": NumberRange(0.0, 1.0, low_open=True),  # Adam steps beyond 1 only diverge
              "mask_rate": NumberRange(0.0, 1.0, low_open=True, high_open=True)}

    def __init__(self, *, n_steps: int = 100, lr: float = 1e-2, mask_rate: float = 0.25):
        self.check_param("n_steps", n_steps)
        self.check_param("lr", lr)
        self.check_param("mask_rate", mask_rate)
        self.n_steps = int(n_steps)
        self.lr = float(lr)
        self.mask_rate = float(mask_rate)

    def params(self) -> dict[str, Any]:
        return {"n_steps": self.n_steps, "lr": self.lr, "mask_rate": self.mask_rate}

    def prepare(self, problem, generators):
        from synth.mlp import pretrain

        decoder = {name: value for name, value in problem.pretrained.items()
                   if name.startswith("decoder.")}
        if not decoder:
            raise ValueError("surt: the pre-trained weights must include the pre-training decoder "
                             "(decoder.* entries of init_params)")
        encoder_layers = [layer for layer in problem.layers if problem.groups[layer[0]] == "encoder"]
        architecture = {"n_features": int(problem.X.shape[1]),
                        "hidden": [int(problem.reference[layer[0]].shape[0])
                                   for layer in encoder_layers]}
        encoder_names = [name for layer in encoder_layers for name in layer]
        inputs = problem.X.numpy()
        retrained = {name: [] for name in encoder_names}
        for m, generator in enumerate(generators):
            start = {name: problem.params[name][m].numpy() for name in encoder_names}
            result = pretrain({**start, **decoder}, inputs[problem.masks[m].numpy() > 0],
                              architecture=architecture, n_steps=self.n_steps, lr=self.lr,
                              mask_rate=self.mask_rate,
                              random_state=int(torch.randint(2**32, (1,), generator=generator)))
            for name in encoder_names:
                retrained[name].append(torch.as_tensor(result.params[name],
                                                       dtype=problem.params[name].dtype))
        params = {**problem.params, **{name: torch.stack(values)
                                       for name, values in retrained.items()}}
        return replace(problem, params=params)
