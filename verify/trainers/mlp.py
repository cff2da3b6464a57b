"""Batched full fine-tuning of a pre-trained MLP: M models as one tensor program.

The M models (seeds x leave-one-out sets x ...) share an architecture ``model`` with ``encoder`` and
``head`` submodules. Their parameters are stacked along a leading models axis and one step of all of
them is ``torch.func.vmap`` of a per-model step built from ``torch.func.functional_call`` and
``torch.func.grad``. Stabilisers (:mod:`verify.stabilisers`) are composed through their hooks.

Randomness, all derived from ``seeds`` with :func:`verify.seeding.run_seed`, never from order:

- head initialisation: each model's head is drawn from its seed's ``"head_init"`` stream (encoder
  starts at the pre-trained weights), torch.nn.Linear's default U(-1/sqrt(fan_in), 1/sqrt(fan_in));
- training stream: one generator per seed (``"train_stream"``); at each step it draws the minibatch
  indices (SGD), then each stabiliser's :meth:`~verify.stabilisers.base.Stabiliser.draw`, then
  the dropout masks (when ``dropout > 0``).

Optimisers (:mod:`verify.trainers.optimisers`): plain gradient steps by default (full-batch GD, or
SGD with ``batch_size``), or momentum / AdamW (bias correction on or off) under a linear warm-up and
decay; each model carries its own optimiser state, updated under ``vmap``.

Dropout: the model declares where (:class:`synth.dropout.DropoutSite` modules in its encoder); with
``dropout = p > 0`` every training forward pass multiplies each site's activations by an inverted
dropout mask (entries 0 or 1/(1-p)) drawn per seed and step, one row per batch position, so the
models sharing a seed share their masks (the coupling of S and S\\i). Training losses recorded in
the trace, predictions and the theory's objective are evaluated without dropout (eval mode).

SGD coupling (the standard one of algorithmic stability): a step's minibatch is the first
``batch_size`` entries of a fresh permutation of all n samples drawn from the seed's stream, the same
for every model of that seed; each model averages the loss over the minibatch members that are in its
own training set. The model on S\\i therefore sees exactly the stream of the model on S with sample i
dropped wherever it occurs.

Divergence (as in :mod:`verify.trainers.head`): a model diverges at the first iteration t whose
training loss L(w_t) (data loss over its own samples, reduced over heads) is NaN, inf or above
``BLOWUP`` times ``max(L(w_0), L(zero head))``, or whose weights w_t are not finite; from then on
its weights and losses are NaN and ``diverged_at`` records t.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import cast

import numpy as np
import torch
from torch import nn
from torch.func import functional_call, grad, vmap

from synth.dropout import DropoutSite
from verify.optimiser_spec import PLAIN, OptimiserSpec
from verify.seeding import run_seed
from verify.stabilisers.base import (FineTuningProblem, Stabiliser, StepContext, encoder_blocks,
                                     init_heads, init_layer, initial_values, map_selected,
                                     model_generators, selected_names)
from verify.effects import GROUPS
from verify.trainers.checkpoints import check_checkpoints
from verify.trainers.optimisers import Optimiser, apply_updates
from verify.trainers.trace import Trace

LOSSES = ("softmax", "logistic", "exponential")
BLOWUP = 1e6


# ---------------------------------------------------------------- the network as functions ------

def parameter_layout(model: nn.Module) -> tuple[tuple[tuple[str, ...], ...], dict[str, str]]:
    """Layers (parameter names grouped by module, bottom to top, head last) and name -> group.

    Raises ValueError unless every parameter belongs to ``encoder.*`` or ``head.*``.
    """
    layers: dict[str, list[str]] = {}
    groups = {}
    for name, _ in model.named_parameters():
        group = name.split(".", 1)[0]
        if group not in GROUPS:
            raise ValueError(f"model: parameter {name!r} is outside the groups {GROUPS}; the model "
                             "needs 'encoder' and 'head' submodules")
        groups[name] = group
        layers.setdefault(name.rsplit(".", 1)[0], []).append(name)
    ordered = sorted(layers.values(), key=lambda names: groups[names[0]] == "head")
    if not any(groups[names[0]] == "head" for names in ordered):
        raise ValueError("model: needs a 'head' submodule with parameters")
    return tuple(tuple(names) for names in ordered), groups


class NetworkFunctions:
    """The encoder and the heads of ``model`` as pure functions of a parameter dict (one model)."""

    def __init__(self, model: nn.Module, groups: Mapping[str, str]):
        self.model = model
        self.encoder_names = {name: name.split(".", 1)[1] for name, g in groups.items()
                              if g == "encoder"}
        self.head_names = {name: name.split(".", 1)[1] for name, g in groups.items() if g == "head"}

    def encode(self, params: Mapping[str, torch.Tensor], x: torch.Tensor,
               dropout_masks: Mapping[str, torch.Tensor] | None = None) -> torch.Tensor:
        """Encoder features ``(B, h)``; ``dropout_masks`` (site name -> ``(B, width)``) in training."""
        local = {short: params[name] for name, short in self.encoder_names.items()}
        for site, mask in (dropout_masks or {}).items():
            local[f"{site}.mask"] = mask
        # nn.Module types its attributes Tensor | Module; parameter_layout checked the submodules.
        return functional_call(cast(nn.Module, self.model.encoder), local, (x,))

    def head_logits(self, params: Mapping[str, torch.Tensor], features: torch.Tensor) -> torch.Tensor:
        """Logits ``(H, B, C)`` of every head (head parameters carry the heads axis)."""
        local = {short: params[name] for name, short in self.head_names.items()}
        return vmap(lambda head: functional_call(cast(nn.Module, self.model.head), head,
                                                 (features,)))(local)


def sample_losses(logits: torch.Tensor, y: torch.Tensor, loss: str) -> torch.Tensor:
    """Per-sample losses ``(..., B)`` from logits ``(..., B, C)`` and labels ``(B,)``.

    ``"softmax"``: cross-entropy. ``"logistic"`` / ``"exponential"``: binary, on the margin
    s * z with s = 2y - 1 and z the single logit (C = 1) or the logit difference z1 - z0 (C = 2).
    """
    if loss == "softmax":
        log_p = torch.log_softmax(logits, dim=-1)
        return -torch.gather(log_p, -1, y.expand(*log_p.shape[:-1]).unsqueeze(-1)).squeeze(-1)
    n_outputs = logits.shape[-1]
    if n_outputs == 1:
        z = logits[..., 0]
    elif n_outputs == 2:
        z = logits[..., 1] - logits[..., 0]
    else:
        raise ValueError(f"loss={loss!r} needs a head with 1 or 2 outputs, got {n_outputs}")
    margins = (2 * y - 1).to(logits.dtype) * z
    return nn.functional.softplus(-margins) if loss == "logistic" else torch.exp(-margins)


def dropout_sites(model: nn.Module) -> dict[str, int]:
    """The encoder's dropout sites, name (relative to ``encoder``) -> width, in forward order."""
    return {name: module.width for name, module in cast(nn.Module, model.encoder).named_modules()
            if isinstance(module, DropoutSite)}


