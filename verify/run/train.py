"""Train every model of a task in one batched call: heads, least squares or a pre-trained MLP.

Each ``train_*_task`` returns a :class:`Trained`: flat weights per checkpoint and model, and what the
rows and bounds need to know about the training."""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch

from synth.backbones import build_network
from theory.estimators import hessian_extreme_eigenvalues, objective_functions
from theory.objective import penalised_objective
from verify.configs import TrainingConfig
from verify.effects import Effects
from verify.run.evaluators import linear_evaluator
from verify.run.layout import ModelLayout
from verify.run.curvature import check_curvature, objective_is_the_theorys, trained_curvature
from verify.run.network import FlatNetwork
from verify.run.task import head_init, task_effects
from verify.trainers.checkpoints import log_spaced_checkpoints
from verify.trainers.head import smoothness, train_heads
from verify.trainers.mlp import prepare_problem, train_mlp
from verify.trainers.quadratic import train_quadratic
from verify.trainers.trace import Trace


@dataclass
class Trained:
    """A batched run reduced to what the measures need: flat weights per model and checkpoint.

    Attributes
    ----------
    iterations : (K,) int
        Checkpoints t >= 1 (the initial weights are ``w_init``).
    weights : (K, M, P) float64
        Flat weights (heads averaged: a multi-head model predicts with its mean head).
    train_loss : (K, M)
    diverged_at : (M,) int
    w_init : (M, P)
    lr : float
    n_steps : int
    loss : str
        The loss actually trained ("logistic" becomes "softmax" on multiclass data).
    n_heads : int
        Heads per model actually trained (a stabiliser such as MHLoss may set it).
    model : {"linear", "mlp"}
    evaluator : verify.run.evaluators.Evaluator
    l2sp, weight_decay : float
        Penalty strengths of the trained objective.
    l2sp_anchor, l2sp_mask, weight_decay_mask : ndarray or None
        Where L2-SP pulls to and which flat weights each penalty acts on (None: w_init / all), so that
        the bounds' constants are those of the exact trained objective
        (:func:`theory.objective.training_objective`).
    objective : callable or None
        RunContext.objective (the data loss) for MLPs.
    head_lr : float or None
        The step each linear head takes on its own mean loss (``lr``, or ``lr / H`` for MHLoss's
        mean reduction) where Soudry et al.'s asymptotic predictor applies (binary head, logistic
        or exponential loss, full-batch GD with η β < 2); None elsewhere.
    w_pretrained : (M, P) or None
        What ``distance_from_init`` is measured from when it is not ``w_init``: for MLPs the
        dataset's pre-trained encoder w0 with each model's initial head, so that a stabiliser
        that changes the starting encoder (SURT, re-initialisation) is measured from the same w0
        as plain training. The bounds' w0 (Theorem F's D) stays ``w_init``, where GD starts.
    plain_steps : bool
        Every step was ``w - lr * grad`` at one constant lr (RunContext.plain_steps): the config's
        ``plain_steps``, passed by every trainer (no default, so a trainer cannot leave it out).
    teacher : (P,) or None
        For MLP tasks with a teacher backbone, the flat weights whose encoder part is the
        teacher's (head entries NaN: a teacher head is not a fine-tuned head's target).
    encoder_mask : (P,) bool or None
        For MLP tasks, which flat weights are the encoder's (the rest are the head's).
    """

    iterations: np.ndarray
    weights: np.ndarray
    train_loss: np.ndarray
    diverged_at: np.ndarray
    w_init: np.ndarray
    lr: float
    n_steps: int
    loss: str
    n_heads: int
    model: str
    evaluator: Any
    plain_steps: bool
    l2sp: float = 0.0
    weight_decay: float = 0.0
    l2sp_anchor: np.ndarray | None = None
    l2sp_mask: np.ndarray | None = None
    weight_decay_mask: np.ndarray | None = None
    objective: Any = None
    head_lr: float | None = None
    w_pretrained: np.ndarray | None = None
    teacher: np.ndarray | None = None
    encoder_mask: np.ndarray | None = None


def schedule(config: Any, stabiliser: Any, lr: float) -> tuple[float, int, np.ndarray]:
    """Learning rate, steps and checkpoints (with t = 0) after the stabiliser's schedule change
    (its record's ``schedule``)."""
    lr, n_steps = task_effects(config, stabiliser).schedule.apply(lr, config.n_steps)
    return float(lr), int(n_steps), log_spaced_checkpoints(int(n_steps), num=config.n_checkpoints,
                                                           include_zero=True)


