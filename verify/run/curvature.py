"""The curvature an MLP task's step size is set from: that of the objective actually trained.

``lr = lr_scale / β̂`` keeps gradient descent below η = 2/β only when β̂ is the largest curvature of
the objective the steps descend, in the metric of the steps. The objective trained is the data loss
reduced over the model's heads, plus the record's L2-SP term, plus weight decay (the penalty
½λ‖w_B‖² for plain steps), plus the hooks' penalties and perturbation at one draw; the balanced
multi-head reading steps each head H times further than the encoder (its heads' gradients times H),
so its metric is P = diag(H on the heads, 1 on the encoder) and β̂ = λ_max(P^½ ∇²F P^½): the largest
eigenvalue of the step's linearisation w ↦ w − η P ∇F(w).
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from theory.estimators import hessian_extreme_eigenvalues, objective_functions
from verify.effects import Effects
from verify.seeding import run_seed
from verify.stabilisers.base import FineTuningProblem, Stabiliser
from verify.trainers.mlp import ModelObjective


def objective_is_the_theorys(effects: Effects, stabilisers: Sequence[Stabiliser]) -> bool:
    """Whether the trained objective is the single-head data loss plus the record's penalties (the
    bounds' objective): one head, no penalty or perturbation hook."""
    return effects.heads.n_heads == 1 and not any(
        type(stabiliser).penalty is not Stabiliser.penalty
        or type(stabiliser).perturb is not Stabiliser.perturb for stabiliser in stabilisers)


def trained_curvature(problem: FineTuningProblem, loss: str, stabilisers: Sequence[Stabiliser]) -> float:
    """β̂ of the objective model 0 of ``problem`` trains, at its start, in the step's metric.

    Lanczos (:func:`theory.estimators.hessian_extreme_eigenvalues`) on Hessian-vector products of
    the full-batch objective of :class:`verify.trainers.mlp.ModelObjective` (every head, penalties,
    hooks; noises drawn once from the model's ``"curvature"`` stream; dropout off), with the
    balanced reading's head scaling as the metric (module docstring).
    """
    stabilisers = tuple(stabilisers)
    objective = ModelObjective(problem, loss, stabilisers)
    names = list(problem.params)
    start = {name: problem.params[name][0] for name in names}
    sizes = [start[name].numel() for name in names]
    scale = (float(problem.n_heads) if problem.head_reduction == "balanced" and problem.n_heads > 1
             else 1.0)
    root = torch.cat([torch.full((size,), scale ** 0.5 if problem.groups[name] == "head" else 1.0,
                                 dtype=torch.float64) for name, size in zip(names, sizes, strict=True)])
    generator = torch.Generator().manual_seed(run_seed(int(problem.seeds[0]), "curvature"))
    noises = tuple(stabiliser.draw(problem, problem.X.shape[0], generator)
                   for stabiliser in stabilisers)

    def scaled_objective(u: torch.Tensor, sample_weights: torch.Tensor) -> torch.Tensor:
        w = root * u
        params, offset = {}, 0
        for name, size in zip(names, sizes, strict=True):
            params[name] = w[offset:offset + size].reshape(start[name].shape)
            offset += size
        total, _ = objective.objective(params, problem.X, problem.y,
                                       sample_weights / sample_weights.sum(), noises)
        return total

    w0 = torch.cat([start[name].reshape(-1) for name in names])
    _, hvp = objective_functions(scaled_objective, (w0 / root).numpy(),
                                 problem.masks[0].numpy().astype(np.float64))
    return hessian_extreme_eigenvalues(hvp, int(w0.numel()))[1]


def check_curvature(beta: Any) -> float:
    """``beta`` if positive, else the one-line error a task fails with."""
    if not beta > 0:
        raise ValueError(f"the loss has no positive curvature at the pre-trained weights (β̂ = {beta})")
    return float(beta)