class ModelObjective:
    """One model's training objective, step and evaluation, shared by the batched and naive loops."""

    def __init__(self, problem: FineTuningProblem, loss: str, stabilisers: Sequence[Stabiliser],
                 optimiser: Optimiser | None = None):
        self.network = NetworkFunctions(problem.model, problem.groups)
        self.problem = problem
        self.loss = loss
        self.stabilisers = tuple(stabilisers)
        self.optimiser = optimiser

    def context(self, x, y, weights) -> StepContext:
        return StepContext(x=x, y=y, weights=weights, reference=self.problem.reference,
                           layers=self.problem.layers, groups=self.problem.groups,
                           encode=self.network.encode)

    def reduce(self, logits, y, weights) -> torch.Tensor:
        """Weighted mean loss of each head, combined over heads by ``head_reduction`` (the mean for
        "mean" and "balanced", the sum for "sum")."""
        per_head = (sample_losses(logits, y, self.loss) * weights).sum(-1)
        return per_head.sum() if self.problem.head_reduction == "sum" else per_head.mean()

    def data_loss(self, params, x, y, weights) -> torch.Tensor:
        """The data loss (no penalty, no perturbation) at ``params``."""
        return self.reduce(self.network.head_logits(params, self.network.encode(params, x)), y,
                           weights)

    def objective(self, params, x, y, weights, noises, dropout_masks=None):
        """Data loss plus penalties at ``params`` on one batch, and the data loss alone."""
        ctx = self.context(x, y, weights)
        forward = params
        for stabiliser, noise in zip(self.stabilisers, noises):
            forward = stabiliser.perturb(forward, replace(ctx, noise=noise))
        features = self.network.encode(forward, x, dropout_masks)
        data = self.reduce(self.network.head_logits(forward, features), y, weights)
        ctx = replace(ctx, forward_params=forward, features=features)
        total = data
        for stabiliser, noise in zip(self.stabilisers, noises):
            l2sp = stabiliser.effects().l2sp
            if l2sp.strength:
                total = total + 0.5 * l2sp.strength * sum(
                    ((params[name] - ctx.reference[name]) ** 2).sum()
                    for name in selected_names(ctx, l2sp.groups))
            total = total + stabiliser.penalty(params, replace(ctx, noise=noise))
        return total, data

    def transform(self, grads, params, x, y, weights, noises):
        """The balanced reading's head scaling (each head's gradient times H, so that it steps as
        a single head while the encoder gets the mean over heads), then, stabiliser by stabiliser,
        the record's decoupled weight decay and ``transform_grads``."""
        ctx = self.context(x, y, weights)
        if self.problem.head_reduction == "balanced" and self.problem.n_heads > 1:
            scale = float(self.problem.n_heads)
            grads = {name: grad * scale if self.problem.groups[name] == "head" else grad
                     for name, grad in grads.items()}
        for stabiliser, noise in zip(self.stabilisers, noises):
            decay = stabiliser.effects().weight_decay
            if decay.strength:
                grads = map_selected(grads, selected_names(ctx, decay.groups),
                                     lambda name, grad, decay=decay: grad + decay.strength * params[name])
            grads = stabiliser.transform_grads(grads, params, replace(ctx, noise=noise))
        return grads

    def apply(self, grads, state, params):
        """The optimiser's step from transformed gradients: (new parameters, new state).

        Needs the ``optimiser`` given at construction."""
        updates, state = self.optimiser.update(grads, state, params)
        return apply_updates(params, updates), state

    def step(self, params, state, x, y, weights, noises, dropout_masks):
        """One optimiser step of one model: (new parameters, new state, data loss at ``params``)."""
        grads, data = grad(self.objective, has_aux=True)(params, x, y, weights, noises,
                                                         dropout_masks)
        grads = self.transform(grads, params, x, y, weights, noises)
        params, state = self.apply(grads, state, params)
        return params, state, data


