"""AdamW of :class:`verify.optimiser_spec.OptimiserSpec`, updating the weights in place.

The same update rule and schedule as :class:`verify.trainers.optimisers.Optimiser` (tested equal),
written with in-place tensor operations: on a transformer of 17M weights the functional form's
temporaries cost more than the forward and backward passes together. Each tensor may carry its own
learning-rate multiplier (layer-wise learning-rate decay).

Row-sparse tensors (a word-embedding matrix: a batch's gradient is zero outside the rows of its
tokens) take the moment updates only on the rows whose gradient has ever been non-zero. This is
exact, not an approximation: on the other rows both moments are still exactly 0, so the Adam term
is 0 and the step is the weight decay alone, which is applied to the whole tensor.
"""
from __future__ import annotations

from collections.abc import Mapping

import torch

from verify.optimiser_spec import OptimiserSpec
from verify.trainers.optimisers import schedule_factor


class InPlaceAdamW:
    """Steps ``params`` (a dict of tensors, changed in place) with ``grads``.

    Parameters
    ----------
    spec : OptimiserSpec
        ``name="adamw"``.
    lr : float
        Peak learning rate.
    n_steps : int
        Length of training (the schedule's end).
    scales : mapping of str to float, optional
        Learning-rate multiplier per tensor (1 when absent).
    row_sparse : collection of str
        Matrices whose gradients are zero outside a few rows (word embeddings).
    """

    def __init__(self, spec: OptimiserSpec, *, lr: float, n_steps: int,
                 scales: Mapping[str, float] | None = None, row_sparse=()):
        if spec.name != "adamw":
            raise ValueError(f"spec: must be AdamW, got {spec.name!r}")
        self.spec, self.lr, self.n_steps = spec, float(lr), int(n_steps)
        self.scales = dict(scales or {})
        self.count = 0
        self.m: dict[str, torch.Tensor] = {}
        self.v: dict[str, torch.Tensor] = {}
        self.row_sparse = frozenset(row_sparse)
        self.touched: dict[str, torch.Tensor] = {}

    @torch.no_grad()
    def step(self, params: dict[str, torch.Tensor], grads: Mapping[str, torch.Tensor]) -> None:
        spec = self.spec
        lr_t = self.lr * float(schedule_factor(self.count, n_steps=self.n_steps,
                                               warmup_steps=spec.warmup_steps, decay=spec.decay))
        self.count += 1
        first = (1.0 - spec.beta1 ** self.count) if spec.bias_correction else 1.0
        second = (1.0 - spec.beta2 ** self.count) if spec.bias_correction else 1.0
        for name, g in grads.items():
            if name not in self.m:
                self.m[name], self.v[name] = torch.zeros_like(g), torch.zeros_like(g)
            rate = lr_t * self.scales.get(name, 1.0)
            if name in self.row_sparse:
                self._sparse_step(name, params[name], g, rate, first, second)
                continue
            m, v, p = self.m[name], self.v[name], params[name]
            m.mul_(spec.beta1).add_(g, alpha=1.0 - spec.beta1)
            v.mul_(spec.beta2).addcmul_(g, g, value=1.0 - spec.beta2)
            if spec.weight_decay:
                p.add_(p, alpha=-rate * spec.weight_decay)
            denominator = (v / second).sqrt_().add_(spec.eps)
            p.addcdiv_(m, denominator, value=-rate / first)

    def _sparse_step(self, name, p, g, rate, first, second) -> None:
        spec = self.spec
        touched = self.touched.setdefault(name, torch.zeros(len(g), dtype=torch.bool, device=g.device))
        touched |= (g != 0).any(dim=1)
        rows = touched.nonzero().squeeze(1)
        m = self.m[name].index_select(0, rows).mul_(spec.beta1).add_(g.index_select(0, rows),
                                                                      alpha=1.0 - spec.beta1)
        g_rows = g.index_select(0, rows)
        v = self.v[name].index_select(0, rows).mul_(spec.beta2).addcmul_(g_rows, g_rows,
                                                                         value=1.0 - spec.beta2)
        self.m[name].index_copy_(0, rows, m)
        self.v[name].index_copy_(0, rows, v)
        if spec.weight_decay:
            p.mul_(1.0 - rate * spec.weight_decay)
        step = m.div_((v / second).sqrt_().add_(spec.eps)).mul_(-rate / first)
        p.index_add_(0, rows, step)