def _finish(trace: Any, flat: np.ndarray, **fields: Any) -> Trained:
    """Split off the t = 0 checkpoint as the initial weights."""
    return Trained(iterations=trace.iterations[1:], weights=flat[1:], train_loss=trace.train_loss[1:],
                   diverged_at=trace.diverged_at, w_init=flat[0], **fields)


def class_count(dataset: Any) -> int:
    return int(dataset.card.get("n_classes") or 0)


def train_head_task(config: TrainingConfig, dataset: Any, stabiliser: Any, layout: ModelLayout,
                    masks: np.ndarray) -> Trained:
    """Linear heads on the dataset's (fixed) features, every model of the task at once."""
    return train_head_tasks([config], dataset, stabiliser, [layout], [masks])[0]


def train_head_tasks(configs: list[TrainingConfig], dataset: Any, stabiliser: Any,
                     layouts: list[ModelLayout], masks: list[np.ndarray]) -> list[Trained]:
    """Several head tasks of one dataset that differ only in ``lr_scale``, in one trainer call.

    Each task's models get its own step ``lr_scale / β̂`` (β̂ from its own masks); everything
    else (loss, initialisation, steps, checkpoints, batches, heads) must be the same, which
    :func:`verify.run.runner.training_key` guarantees. Each returned :class:`Trained` is what
    :func:`train_head_task` returns for that task alone (equal to rounding: the models only share
    the matrix products).
    """
    first = configs[0]
    n_classes = class_count(dataset)
    loss = "softmax" if n_classes > 2 and first.loss == "logistic" else first.loss
    heads = task_effects(first, stabiliser).heads
    n_heads = heads.n_heads
    betas, rates = [], []
    for config, task_masks in zip(configs, masks, strict=True):
        betas.append(float(np.max(smoothness(dataset.X, loss, task_masks))))
        # The multi-head objective is block diagonal, one block per head: the head's own
        # curvature, divided by H under the mean reduction.
        trained_beta = (betas[-1] / n_heads if heads.reduction == "mean"
                        and heads.curvature == "trained" else betas[-1])
        lr, n_steps, checkpoints = schedule(config, stabiliser, config.lr_scale / trained_beta)
        rates.append(lr)
    sizes = [len(task_masks) for task_masks in masks]
    trace = train_heads(dataset.X, dataset.y, masks=np.concatenate(masks),
                        init=head_init(first, stabiliser), loss=loss, lr=np.repeat(rates, sizes),
                        n_steps=n_steps, checkpoints=checkpoints, batch_size=first.batch_size,
                        seeds=np.concatenate([layout.model_seeds for layout in layouts]),
                        n_heads=n_heads, head_reduction=heads.fixed_features_reduction)
    weights = trace.weights["w"]
    if n_heads > 1:
        weights = weights.mean(axis=2)
    flat = weights.reshape(*weights.shape[:2], -1)
    trained, start = [], 0
    for config, lr, beta, size, task_masks in zip(configs, rates, betas, sizes, masks, strict=True):
        models = slice(start, start + size)
        start += size
        part = Trace(iterations=trace.iterations, weights={}, train_loss=trace.train_loss[:, models],
                     diverged_at=trace.diverged_at[models])
        head_lr = heads.per_head_lr(lr)
        predictable = (n_classes == 2 and loss in ("logistic", "exponential")
                       and first.batch_size is None and head_lr * beta < 2)
        one = _finish(part, flat[:, models], lr=lr, n_steps=n_steps, loss=loss, n_heads=n_heads,
                      model="linear", evaluator=linear_evaluator(loss, n_classes),
                      plain_steps=config.plain_steps, head_lr=head_lr if predictable else None)
        trained.append(predictor_train_loss(one, dataset, task_masks) if n_heads > 1 else one)
    return trained


def predictor_train_loss(trained: Trained, dataset: Any, masks: np.ndarray) -> Trained:
    """``trained`` with its training loss that of the prediction (the mean logit over the heads,
    a linear head's prediction being its mean head's), not the heads' losses reduced, so that a
    multi-head model's training loss compares with a single head's."""
    own = masks / masks.sum(1, keepdims=True)
    losses = np.stack([(trained.evaluator.per_sample_loss(weights, dataset.X, dataset.y) * own).sum(1)
                       for weights in trained.weights])
    return replace(trained, train_loss=np.where(np.isnan(trained.train_loss), np.nan, losses))