# ------------------------------------------------------------------------- problem set-up -------

def _as_tensor(value, dtype) -> torch.Tensor:
    return torch.as_tensor(np.asarray(value), dtype=dtype)


def prepare_problem(model: nn.Module, init_params: Mapping[str, np.ndarray], X, y, *, masks, seeds,
                    stabilisers: Sequence[Stabiliser] = (), w0: Mapping[str, np.ndarray] | None = None,
                    unlabelled=None, heads: Mapping[str, np.ndarray] | None = None,
                    dtype: torch.dtype = torch.float64) -> FineTuningProblem:
    """The problem as training starts: encoders at ``init_params``, heads drawn from the seeds (or
    every model's at ``heads``, by parameter name), then every stabiliser's ``prepare`` in order.
    Each model's start depends only on its own seed and mask."""
    layers, groups = parameter_layout(model)
    shapes = {name: value.shape for name, value in model.named_parameters()}
    reference_source = init_params if w0 is None else w0
    reference = {}
    for name, group in groups.items():
        for label, source in (("init_params", init_params), ("w0", reference_source)):
            if group == "encoder" and name not in source:
                raise ValueError(f"{label}: missing encoder parameter {name!r}")
            if name in source and np.shape(source[name]) != tuple(shapes[name]):
                raise ValueError(f"{label}: {name!r} must have shape {tuple(shapes[name])}, "
                                 f"got {np.shape(source[name])}")
        reference[name] = (_as_tensor(reference_source[name], dtype) if name in reference_source
                           else torch.zeros(shapes[name], dtype=dtype))
    n_models = masks.shape[0]
    head_names = [name for name in groups if groups[name] == "head"]
    n_outputs = shapes[head_names[0]][0]
    if int(y.max()) >= max(n_outputs, 2):
        raise ValueError(f"y: labels must be in [0, {max(n_outputs, 2) - 1}] for a head with "
                         f"{n_outputs} outputs, got {int(y.max())}")
    params = {name: _as_tensor(init_params[name], dtype).expand(n_models, *shapes[name]).clone()
              for name in groups if groups[name] == "encoder"}
    if heads is None:
        params.update(init_heads(model, head_names, seeds, 1, dtype))
    else:
        for name in head_names:
            if name not in heads or np.shape(heads[name]) != tuple(shapes[name]):
                raise ValueError(f"heads: {name!r} must be given with shape {tuple(shapes[name])}"
                                 + (f", got {np.shape(heads[name])}" if name in heads else ""))
            params[name] = _as_tensor(heads[name], dtype).expand(n_models, 1, *shapes[name]).clone()
        for stabiliser in stabilisers:
            if stabiliser.effects().heads.n_heads > 1:
                raise ValueError(f"heads: {stabiliser.name} trains several heads drawn from the "
                                 "seeds, so the models cannot start from given heads")
    problem = FineTuningProblem(
        model=model, params=params, reference=reference, X=X, y=y, masks=masks,
        seeds=np.asarray(seeds), layers=layers, groups=groups,
        pretrained={name: np.asarray(value) for name, value in init_params.items()},
        unlabelled=_check_unlabelled(unlabelled, X.shape[1]))
    for stabiliser in stabilisers:
        problem = _apply_record(problem, stabiliser, head_names, dtype)
        problem = stabiliser.prepare(problem, model_generators(seeds, f"prepare:{stabiliser.name}"))
    return problem


