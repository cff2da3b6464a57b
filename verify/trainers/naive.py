"""The naive baseline: heads and quadratic tasks trained one model at a time in a Python loop.

Same signatures, definitions (losses, initialisation, SGD coupling, divergence) and results as
:func:`verify.trainers.head.train_heads` and :func:`verify.trainers.quadratic.train_quadratic`, but
written the plain way: each model gathers its own samples and follows the textbook update in its own
loop over steps, computing its loss at every step. The equality tests and ``bench/`` compare the
batched trainers against these. (The MLP baseline is :mod:`verify.trainers.naive_mlp`.)
"""
from __future__ import annotations

import math

import numpy as np
import torch

from verify.seeding import run_seed
from verify.trainers.head import BATCH_STREAM, BLOWUP, check_head_problem
from verify.trainers.quadratic import check_quadratic_problem
from verify.trainers.trace import Trace


def train_heads(X, y, *, masks, init, loss, lr, n_steps, checkpoints, batch_size=None, seeds=None,
                n_heads=1, head_reduction="mean", dtype=torch.float64) -> Trace:
    """Per-model loop with the signature and results of :func:`verify.trainers.head.train_heads`."""
    problem = check_head_problem(X, y, masks=masks, init=init, loss=loss, lr=lr, n_steps=n_steps,
                                 checkpoints=checkpoints, batch_size=batch_size, seeds=seeds,
                                 n_heads=n_heads, head_reduction=head_reduction)
    X = torch.as_tensor(problem.X, dtype=dtype)
    y = torch.as_tensor(problem.y)
    n_classes = problem.init.shape[2]
    reduce = torch.mean if head_reduction == "mean" else torch.sum
    head_scale = problem.head_scale
    zero_loss = {"logistic": math.log(2.0), "exponential": 1.0,
                 "softmax": math.log(n_classes)}[loss] * (1.0 if head_reduction == "mean" else n_heads)

    def loss_and_gradient(W, features, labels):
        """Model loss and its gradient w.r.t. W (H, C, d) on the given samples."""
        logits = (features @ W.reshape(-1, W.shape[-1]).T).reshape(len(features), *W.shape[:2])
        if loss == "softmax":
            per_sample = torch.logsumexp(logits, -1) - logits[torch.arange(len(labels)), :, labels]
            one_hot = torch.nn.functional.one_hot(labels, n_classes).to(dtype)[:, None, :]
            d_logits = torch.softmax(logits, -1) - one_hot
        else:
            signs = (2.0 * labels - 1.0)[:, None]
            margins = signs * logits[..., 0]
            if loss == "logistic":
                per_sample, d_margin = torch.nn.functional.softplus(-margins), -torch.sigmoid(-margins)
            else:
                per_sample = torch.exp(-margins)
                d_margin = -per_sample
            d_logits = (d_margin * signs)[..., None]
        gradient = (d_logits.reshape(len(features), -1).T @ features).reshape(W.shape)
        gradient = gradient * (head_scale / len(features))
        return reduce(per_sample.mean(0)), gradient

    n_models = len(problem.masks)
    points = problem.checkpoints.tolist()
    weights = np.full((len(points), n_models) + problem.init.shape[1:], np.nan)
    losses = np.full((len(points), n_models), np.nan)
    diverged_at = np.full(n_models, -1, dtype=np.int64)
    for m in range(n_models):
        own = torch.as_tensor(np.flatnonzero(problem.masks[m]))
        own_features, own_labels = X[own], y[own]
        member = torch.as_tensor(problem.masks[m])
        W = torch.as_tensor(problem.init[m], dtype=dtype)
        if batch_size is not None:
            assert problem.seeds is not None  # check_head_problem requires seeds for SGD
            generator = torch.Generator().manual_seed(run_seed(int(problem.seeds[m]), BATCH_STREAM))
        k = 0
        for t in range(problem.n_steps + 1):
            value, gradient = loss_and_gradient(W, own_features, own_labels)
            value = float(value)
            if t == 0:
                threshold = BLOWUP * (max(value, zero_loss) if math.isfinite(value) else zero_loss)
            if not value <= threshold:
                diverged_at[m] = t
                break
            if t == points[k]:
                weights[k, m], losses[k, m] = W.numpy(), value
                k += 1
                if k == len(points):
                    break
            if batch_size is not None:
                batch = torch.randperm(len(X), generator=generator)[:batch_size]
                batch = batch[member[batch]]
                if len(batch) == 0:
                    continue
                gradient = loss_and_gradient(W, X[batch], y[batch])[1]
            W = W - problem.lr[m] * gradient
    return Trace(iterations=problem.checkpoints,
                 weights={"w": weights.reshape((len(points),) + problem.weights_shape(n_models))},
                 train_loss=losses, diverged_at=diverged_at)


def train_quadratic(X, y, *, masks, w0, lr, n_steps, checkpoints, l2sp=0.0,
                    weight_decay=0.0) -> Trace:
    """Per-model loop with the signature and results of
    :func:`verify.trainers.quadratic.train_quadratic`."""
    problem = check_quadratic_problem(X, y, masks=masks, w0=w0, lr=lr, n_steps=n_steps,
                                      checkpoints=checkpoints, l2sp=l2sp, weight_decay=weight_decay)
    X = torch.as_tensor(problem.X)
    y = torch.as_tensor(problem.y)
    n_models, d = problem.w0.shape
    points = problem.checkpoints.tolist()
    weights = np.full((len(points), n_models, d), np.nan)
    losses = np.full((len(points), n_models), np.nan)
    diverged_at = np.full(n_models, -1, dtype=np.int64)
    for m in range(n_models):
        own = np.flatnonzero(problem.masks[m])
        features, targets = X[own], y[own]
        w0 = torch.as_tensor(problem.w0[m])
        w = w0.clone()
        k = 0
        for t in range(problem.n_steps + 1):
            residual = features @ w - targets
            value = float(0.5 * (residual ** 2).mean() + 0.5 * l2sp * ((w - w0) ** 2).sum()
                          + 0.5 * weight_decay * (w ** 2).sum())
            if t == 0:
                zero_value = float(0.5 * (targets ** 2).mean() + 0.5 * l2sp * (w0 ** 2).sum())
                threshold = BLOWUP * (max(value, zero_value) if math.isfinite(value) else zero_value)
            if not value <= threshold:
                diverged_at[m] = t
                break
            if t == points[k]:
                weights[k, m], losses[k, m] = w.numpy(), value
                k += 1
                if k == len(points):
                    break
            gradient = features.T @ residual / len(own) + l2sp * (w - w0) + weight_decay * w
            w = w - problem.lr * gradient
    return Trace(iterations=problem.checkpoints, weights={"w": weights}, train_loss=losses,
                 diverged_at=diverged_at)