def train_quadratic_task(config: TrainingConfig, dataset: Any, stabiliser: Any, layout: ModelLayout,
                         masks: np.ndarray) -> Trained:
    """Least-squares fine-tuning from the dataset's w0 by batched gradient descent."""
    l2sp, weight_decay = task_effects(config, stabiliser).quadratic_penalties()
    beta = float(np.max(smoothness(dataset.X, "squared", masks))) + (l2sp + weight_decay)
    lr, n_steps, checkpoints = schedule(config, stabiliser, config.lr_scale / beta)
    trace = train_quadratic(dataset.X, dataset.y, masks=masks, w0=dataset.arrays["w0"], lr=lr,
                            n_steps=n_steps, checkpoints=checkpoints, l2sp=l2sp,
                            weight_decay=weight_decay)
    return _finish(trace, trace.weights["w"], lr=lr, n_steps=n_steps, loss="squared", n_heads=1,
                   model="linear", evaluator=linear_evaluator("squared", 0), l2sp=l2sp,
                   weight_decay=weight_decay, plain_steps=config.plain_steps)


def train_mlp_task(config: TrainingConfig, dataset: Any, stabiliser: Any, layout: ModelLayout,
                   masks: np.ndarray) -> Trained:
    """Full fine-tuning of the dataset's pre-trained MLP (heads drawn from the seeds), batched.

    ``lr = lr_scale / β̂`` with β̂ the largest Hessian eigenvalue of the full-set loss at the start
    of the first seed (Lanczos on Hessian-vector products), or ``lr = lr_scale`` for configs with
    ``lr_unit="absolute"`` (AdamW). The config's optimiser and dropout rate are the trainer's; the
    dataset's unlabelled ``target_pool``, when it has one, goes to the stabilisers (SURT). With
    ``init="teacher_head"`` every model's head starts at the dataset's teacher head
    (``teacher.head.*``) instead of a fresh one drawn from its seed.
    """
    n_classes = class_count(dataset)
    loss = "softmax" if n_classes > 2 and config.loss == "logistic" else config.loss
    model = build_network(dataset.card["architecture"])
    network = FlatNetwork.of(model, loss)
    # Every pre-trained array (encoder and the pre-training decoder, which SURT uses); the head has
    # no pre-trained value (heads are drawn from the seeds) but the trainer wants every name.
    start = {name: np.zeros(shape) for name, shape in zip(network.names, network.shapes, strict=True)}
    start.update({name[len("w0."):]: value for name, value in dataset.arrays.items()
                  if name.startswith("w0.")})
    stabilisers = () if stabiliser is None else (stabiliser,)
    heads = teacher_head(network, dataset) if config.init == "teacher_head" else None
    pool = dataset.arrays.get("target_pool")
    objective = network.objective(dataset.X, dataset.y)
    effects = task_effects(config, stabiliser)
    beta = None
    if config.lr_unit != "absolute":
        first = prepare_problem(model, start, torch.as_tensor(dataset.X), torch.as_tensor(dataset.y),
                                masks=torch.as_tensor(masks[:1]), seeds=layout.model_seeds[:1],
                                stabilisers=stabilisers, unlabelled=pool, heads=heads)
        beta = check_curvature(step_curvature(network, objective, start, first, loss, effects,
                                              stabilisers, len(dataset.X)))
    lr, n_steps, checkpoints = schedule(config, stabiliser, config.learning_rate(beta))
    trace = train_mlp(model, start, dataset.X, dataset.y, masks=masks, seeds=layout.model_seeds,
                      loss=loss, lr=lr, n_steps=n_steps, checkpoints=checkpoints,
                      batch_size=config.batch_size, stabilisers=stabilisers,
                      optimiser=config.optimiser, dropout=config.dropout, unlabelled=pool,
                      heads=heads)
    penalties = mlp_penalties(network, start, effects)
    flat = network.flatten(trace.weights, lead=2)
    head = np.zeros(flat.shape[2], dtype=bool)
    head[network.head_indices()] = True
    w_pretrained = np.where(head, flat[0], network.flatten(start, lead=0))
    n_heads = network.n_heads(trace.weights, lead=2)
    trained = _finish(trace, flat, lr=lr, n_steps=n_steps, loss=loss, n_heads=n_heads, model="mlp",
                      evaluator=network.evaluator(), objective=objective, w_pretrained=w_pretrained,
                      plain_steps=config.plain_steps, teacher=teacher_weights(network, dataset),
                      encoder_mask=~head, **penalties)
    return predictor_train_loss(trained, dataset, masks) if n_heads > 1 else trained