def _apply_record(problem: FineTuningProblem, stabiliser: Stabiliser, head_names: Sequence[str],
                  dtype: torch.dtype) -> FineTuningProblem:
    """The start weights and heads of a stabiliser's record: the top ``reinit_top`` encoder layers
    re-drawn from each model's ``prepare:<name>`` generator, then ``n_heads`` heads drawn from the
    seeds' head stream (head 0 is the plain trainer's head) with the record's reduction."""
    effects = stabiliser.effects()
    params = dict(problem.params)
    if effects.start.reinit_top:
        blocks = encoder_blocks(problem)
        stabiliser.check_encoder(len(blocks))
        generators = model_generators(problem.seeds, f"prepare:{stabiliser.name}")
        for layer in [layer for block in blocks[len(blocks) - effects.start.reinit_top:]
                      for layer in block]:
            if all(problem.reference[name].dim() < 2 for name in layer):
                values = initial_values(problem, layer)
                params.update({name: values[name].expand_as(params[name]).clone() for name in layer})
                continue
            shapes = {name: problem.reference[name].shape for name in layer}
            fresh = [init_layer(shapes, generator, problem.reference[layer[0]].dtype)
                     for generator in generators]
            params.update({name: torch.stack([draw[name] for draw in fresh]) for name in layer})
    heads = effects.heads
    if heads.n_heads != problem.n_heads or heads.reduction != problem.head_reduction:
        params.update(init_heads(problem.model, head_names, problem.seeds, heads.n_heads, dtype))
        return replace(problem, params=params, n_heads=heads.n_heads, head_reduction=heads.reduction)
    return replace(problem, params=params)


