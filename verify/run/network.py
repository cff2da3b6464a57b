"""A torch network seen as a function of one flat float64 weight vector: the MLP's evaluator and objective."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch.func import functional_call, vmap

from synth.backbones import build_network
from verify.run.evaluators import Evaluator
from verify.trainers.mlp import parameter_layout, sample_losses


@dataclass(frozen=True)
class FlatNetwork:
    """A torch network seen as a function of one flat float64 weight vector (names in ``names`` order).

    Gives the MLP's :class:`Evaluator` (batched over models with ``torch.func.vmap``) and the
    ``RunContext.objective`` the theory differentiates.
    """

    model: Any
    names: tuple[str, ...]
    shapes: tuple[tuple[int, ...], ...]
    loss: str

    @classmethod
    def of(cls, model: Any, loss: str) -> FlatNetwork:
        layers, _ = parameter_layout(model)
        names = tuple(name for layer in layers for name in layer)
        parameters = dict(model.named_parameters())
        return cls(model, names, tuple(tuple(parameters[name].shape) for name in names), loss)

    def flatten(self, weights: dict[str, np.ndarray], lead: int) -> np.ndarray:
        """Concatenate per-name arrays of shape ``(*lead_dims, [H,] *shape)`` into ``(*lead_dims, P)``.

        A heads axis H (MHLoss) is averaged away: a multi-head model predicts with its mean logit,
        which for linear heads is the prediction of its mean head.
        """
        parts = []
        for name, shape in zip(self.names, self.shapes, strict=True):
            value = weights[name]
            if value.ndim == lead + len(shape) + 1:
                value = value.mean(axis=lead)
            parts.append(value.reshape(*value.shape[:lead], -1))
        return np.concatenate(parts, axis=-1)

    def n_heads(self, weights: dict[str, np.ndarray], lead: int) -> int:
        """The size of the heads axis of ``weights`` (1 when there is none)."""
        name = next(name for name in self.names if name.startswith("head."))
        shape = self.shapes[self.names.index(name)]
        value = weights[name]
        return int(value.shape[lead]) if value.ndim == lead + len(shape) + 1 else 1

    def group_mask(self, groups: tuple[str, ...] | list[str]) -> np.ndarray:
        """Boolean mask over the flat weights of the parameters in ``groups`` ("encoder", "head")."""
        return np.concatenate([np.full(int(np.prod(shape)), name.split(".", 1)[0] in tuple(groups))
                               for name, shape in zip(self.names, self.shapes, strict=True)])

    def head_indices(self) -> np.ndarray:
        sizes = [int(np.prod(shape)) for shape in self.shapes]
        starts = np.cumsum([0, *sizes])
        return np.concatenate([np.arange(starts[j], starts[j + 1])
                               for j, name in enumerate(self.names) if name.startswith("head.")])

    def _unflatten(self, w: Any) -> dict[str, Any]:
        out, start = {}, 0
        for name, shape in zip(self.names, self.shapes, strict=True):
            size = int(np.prod(shape))
            out[name] = w[..., start:start + size].reshape(*w.shape[:-1], *shape)
            start += size
        return out

    def _logits(self, w: Any, X: Any) -> Any:
        return functional_call(self.model, self._unflatten(w), (X,))

    def _features(self, w: Any, X: Any) -> Any:
        encoder = {name[len("encoder."):]: value for name, value in self._unflatten(w).items()
                   if name.startswith("encoder.")}
        return functional_call(self.model.encoder, encoder, (X,))

    def features(self, W: np.ndarray, X: np.ndarray) -> np.ndarray:
        """(M, n, h) encoder features of every model (flat weights ``W``) on ``X``."""
        with torch.no_grad():
            inputs = torch.as_tensor(np.asarray(X, dtype=np.float64))
            return vmap(lambda w: self._features(w, inputs))(torch.as_tensor(W)).numpy()

    def _batched(self, W: np.ndarray, X: np.ndarray, function: Callable) -> np.ndarray:
        with torch.no_grad():
            inputs = torch.as_tensor(np.asarray(X, dtype=np.float64))
            result = vmap(lambda w: function(self._logits(w, inputs)))(torch.as_tensor(W))
        return result.numpy()

    def evaluator(self) -> Evaluator:

        def per_sample_loss(W, X, y):
            labels = torch.as_tensor(np.asarray(y, dtype=np.int64))
            return self._batched(W, X, lambda logits: sample_losses(logits, labels, self.loss))

        return Evaluator(per_sample_loss=per_sample_loss,
                         predict=lambda W, X: self._batched(W, X, lambda logits: logits.argmax(-1)),
                         head=self.head_indices(), features=self.features)

    def objective(self, X: np.ndarray, y: np.ndarray) -> Callable:
        """``(w_flat, sample_weights) -> Σ_j s_j ℓ_j(w) / Σ_j s_j`` as torch (RunContext.objective)."""
        inputs = torch.as_tensor(np.asarray(X, dtype=np.float64))
        labels = torch.as_tensor(np.asarray(y, dtype=np.int64))

        def objective(w, sample_weights):
            losses = sample_losses(self._logits(w, inputs), labels, self.loss)
            return (losses * sample_weights).sum() / sample_weights.sum()

        return objective


def objective_for(spec: dict[str, Any], X: np.ndarray, y: np.ndarray) -> Callable:
    """RunContext.objective of an MLP task from its stored description ``{"architecture", "loss"}``
    (``verify.run.output.TaskWeights.objective``): the network rebuilt, the same function as in training."""
    return FlatNetwork.of(build_network(spec["architecture"]), spec["loss"]).objective(X, y)
