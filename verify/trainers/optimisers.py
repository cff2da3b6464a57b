"""Optimisers of the fine-tuning practice, one mathematics behind two interfaces.

The theorems are about plain steps ``w <- w - eta * grad`` (full-batch GD, or SGD on minibatches);
practice fine-tunes with AdamW, often without bias correction (the original BERT optimiser, whose
omission Mosbach et al. 2021 tie to failed runs), or with momentum, under a linear warm-up and a
linear decay of the learning rate. :class:`verify.optimiser_spec.OptimiserSpec` (torch-free, so configs
never import torch) names one of them; it is built into

- :class:`Optimiser`, an explicit-state, optax-like transformation for the batched functional
  trainers: ``state = opt.init(params)``, ``updates, state = opt.update(grads, state, params)``,
  new parameters ``params + updates``; every operation is elementwise, so
  ``torch.func.vmap(opt.update)`` runs M models at once and equals M separate calls;
- :class:`TorchOptimiser`, a ``torch.optim.Optimizer`` for ordinary ``nn.Module`` training
  (``zero_grad``, ``backward``, ``step``) that applies the same per-tensor update.

Update rules, at step t = 1, 2, ... (``count`` after the step), learning rate
``eta_t = lr * schedule(t - 1)``, gradient g, decoupled weight decay lambda (Loshchilov & Hutter
2019: it never enters the moments):

- ``"sgd"``: ``w <- w - eta_t (g + lambda w)``; full-batch gradients make it GD;
- ``"momentum"``: ``b <- mu b + g``, ``w <- w - eta_t (b + lambda w)`` (torch.optim.SGD's
  heavy-ball convention, no dampening; ``b`` starts at 0 so the first buffer is g);
- ``"adamw"``: ``m <- beta1 m + (1 - beta1) g``, ``v <- beta2 v + (1 - beta2) g^2``,
  ``w <- w - eta_t (m_hat / (sqrt(v_hat) + eps) + lambda w)`` with ``m_hat = m / (1 - beta1^t)``,
  ``v_hat = v / (1 - beta2^t)`` under bias correction and ``m_hat = m``, ``v_hat = v`` without
  (torch.optim.AdamW with bias correction; the BERT optimiser without).

Schedule (as ``transformers.get_linear_schedule_with_warmup``, counted in steps s = t - 1 from 0):
``s / warmup_steps`` while ``s < warmup_steps`` (so a warm-up's first step has rate 0), then 1
(``decay="constant"``) or ``(n_steps - s) / (n_steps - warmup_steps)`` (``decay="linear"``).
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

import torch

from verify.optimiser_spec import OptimiserSpec


def schedule_factor(step, *, n_steps: int, warmup_steps: int, decay: str) -> torch.Tensor:
    """Learning-rate multiplier at 0-based step ``step`` (a number or a tensor of steps)."""
    step = torch.as_tensor(step, dtype=torch.float64) if not isinstance(step, torch.Tensor) else step
    if decay == "constant":
        after = torch.ones_like(step)
    else:
        after = torch.clamp((n_steps - step) / max(n_steps - warmup_steps, 1), min=0.0)
    if warmup_steps == 0:
        return after
    return torch.where(step < warmup_steps, step / warmup_steps, after)


def tensor_update(spec: OptimiserSpec, g: torch.Tensor, p: torch.Tensor,
                  slots: Mapping[str, torch.Tensor], count, lr_t):
    """One tensor's update (to be added to ``p``) and its new slots, at step ``count`` >= 1."""
    if spec.name == "sgd":
        direction, new_slots = g, {}
    elif spec.name == "momentum":
        buffer = spec.momentum * slots["buffer"] + g
        direction, new_slots = buffer, {"buffer": buffer}
    else:
        m = spec.beta1 * slots["m"] + (1.0 - spec.beta1) * g
        v = spec.beta2 * slots["v"] + (1.0 - spec.beta2) * g * g
        m_hat, v_hat = m, v
        if spec.bias_correction:
            m_hat = m / (1.0 - spec.beta1 ** count)
            v_hat = v / (1.0 - spec.beta2 ** count)
        direction, new_slots = m_hat / (torch.sqrt(v_hat) + spec.eps), {"m": m, "v": v}
    if spec.weight_decay:
        direction = direction + spec.weight_decay * p
    return -lr_t * direction, new_slots