def _check_unlabelled(unlabelled, n_features: int) -> np.ndarray | None:
    if unlabelled is None:
        return None
    array = np.asarray(unlabelled, dtype=np.float64)
    if array.ndim != 2 or array.shape[0] < 1 or array.shape[1] != n_features:
        raise ValueError(f"unlabelled must be a non-empty (N, {n_features}) array, got shape "
                         f"{array.shape}")
    if not np.isfinite(array).all():
        raise ValueError("unlabelled must be finite")
    return array


def _validate(X, y, masks, seeds, loss, lr, n_steps, checkpoints, batch_size, stabilisers, dtype,
              model, optimiser, dropout):
    X = _as_tensor(X, dtype)
    if X.dim() != 2 or X.shape[0] < 1:
        raise ValueError(f"X must be a non-empty 2-D array (n, d), got shape {tuple(X.shape)}")
    n = X.shape[0]
    y_array = np.asarray(y)
    if y_array.shape != (n,) or not np.issubdtype(y_array.dtype, np.integer) or y_array.min() < 0:
        raise ValueError(f"y must be {n} integer class labels >= 0")
    masks_array = np.asarray(masks)
    if masks_array.ndim != 2 or masks_array.shape[1] != n or masks_array.shape[0] < 1:
        raise ValueError(f"masks must have shape (M, {n}) with M >= 1, got {masks_array.shape}")
    if not np.isin(masks_array, (0, 1)).all() or (masks_array.sum(1) == 0).any():
        raise ValueError("masks must be 0/1 with at least one sample per model")
    seeds_array = np.asarray(seeds)
    if seeds_array.shape != (masks_array.shape[0],) or not np.issubdtype(seeds_array.dtype,
                                                                          np.integer):
        raise ValueError(f"seeds must be {masks_array.shape[0]} integers, one per mask row")
    if loss not in LOSSES:
        raise ValueError(f"loss must be one of {LOSSES}, got {loss!r}")
    if not (isinstance(lr, (int, float)) and np.isfinite(lr) and lr > 0):
        raise ValueError(f"lr must be a finite number in (0, inf), got {lr!r}")
    if isinstance(n_steps, bool) or not isinstance(n_steps, (int, np.integer)) or n_steps < 0:
        raise ValueError(f"n_steps must be an integer in [0, inf), got {n_steps!r}")
    points = check_checkpoints(checkpoints, n_steps)
    if batch_size is not None and (isinstance(batch_size, bool) or not isinstance(
            batch_size, (int, np.integer)) or not 1 <= batch_size <= n):
        raise ValueError(f"batch_size must be None or an integer in [1, {n}], got {batch_size!r}")
    for stabiliser in stabilisers:
        if not isinstance(stabiliser, Stabiliser) or "mlp" not in stabiliser.applies_to:
            raise ValueError(f"stabilisers: {stabiliser!r} does not apply to the MLP trainer")
    if not isinstance(optimiser, OptimiserSpec):
        raise ValueError(f"optimiser must be an OptimiserSpec, got {optimiser!r}")
    if optimiser.warmup_steps > n_steps:
        raise ValueError(f"optimiser.warmup_steps must be in [0, n_steps={n_steps}], "
                         f"got {optimiser.warmup_steps}")
    if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not 0 <= dropout < 1:
        raise ValueError(f"dropout must be a number in [0, 1), got {dropout!r}")
    if dropout > 0 and not dropout_sites(model):
        raise ValueError("dropout: the model's encoder has no DropoutSite modules (synth.dropout)")
    return (X, torch.as_tensor(y_array, dtype=torch.int64), _as_tensor(masks_array, dtype),
            seeds_array.astype(np.int64), points)


def training_streams(seeds: Sequence[int]) -> dict[int, torch.Generator]:
    """The per-seed training stream (minibatches, then stabiliser draws), keyed by seed."""
    return {int(seed): torch.Generator().manual_seed(run_seed(int(seed), "train_stream"))
            for seed in dict.fromkeys(int(seed) for seed in seeds)}


