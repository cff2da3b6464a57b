"""The per-model Python loop that :func:`verify.trainers.mlp.train_mlp` must match and beat.

Same signature and the same mathematics, but one model at a time: each model is prepared on its own
(a one-model problem), draws from its own copy of its seed's training stream, and is differentiated
by reverse-mode autograd (``torch.autograd.grad``) instead of ``vmap`` over ``torch.func.grad``.
Tests check the two agree within 1e-10; ``bench/bench_mlp.py`` times them.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch
from torch import nn

from verify.optimiser_spec import PLAIN, OptimiserSpec
from verify.seeding import run_seed
from verify.stabilisers.base import Stabiliser
from verify.trainers.mlp import (BLOWUP, ModelObjective, _validate, batch_weights,
                                 draw_dropout_masks, draw_step, prepare_problem, zero_head_loss)
from verify.trainers.optimisers import Optimiser
from verify.trainers.trace import Trace


def train_mlp(model: nn.Module, init_params: Mapping[str, np.ndarray], X, y, *, masks, seeds,
                    loss: str = "softmax", lr: float, n_steps: int, checkpoints,
                    batch_size: int | None = None, stabilisers: Sequence[Stabiliser] = (),
                    w0: Mapping[str, np.ndarray] | None = None, optimiser: OptimiserSpec = PLAIN,
                    dropout: float = 0.0, unlabelled=None,
                    dtype: torch.dtype = torch.float64) -> Trace:
    """Same as :func:`verify.trainers.mlp.train_mlp`, one model after the other."""
    stabilisers = tuple(stabilisers)
    X, y, masks, seeds, points = _validate(X, y, masks, seeds, loss, lr, n_steps, checkpoints,
                                           batch_size, stabilisers, dtype, model, optimiser,
                                           dropout)
    per_model = [_train_one(model, init_params, X, y, masks[m:m + 1], seeds[m:m + 1], loss,
                            Optimiser(optimiser, lr=lr, n_steps=max(int(n_steps), 1)), n_steps,
                            set(points.tolist()), batch_size, stabilisers, w0, dropout,
                            unlabelled, dtype)
                 for m in range(masks.shape[0])]
    names = per_model[0][0][0].keys()
    return Trace(iterations=points,
                 weights={name: np.stack([np.stack([w[name] for w in weights])
                                          for weights, _, _ in per_model], axis=1)
                          for name in names},
                 train_loss=np.stack([np.asarray(losses) for _, losses, _ in per_model], axis=1),
                 diverged_at=np.asarray([diverged for _, _, diverged in per_model], dtype=np.int64))


def _train_one(model, init_params, X, y, mask, seed, loss, optimiser, n_steps, wanted, batch_size,
               stabilisers, w0, dropout, unlabelled, dtype):
    problem = prepare_problem(model, init_params, X, y, masks=mask, seeds=seed,
                              stabilisers=stabilisers, w0=w0, unlabelled=unlabelled, dtype=dtype)
    objective = ModelObjective(problem, loss, stabilisers, optimiser)
    generator = torch.Generator().manual_seed(run_seed(int(seed[0]), "train_stream"))
    params = {name: value[0].clone() for name, value in problem.params.items()}
    state = optimiser.init(params)
    full_weights = batch_weights(mask[0], None)
    diverged_at, threshold = -1, None
    recorded_weights, recorded_loss = [], []
    for t in range(n_steps + 1):
        if t < n_steps:
            indices, noises = draw_step(problem, stabilisers, generator, batch_size)
            dropout_masks = draw_dropout_masks(problem, batch_size, dropout, generator)
            x_batch, y_batch = (X, y) if indices is None else (X[indices], y[indices])
            weights = batch_weights(mask[0], indices)
            leaves = {name: value.detach().requires_grad_() for name, value in params.items()}
            total, _ = objective.objective(leaves, x_batch, y_batch, weights, noises, dropout_masks)
            grads = dict(zip(leaves, torch.autograd.grad(total, list(leaves.values()))))
            grads = objective.transform(grads, params, x_batch, y_batch, weights, noises)
            new_params, state = objective.apply(grads, state, params)
        loss_now = float(objective.data_loss(params, X, y, full_weights))
        if threshold is None:
            threshold = BLOWUP * max(loss_now, float(zero_head_loss(y, loss, problem, dtype)))
        finite = np.isfinite(loss_now) and all(bool(torch.isfinite(v).all()) for v in params.values())
        if diverged_at < 0 and (not finite or loss_now > threshold):
            diverged_at = t
        if diverged_at >= 0:
            params = {name: torch.full_like(value, torch.nan) for name, value in params.items()}
        if t in wanted:
            recorded_weights.append({name: (value[0] if problem.groups[name] == "head"
                                            and problem.n_heads == 1 else value).detach().numpy().copy()
                                     for name, value in params.items()})
            recorded_loss.append(np.nan if diverged_at >= 0 else loss_now)
        if t < n_steps:
            params = {name: value.detach() for name, value in new_params.items()}
    return recorded_weights, recorded_loss, diverged_at