def step_curvature(network: FlatNetwork, data_objective: Any, start: dict[str, np.ndarray],
                   first: Any, loss: str, effects: Effects, stabilisers: tuple, n: int) -> float:
    """β̂ an MLP task's step size is set from (:mod:`verify.run.curvature`), at the start of its
    first model: the largest Hessian eigenvalue of the objective trained. Where that objective is
    the theory's (one head, no penalty or perturbation hook) it is the flat objective of
    :func:`mlp_objective` (for plain training: the data loss, as always); otherwise the multi-head,
    hooked objective in the step's metric. MHLoss's ``curvature="single_head"`` (the former setup,
    a null control) takes one head's data loss at the mean of the heads."""
    w_start = network.flatten({name: value.detach().numpy() for name, value in first.params.items()},
                              lead=1)[0]
    if effects.heads.curvature == "single_head" or objective_is_the_theorys(effects, stabilisers):
        flat = (data_objective if effects.heads.curvature == "single_head"
                else mlp_objective(network, None, None, start, effects, data=data_objective))
        _, hvp = objective_functions(flat, w_start, np.ones(n))
        return hessian_extreme_eigenvalues(hvp, w_start.size)[1]
    return trained_curvature(first, loss, stabilisers)


def teacher_head(network: FlatNetwork, dataset: Any) -> dict[str, np.ndarray]:
    """The dataset's teacher head (``teacher.head.*``), by parameter name, for ``init="teacher_head"``."""
    names = [name for name in network.names if name.startswith("head.")]
    missing = [name for name in names if f"teacher.{name}" not in dataset.arrays]
    if missing:
        raise ValueError(f"init='teacher_head': dataset {dataset.card.get('id', '?')} has no teacher "
                         f"head (arrays {', '.join(f'teacher.{name}' for name in missing)}); only "
                         "generators with a teacher network (make_deep_finetuning_task) supply one")
    return {name: np.asarray(dataset.arrays[f"teacher.{name}"]) for name in names}


def teacher_weights(network: FlatNetwork, dataset: Any) -> np.ndarray | None:
    """The teacher backbone in the flat layout (head entries NaN), or None without a teacher."""
    encoder = [name for name in network.names if name.startswith("encoder.")]
    if not all(f"teacher.{name}" in dataset.arrays for name in encoder):
        return None
    values = {name: (np.asarray(dataset.arrays[f"teacher.{name}"]) if name in encoder
                     else np.full(shape, np.nan))
              for name, shape in zip(network.names, network.shapes, strict=True)}
    return network.flatten(values, lead=0)


def mlp_penalties(network: FlatNetwork, start: dict[str, np.ndarray], effects: Effects) -> dict[str, Any]:
    """The penalties of the trained MLP objective as RunContext fields (strengths, anchor, masks),
    from the same record the MLP trainer reads: L2-SP anchors its groups to the pre-trained
    ``start``, weight decay acts on its groups (decoupled decay is the penalty ½λ‖w_B‖² for GD)."""
    return dict(l2sp=effects.l2sp.strength, weight_decay=effects.weight_decay.strength,
                l2sp_anchor=network.flatten(start, lead=0),
                l2sp_mask=network.group_mask(effects.l2sp.groups),
                weight_decay_mask=network.group_mask(effects.weight_decay.groups))


def mlp_objective(network: FlatNetwork, X: np.ndarray | None, y: np.ndarray | None,
                  start: dict[str, np.ndarray], effects: Effects, *, data: Any = None) -> Any:
    """The one builder of an MLP run's training objective as a function of its flat weights:
    ``(w_flat, sample_weights) -> data loss + penalties`` (single head), the data loss of
    :meth:`FlatNetwork.objective` on ``X, y`` (or ``data``, that objective already built) with the
    record's penalties added by :func:`theory.objective.penalised_objective`, exactly as the bounds'
    constants see it."""
    if data is None:
        if X is None or y is None:
            raise ValueError("mlp_objective: give X and y, or the data objective")
        data = network.objective(X, y)
    return penalised_objective(data, **mlp_penalties(network, start, effects))


TRAINERS = {"head": train_head_task, "quadratic": train_quadratic_task, "mlp": train_mlp_task}