def draw_step(problem: FineTuningProblem, stabilisers: Sequence[Stabiliser],
              generator: torch.Generator, batch_size: int | None):
    """One seed's draws for one step: minibatch indices (None for full batch), stabiliser noises."""
    n = problem.X.shape[0]
    indices = None if batch_size is None else torch.randperm(n, generator=generator)[:batch_size]
    effective = n if batch_size is None else batch_size
    noises = tuple(stabiliser.draw(problem, effective, generator) for stabiliser in stabilisers)
    return indices, noises


def draw_dropout_masks(problem: FineTuningProblem, batch_size: int | None, dropout: float,
                       generator: torch.Generator) -> dict[str, torch.Tensor]:
    """One seed's dropout masks for one step (after :func:`draw_step`'s draws): site ->
    ``(B, width)`` with entries 0 or 1/(1-p); empty when ``dropout == 0``."""
    if dropout == 0:
        return {}
    effective = problem.X.shape[0] if batch_size is None else batch_size
    masks = {}
    for site, width in dropout_sites(problem.model).items():
        keep = torch.full((effective, width), 1.0 - dropout, dtype=problem.X.dtype)
        masks[site] = torch.bernoulli(keep, generator=generator) / (1.0 - dropout)
    return masks


def batch_weights(masks: torch.Tensor, indices: torch.Tensor | None) -> torch.Tensor:
    """Per-model sample weights of a batch: 1/count on the model's own samples, 0 elsewhere."""
    members = masks if indices is None else torch.gather(masks, -1, indices)
    return members / members.sum(-1, keepdim=True).clamp(min=1)


def divergence(previous_ok: torch.Tensor, losses: torch.Tensor, threshold: torch.Tensor,
               params: Mapping[str, torch.Tensor]) -> torch.Tensor:
    """Boolean per model: diverges at this iteration (loss or weights not finite, or blow-up)."""
    finite = torch.isfinite(losses)
    for value in params.values():
        finite &= torch.isfinite(value.reshape(value.shape[0], -1)).all(-1)
    return previous_ok & (~finite | (losses > threshold))


def output_weights(params: Mapping[str, torch.Tensor], problem: FineTuningProblem) -> dict:
    """Parameters as numpy; the heads axis is dropped when there is one head."""
    return {name: (value[:, 0] if problem.groups[name] == "head" and problem.n_heads == 1
                   else value).detach().numpy().copy() for name, value in params.items()}


# -------------------------------------------------------------------------------- trainer -------