def slot_names(spec: OptimiserSpec) -> tuple[str, ...]:
    return {"sgd": (), "momentum": ("buffer",), "adamw": ("m", "v")}[spec.name]


class Optimiser:
    """Explicit-state optimiser over a dict of tensors (optax-like), for functional trainers.

    Parameters
    ----------
    spec : OptimiserSpec
    lr : float
        Peak learning rate, > 0.
    n_steps : int
        Length of training (the linear decay ends there), >= ``spec.warmup_steps``.

    The state is ``{"count": tensor, "<slot>": {name: tensor}}``; ``count`` has the parameters'
    dtype and no shape of its own, so ``vmap(opt.init)(batched_params)`` gives one per model.
    """

    def __init__(self, spec: OptimiserSpec, *, lr: float, n_steps: int):
        if not isinstance(spec, OptimiserSpec):
            raise ValueError(f"spec: must be an OptimiserSpec, got {spec!r}")
        if not (isinstance(lr, (int, float)) and math.isfinite(lr) and lr > 0):
            raise ValueError(f"lr: must be a finite number in (0, inf), got {lr!r}")
        if isinstance(n_steps, bool) or not isinstance(n_steps, int) or n_steps < spec.warmup_steps:
            raise ValueError(f"n_steps: must be an integer in [warmup_steps={spec.warmup_steps}, "
                             f"inf), got {n_steps!r}")
        self.spec, self.lr, self.n_steps = spec, float(lr), int(n_steps)

    def learning_rate(self, step):
        """eta at 0-based step ``step`` (float or tensor)."""
        return self.lr * schedule_factor(step, n_steps=self.n_steps,
                                         warmup_steps=self.spec.warmup_steps, decay=self.spec.decay)

    def init(self, params: Mapping[str, torch.Tensor]) -> dict[str, Any]:
        first = next(iter(params.values()))
        state: dict[str, Any] = {"count": torch.zeros((), dtype=first.dtype)}
        for slot in slot_names(self.spec):
            state[slot] = {name: torch.zeros_like(value) for name, value in params.items()}
        return state

    def update(self, grads: Mapping[str, torch.Tensor], state: Mapping[str, Any],
               params: Mapping[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        """Updates to add to ``params`` and the new state."""
        lr_t = self.learning_rate(state["count"])
        count = state["count"] + 1
        slots = slot_names(self.spec)
        updates, new_state = {}, {"count": count, **{slot: {} for slot in slots}}
        for name, g in grads.items():
            updates[name], new_slots = tensor_update(
                self.spec, g, params[name], {slot: state[slot][name] for slot in slots}, count, lr_t)
            for slot in slots:
                new_state[slot][name] = new_slots[slot]
        return updates, new_state


def apply_updates(params: Mapping[str, torch.Tensor],
                  updates: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """``params + updates`` by name."""
    return {name: params[name] + updates[name] for name in params}


class TorchOptimiser(torch.optim.Optimizer):
    """The same optimiser as a ``torch.optim.Optimizer`` for ``nn.Module`` training.

    The schedule is built in (no separate scheduler): step t uses ``lr * schedule(t - 1)``.

    Parameters
    ----------
    params : iterable of tensors or of parameter-group dicts
    spec : OptimiserSpec
    lr : float
        Peak learning rate, > 0.
    n_steps : int
        Length of training, >= ``spec.warmup_steps``.
    """

    def __init__(self, params: Iterable, spec: OptimiserSpec, *, lr: float, n_steps: int):
        self.functional = Optimiser(spec, lr=lr, n_steps=n_steps)
        super().__init__(params, {"lr": float(lr)})
        self.n_updates = 0

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        spec = self.functional.spec
        factor = float(schedule_factor(self.n_updates, n_steps=self.functional.n_steps,
                                       warmup_steps=spec.warmup_steps, decay=spec.decay))
        self.n_updates += 1
        for group in self.param_groups:
            lr_t = group["lr"] * factor
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if not state:
                    state["count"] = 0
                    for slot in slot_names(spec):
                        state[slot] = torch.zeros_like(p)
                state["count"] += 1
                update, new_slots = tensor_update(spec, p.grad, p, state, state["count"], lr_t)
                p.add_(update)
                state.update(new_slots)
        return loss
