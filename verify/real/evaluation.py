"""Evaluators of the real models from flat weights, for :func:`verify.run.rows.trace_rows`.

A network's flat weight vector is its parameters in ``named_parameters`` order, each flattened; the
head's entries (weight and bias) form the vector whose direction the head measures use.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch
from torch import nn
from torch.func import functional_call, vmap

from verify.run.evaluators import Evaluator


def flatten_weights(weights: Mapping[str, np.ndarray], names: Sequence[str]) -> np.ndarray:
    """``(K, M, ...)`` arrays by name -> ``(K, M, P)`` flat weights in ``names`` order."""
    return np.concatenate([weights[name].reshape(*weights[name].shape[:2], -1) for name in names], axis=2)


def head_weights(w: np.ndarray) -> np.ndarray:
    """Linear heads ``(K, M, [H,] C, d)`` -> flat ``(K, M, C*d)``; several heads are averaged, since a
    multi-head model predicts with the mean logit, which is the logit of the mean head."""
    if w.ndim == 5:
        w = w.mean(axis=2)
    return w.reshape(*w.shape[:2], -1)


def network_evaluator(model: nn.Module, *, chunk: int = 64) -> Evaluator:
    """Softmax cross-entropy and argmax prediction of ``model`` from flat weights ``(M, P)``.

    ``model`` needs ``encoder`` and ``head`` submodules; models are evaluated ``chunk`` at a time with
    ``torch.func.vmap`` over ``functional_call``.
    """
    names = [name for name, _ in model.named_parameters()]
    shapes = [tuple(parameter.shape) for _, parameter in model.named_parameters()]
    sizes = [int(np.prod(shape)) for shape in shapes]
    offsets = np.cumsum([0, *sizes])
    head = np.concatenate([np.arange(offsets[i], offsets[i + 1])
                           for i, name in enumerate(names) if name.startswith("head.")])

    def logits(W: np.ndarray, X: np.ndarray) -> torch.Tensor:
        x = torch.as_tensor(X, dtype=torch.float64)

        def one(flat: torch.Tensor) -> torch.Tensor:
            params = {name: flat[offsets[i]:offsets[i + 1]].reshape(shapes[i])
                      for i, name in enumerate(names)}
            return functional_call(model, params, (x,))

        with torch.no_grad():
            flat = torch.as_tensor(W, dtype=torch.float64)
            return torch.cat([vmap(one)(flat[start:start + chunk]) for start in range(0, len(flat), chunk)])

    def per_sample_loss(W: np.ndarray, X: np.ndarray, y: np.ndarray) -> np.ndarray:
        scores = logits(W, X)
        target = torch.as_tensor(np.asarray(y), dtype=torch.int64).expand(scores.shape[:2])
        return nn.functional.cross_entropy(scores.transpose(1, 2), target, reduction="none").numpy()

    def predict(W: np.ndarray, X: np.ndarray) -> np.ndarray:
        return logits(W, X).argmax(dim=2).numpy()

    return Evaluator(per_sample_loss=per_sample_loss, predict=predict, head=head)