def train_mlp(model: nn.Module, init_params: Mapping[str, np.ndarray], X, y, *, masks, seeds,
              loss: str = "softmax", lr: float, n_steps: int, checkpoints,
              batch_size: int | None = None, stabilisers: Sequence[Stabiliser] = (),
              w0: Mapping[str, np.ndarray] | None = None, optimiser: OptimiserSpec = PLAIN,
              dropout: float = 0.0, unlabelled=None, heads: Mapping[str, np.ndarray] | None = None,
              dtype: torch.dtype = torch.float64) -> Trace:
    """Fine-tune M copies of a pre-trained MLP at once (GD/SGD, momentum or AdamW).

    Parameters
    ----------
    model : torch.nn.Module
        Architecture with ``encoder`` and ``head`` submodules (``synth.mlp.build_model``); its own
        parameter values are not used.
    init_params : mapping of str to array
        Pre-trained parameters by name (a dataset's ``w0.*`` arrays without the prefix). Every
        encoder parameter is required and the encoders start there; head entries are not used
        (heads are drawn from the seeds, or given as ``heads``); other entries (the pre-training decoder) are handed to
        the stabilisers (SURT).
    X : array of shape (n, d)
    y : array of shape (n,)
        Integer labels 0..C-1.
    masks : array of shape (M, n)
        0/1 sample membership of each model's training set.
    seeds : array of shape (M,)
        Integer seed of each model; models sharing a seed are coupled (module docstring).
    loss : {"softmax", "logistic", "exponential"}
    lr : float
        Step size η > 0 (the peak rate under a schedule).
    n_steps : int
        Number of steps T >= 0.
    checkpoints : array of int
        Increasing iterations in [0, n_steps] at which weights and training loss are recorded.
    batch_size : int or None
        None for full-batch GD, else the minibatch size of SGD in [1, n].
    stabilisers : sequence of Stabiliser
        Composed in order (see :mod:`verify.stabilisers.base`): each one's record
        (``effects()``: penalties, decay, heads, start weights) and hooks; the record's ``schedule``
        is not applied here (the sweep applies it for every trainer).
    w0 : mapping of str to array, optional
        Reference weights that L2-SP and Mixout pull toward; default ``init_params``.
    optimiser : OptimiserSpec
        Default plain steps ``w - lr * grad`` (GD, or SGD with ``batch_size``); its
        ``warmup_steps`` must not exceed ``n_steps``.
    dropout : float
        Dropout rate in [0, 1) at the model's dropout sites during training.
    unlabelled : array of shape (N, d), optional
        The task's unlabelled target pool, handed to the stabilisers (SURT re-trains on it).
    heads : mapping of str to array, optional
        Every model's initial head by parameter name (``head.weight``, ``head.bias``); default: a
        fresh head drawn from each model's seed. A multi-head stabiliser (MHLoss) cannot take it.
    dtype : torch.dtype
        float64 by default.

    Returns
    -------
    Trace
        ``weights[name]`` of shape (K, M, ...) ((K, M, H, ...) for heads when H > 1), ``train_loss``
        (K, M) is the data loss (no penalty, no perturbation) over each model's full training set,
        ``diverged_at`` (M,) the first diverged iteration or -1.
    """
    stabilisers = tuple(stabilisers)
    X, y, masks, seeds, points = _validate(X, y, masks, seeds, loss, lr, n_steps, checkpoints,
                                           batch_size, stabilisers, dtype, model, optimiser,
                                           dropout)
    problem = prepare_problem(model, init_params, X, y, masks=masks, seeds=seeds,
                              stabilisers=stabilisers, w0=w0, unlabelled=unlabelled, heads=heads,
                              dtype=dtype)
    model_optimiser = Optimiser(optimiser, lr=lr, n_steps=max(int(n_steps), 1))
    objective = ModelObjective(problem, loss, stabilisers, model_optimiser)
    streams = training_streams(seeds)
    seed_index = torch.as_tensor([list(streams).index(int(seed)) for seed in seeds])
    full_weights = batch_weights(masks, None)

    batch_in = None if batch_size is None else 0
    step = vmap(objective.step, in_dims=(0, 0, batch_in, batch_in, 0, 0, 0))
    train_loss = vmap(objective.data_loss, in_dims=(0, None, None, 0))

    # The step's data loss is the training loss at w_t when the step sees every sample unperturbed.
    step_loss_is_train_loss = batch_size is None and dropout == 0 and all(
        type(stabiliser).perturb is Stabiliser.perturb for stabiliser in stabilisers)
    params = {name: value.clone() for name, value in problem.params.items()}
    state = vmap(model_optimiser.init)(params)
    n_models = masks.shape[0]
    diverged_at = torch.full((n_models,), -1, dtype=torch.int64)
    threshold = None
    recorded_weights, recorded_loss = [], []
    wanted = set(points.tolist())
    for t in range(n_steps + 1):
        if t < n_steps:
            x_batch, y_batch, weights, dropout_masks, noises = _step_inputs(
                problem, stabilisers, streams, seed_index, batch_size, full_weights, dropout)
            new_params, state, step_loss = step(params, state, x_batch, y_batch, weights, noises,
                                                dropout_masks)
        losses = (step_loss if t < n_steps and step_loss_is_train_loss
                  else train_loss(params, X, y, full_weights)).detach()
        if threshold is None:
            threshold = BLOWUP * torch.clamp(losses, min=zero_head_loss(y, loss, problem, dtype))
        diverged_at[divergence(diverged_at < 0, losses, threshold, params)] = t
        params = {name: torch.where(_rows(diverged_at >= 0, value), torch.nan, value)
                  for name, value in params.items()}
        if t in wanted:
            recorded_weights.append(output_weights(params, problem))
            recorded_loss.append(torch.where(diverged_at >= 0, torch.nan, losses).numpy().copy())
        if t < n_steps:
            params = {name: value.detach() for name, value in new_params.items()}
    return Trace(iterations=points,
                 weights={name: np.stack([w[name] for w in recorded_weights])
                          for name in recorded_weights[0]},
                 train_loss=np.stack(recorded_loss), diverged_at=diverged_at.numpy())


def zero_head_loss(y: torch.Tensor, loss: str, problem: FineTuningProblem,
                   dtype: torch.dtype) -> torch.Tensor:
    """Loss of a head predicting all-zero logits (log C, log 2 or 1), the blow-up reference floor."""
    n_outputs = problem.reference[next(name for name in problem.groups
                                       if problem.groups[name] == "head")].shape[0]
    return sample_losses(torch.zeros(1, n_outputs, dtype=dtype), y[:1], loss)[0]


def _rows(selected: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return selected.reshape(-1, *([1] * (like.dim() - 1)))


def _step_inputs(problem, stabilisers, streams, seed_index, batch_size, full_weights, dropout):
    """Inputs of one batched step: batch (shared or per model), sample weights, dropout masks and
    noises (M, ...)."""
    draws = [(*draw_step(problem, stabilisers, generator, batch_size),
              draw_dropout_masks(problem, batch_size, dropout, generator))
             for generator in streams.values()]
    if batch_size is None:
        x_batch, y_batch, weights = problem.X, problem.y, full_weights
    else:
        indices = torch.stack([draw[0] for draw in draws])[seed_index]
        x_batch, y_batch = problem.X[indices], problem.y[indices]
        weights = batch_weights(problem.masks, indices)
    dropout_masks = {site: torch.stack([draw[2][site] for draw in draws])[seed_index]
                     for site in draws[0][2]}
    noises = tuple({key: torch.stack([draw[1][k][key] for draw in draws])[seed_index]
                    for key in draws[0][1][k]} for k in range(len(stabilisers)))
    return x_batch, y_batch, weights, dropout_masks, noises


# ------------------------------------------------------------------ views for measures, theory ---

def parameter_names(model: nn.Module) -> list[str]:
    """Parameter names in the flat layout's order (the model's own order: bottom to top, head last)."""
    return [name for name, _ in model.named_parameters()]


def flat_weights(weights: Mapping[str, np.ndarray], model: nn.Module, *, lead: int = 2) -> np.ndarray:
    """Concatenate parameters into one vector per model: ``(K, M, ...)`` arrays -> ``(K, M, P)``.

    ``lead`` is the number of leading axes kept (2 for a Trace's weights, 1 for one checkpoint).
    """
    return np.concatenate([np.asarray(weights[name]).reshape(*np.shape(weights[name])[:lead], -1)
                           for name in parameter_names(model)], axis=-1)


def unflatten(w_flat: torch.Tensor, model: nn.Module) -> dict[str, torch.Tensor]:
    """Inverse of :func:`flat_weights` for one model's flat torch vector."""
    params, offset = {}, 0
    for name, value in model.named_parameters():
        params[name] = w_flat[offset:offset + value.numel()].reshape(value.shape)
        offset += value.numel()
    return params


def predict_logits(model: nn.Module, weights: Mapping[str, np.ndarray], X, *,
                   dtype: torch.dtype = torch.float64) -> np.ndarray:
    """Logits ``(M, n, C)`` of M models at one checkpoint (``weights[name]`` of shape (M, ...)),
    the mean logit over heads when the head weights carry a heads axis."""
    _, groups = parameter_layout(model)
    network = NetworkFunctions(model, groups)
    shapes = dict(model.named_parameters())
    params = {}
    for name, value in weights.items():
        tensor = _as_tensor(value, dtype)
        single_head = groups[name] == "head" and tensor.dim() == shapes[name].dim() + 1
        params[name] = tensor.unsqueeze(1) if single_head else tensor
    inputs = _as_tensor(X, dtype)
    with torch.no_grad():
        logits = vmap(lambda p: network.head_logits(p, network.encode(p, inputs)))(params)
    return logits.mean(1).numpy()
