"""A sweep's unit of work: one dataset × training config × stabiliser, all its seeds and left-out sets.

Running a task trains every model of the task in one batched trainer call and turns the trace into
result rows (``verify.measures``). Every random number comes from ``verify.seeding.run_seed`` applied
to the task's coordinates, so a task's results never depend on which worker runs it, or when.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import numpy as np

from verify.configs import TrainingConfig
from verify.seeding import run_seed

NO_STABILISER = "none"


def canonical_params(params: dict[str, Any] | None) -> str:
    """The JSON text that names a stabiliser's parameters everywhere (keys sorted, compact)."""
    return json.dumps(params or {}, sort_keys=True, separators=(",", ":"))


@dataclass
class TaskOutput:
    """What running a task produced, before the sweep adds the task's and dataset's columns.

    Attributes
    ----------
    runs : list of dict
        One per model and checkpoint: ``seed``, ``left_out`` (None for the full set S),
        ``iteration`` and the measured columns of the ``runs`` table.
    bounds : list of dict
        One per left-out run and applicable bound: ``row`` (index into ``runs``), ``bound``,
        ``measure``, ``measured``, ``value``, ``violated`` (list), ``constants`` (dict).
    """

    runs: list[dict[str, Any]]
    bounds: list[dict[str, Any]]


@dataclass(frozen=True)
class Task:
    """One dataset trained under one config and one stabiliser, for every seed.

    Parameters
    ----------
    dataset_id : str
        The dataset's stable id (``card["id"]``).
    config : TrainingConfig
        How every model is trained.
    stabiliser : str
        A name in ``verify.stabilisers.STABILISERS``, or ``"none"``.
    stabiliser_params : str
        The stabiliser's parameters as canonical JSON (``canonical_params``).
    seeds : tuple of int
        Seed indices 0..K-1 (one for a deterministic config); each becomes a model seed through
        ``run_seed``.
    """

    dataset_id: str
    config: TrainingConfig
    stabiliser: str = NO_STABILISER
    stabiliser_params: str = "{}"
    seeds: tuple[int, ...] = (0,)

    @property
    def key(self) -> str:
        """Readable, unique within a sweep: dataset, config, stabiliser and its parameters."""
        return f"{self.dataset_id}|{self.config.name}|{self.stabiliser}|{self.stabiliser_params}"

    def record(self) -> dict[str, Any]:
        """The ``tasks`` table's identifying columns."""
        return {"task_key": self.key, "dataset_id": self.dataset_id, "config": self.config.name,
                "stabiliser": self.stabiliser, "stabiliser_params": self.stabiliser_params,
                "seeds": list(self.seeds)}

    def model_seed(self, seed: int) -> int:
        """The seed of every model trained with seed index ``seed`` (shared by its left-out sets)."""
        return run_seed(self.dataset_id, self.config.name, self.stabiliser, self.stabiliser_params, seed)


def choose_left_out(dataset_id: str, n_samples: int, support: np.ndarray, max_left_out: int) -> np.ndarray:
    """Which samples get a leave-one-out model: support vectors first, then the others, each in random order.

    The choice depends on the dataset only (not on config, stabiliser or seed), so every config and
    stabiliser is compared on the same left-out samples.

    Parameters
    ----------
    dataset_id : str
        Seeds the random order.
    n_samples : int
        n, the size of the full training set S.
    support : array of int
        Indices of the support vectors (empty where the notion does not apply).
    max_left_out : int
        At most this many indices are returned.

    Returns
    -------
    ndarray of int64
        Distinct indices in ``[0, n_samples)``.
    """
    support = np.unique(np.asarray(support, dtype=np.int64))
    others = np.setdiff1d(np.arange(n_samples), support)
    rng = np.random.default_rng(run_seed(dataset_id, "left_out"))
    return np.concatenate([rng.permutation(support), rng.permutation(others)])[:max_left_out]


def left_out_weights(left_out: np.ndarray, support: np.ndarray, n_samples: int) -> np.ndarray:
    """Weights that turn the left-out models of one seed and iteration into an estimate of E_i over S.

    The left-out samples are a stratified random sample (support vectors, others). Each stratum that
    was sampled gets the share of S it stands for, split evenly over its sampled members, and the
    weights sum to 1; ``sum(weight * measure)`` is then unbiased for ``(1/n) sum_i measure_i`` whenever
    every non-empty stratum was sampled (the plain mean over left-out rows is not, since support
    vectors are always taken first).
    """
    is_support = np.isin(left_out, np.asarray(support, dtype=np.int64))
    n_support = int(np.isin(np.arange(n_samples), support).sum())
    strata = [(is_support, n_support), (~is_support, n_samples - n_support)]
    covered = sum(size for members, size in strata if members.any())
    weights = np.zeros(len(left_out))
    for members, size in strata:
        if members.any():
            weights[members] = size / (members.sum() * covered)
    return weights


@dataclass(frozen=True)
class ModelLayout:
    """Which model of a batched call is which: seed-major, the full set S first, then each S\\i.

    Model ``m`` has seed index ``seeds[m]`` and left-out index ``left_out[m]`` (-1 for the full set).
    """

    seeds: np.ndarray      # (M,) seed index
    left_out: np.ndarray   # (M,) left-out sample index, -1 = trained on all of S
    model_seeds: np.ndarray  # (M,) run_seed of each model (same for one seed's left-out sets)

    @property
    def n_models(self) -> int:
        return len(self.seeds)

    def masks(self, n_samples: int) -> np.ndarray:
        """(M, n) 0/1 float64 sample membership: all ones, with a zero at the left-out sample."""
        masks = np.ones((self.n_models, n_samples))
        loo = self.left_out >= 0
        masks[np.flatnonzero(loo), self.left_out[loo]] = 0.0
        return masks

    def full_model(self) -> np.ndarray:
        """(M,) index of the full-set model with the same seed as each model."""
        first = {int(s): m for m, s in enumerate(self.seeds) if self.left_out[m] < 0}
        return np.array([first[int(s)] for s in self.seeds])


def model_layout(task: Task, left_out: np.ndarray) -> ModelLayout:
    """The layout of a task's models: for each seed, the full set then every left-out set."""
    per_seed = np.concatenate([[-1], np.asarray(left_out, dtype=np.int64)])
    seeds = np.repeat(np.asarray(task.seeds, dtype=np.int64), len(per_seed))
    model_seeds = np.array([task.model_seed(int(s)) for s in seeds], dtype=np.int64)
    return ModelLayout(seeds=seeds, left_out=np.tile(per_seed, len(task.seeds)), model_seeds=model_seeds)


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
    evaluator : verify.measures.Evaluator
    l2sp : float
    objective : callable or None
        RunContext.objective for MLPs.
    head_lr : float or None
        The step each linear head takes on its own mean loss (``lr``, or ``lr / H`` for MHLoss's
        mean reduction) where Soudry et al.'s asymptotic predictor applies (binary head, logistic
        or exponential loss, full-batch GD with η β < 2); None elsewhere.
    w_pretrained : (M, P) or None
        What ``distance_from_init`` is measured from when it is not ``w_init``: for MLPs the
        dataset's pre-trained encoder w0 with each model's initial head, so that a stabiliser
        that changes the starting encoder (SURT, re-initialisation) is measured from the same w0
        as plain training. The bounds' w0 (Theorem F's D) stays ``w_init``, where GD starts.
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
    l2sp: float = 0.0
    weight_decay: float = 0.0
    objective: Any = None
    head_lr: float | None = None
    w_pretrained: np.ndarray | None = None


def trainer_for(config: TrainingConfig, kind: str) -> str:
    """Which batched trainer a config uses on a dataset kind: "head", "quadratic" or "mlp"."""
    if kind not in config.kinds:
        raise ValueError(f"config: {config.name} does not train datasets of kind {kind!r}")
    if config.setting == "head":
        return "head"
    return "quadratic" if kind == "quadratic" else "mlp"


def make_stabiliser(task: Task) -> Any:
    """The task's stabiliser object, or None for plain training."""
    if task.stabiliser == NO_STABILISER:
        return None
    from verify.stabilisers import STABILISERS
    if task.stabiliser not in STABILISERS:
        raise ValueError(f"stabilisers: unknown stabiliser {task.stabiliser!r}; "
                         f"choose from {', '.join(sorted(STABILISERS))}")
    return STABILISERS[task.stabiliser].from_params(**json.loads(task.stabiliser_params))


def head_init(config: TrainingConfig, stabiliser: Any) -> str:
    """The head initialisation a head task trains with.

    Several heads trained at once (MHLoss) must start apart: zero heads under full-batch GD stay
    identical, so their mean would be a single head. A zero init therefore becomes the trainer's
    random init (from the model seeds) when the stabiliser trains more than one head.
    """
    n_heads = (stabiliser.head_kwargs().get("n_heads", config.n_heads) if stabiliser is not None
               else config.n_heads)
    return "random" if config.init == "zero" and n_heads > 1 else config.init


def task_is_stochastic(config: TrainingConfig, stabiliser_name: str, stabiliser_params: str) -> bool:
    """Whether the seed changes a task's training: the config's randomness, or random heads forced
    by the stabiliser (:func:`head_init`). Names outside the registry leave the config's answer."""
    from verify.stabilisers import STABILISERS
    if config.stochastic or config.setting != "head" or stabiliser_name not in STABILISERS:
        return config.stochastic
    stabiliser = STABILISERS[stabiliser_name].from_params(**json.loads(stabiliser_params))
    return head_init(config, stabiliser) == "random"


def _schedule(config: TrainingConfig, stabiliser: Any, lr: float) -> tuple[float, int, np.ndarray]:
    """Learning rate, steps and checkpoints (with t = 0) after the stabiliser's schedule change."""
    from verify.trainers.checkpoints import log_spaced_checkpoints
    n_steps = config.n_steps
    if stabiliser is not None:
        lr, n_steps = stabiliser.adjust_schedule(lr, n_steps)
    return float(lr), int(n_steps), log_spaced_checkpoints(int(n_steps), num=config.n_checkpoints,
                                                           include_zero=True)


def _finish(trace: Any, flat: np.ndarray, **fields: Any) -> Trained:
    """Split off the t = 0 checkpoint as the initial weights."""
    return Trained(iterations=trace.iterations[1:], weights=flat[1:], train_loss=trace.train_loss[1:],
                   diverged_at=trace.diverged_at, w_init=flat[0], **fields)


def _class_count(dataset: Any) -> int:
    return int(dataset.card.get("n_classes") or 0)


def train_head_task(config: TrainingConfig, dataset: Any, stabiliser: Any, layout: ModelLayout,
                    masks: np.ndarray) -> Trained:
    """Linear heads on the dataset's (fixed) features, every model of the task at once."""
    from verify.measures import linear_evaluator
    from verify.trainers.head import smoothness, train_heads
    n_classes = _class_count(dataset)
    loss = "softmax" if n_classes > 2 and config.loss == "logistic" else config.loss
    beta = float(np.max(smoothness(dataset.X, loss, masks)))
    lr, n_steps, checkpoints = _schedule(config, stabiliser, config.lr_scale / beta)
    extra = stabiliser.head_kwargs() if stabiliser is not None else {}
    n_heads = extra.pop("n_heads", config.n_heads)
    trace = train_heads(dataset.X, dataset.y, masks=masks, init=head_init(config, stabiliser),
                        loss=loss, lr=lr,
                        n_steps=n_steps, checkpoints=checkpoints, batch_size=config.batch_size,
                        seeds=layout.model_seeds, n_heads=n_heads, **extra)
    weights = trace.weights["w"]
    if n_heads > 1:
        weights = weights.mean(axis=2)
    flat = weights.reshape(*weights.shape[:2], -1)
    predictable = (n_classes == 2 and loss in ("logistic", "exponential") and config.batch_size is None
                   and lr * beta < 2)
    head_lr = lr / n_heads if extra.get("head_reduction", "mean") == "mean" else lr
    return _finish(trace, flat, lr=lr, n_steps=n_steps, loss=loss, n_heads=n_heads, model="linear",
                   evaluator=linear_evaluator(loss, n_classes), head_lr=head_lr if predictable else None)


def train_quadratic_task(config: TrainingConfig, dataset: Any, stabiliser: Any, layout: ModelLayout,
                         masks: np.ndarray) -> Trained:
    """Least-squares fine-tuning from the dataset's w0 by batched gradient descent."""
    from verify.measures import linear_evaluator
    from verify.trainers.head import smoothness
    from verify.trainers.quadratic import train_quadratic
    extra = stabiliser.quadratic_kwargs() if stabiliser is not None else {}
    penalty = float(extra.get("l2sp", 0.0)) + float(extra.get("weight_decay", 0.0))
    beta = float(np.max(smoothness(dataset.X, "squared", masks))) + penalty
    lr, n_steps, checkpoints = _schedule(config, stabiliser, config.lr_scale / beta)
    trace = train_quadratic(dataset.X, dataset.y, masks=masks, w0=dataset.arrays["w0"], lr=lr,
                            n_steps=n_steps, checkpoints=checkpoints, **extra)
    return _finish(trace, trace.weights["w"], lr=lr, n_steps=n_steps, loss="squared", n_heads=1,
                   model="linear",
                   evaluator=linear_evaluator("squared", 0), l2sp=float(extra.get("l2sp", 0.0)),
                   weight_decay=float(extra.get("weight_decay", 0.0)))


def train_mlp_task(config: TrainingConfig, dataset: Any, stabiliser: Any, layout: ModelLayout,
                   masks: np.ndarray) -> Trained:
    """Full fine-tuning of the dataset's pre-trained MLP (heads drawn from the seeds), batched.

    ``lr = lr_scale / β̂`` with β̂ the largest Hessian eigenvalue of the full-set loss at the start
    of the first seed (Lanczos on Hessian-vector products).
    """
    import torch
    from synth.mlp import build_model
    from theory.estimators import hessian_extreme_eigenvalues, objective_functions
    from verify.measures import FlatNetwork
    from verify.trainers.mlp import prepare_problem, train_mlp
    n_classes = _class_count(dataset)
    loss = "softmax" if n_classes > 2 and config.loss == "logistic" else config.loss
    model = build_model(dataset.card["architecture"])
    network = FlatNetwork.of(model, loss)
    # Every pre-trained array (encoder and the pre-training decoder, which SURT uses); the head has
    # no pre-trained value (heads are drawn from the seeds) but the trainer wants every name.
    start = {name: np.zeros(shape) for name, shape in zip(network.names, network.shapes, strict=True)}
    start.update({name[len("w0."):]: value for name, value in dataset.arrays.items()
                  if name.startswith("w0.")})
    stabilisers = () if stabiliser is None else (stabiliser,)
    first = prepare_problem(model, start, torch.as_tensor(dataset.X), torch.as_tensor(dataset.y),
                            masks=torch.as_tensor(masks[:1]), seeds=layout.model_seeds[:1],
                            stabilisers=stabilisers)
    w_start = network.flatten({name: value.detach().numpy() for name, value in first.params.items()},
                              lead=1)[0]
    objective = network.objective(dataset.X, dataset.y)
    _, hvp = objective_functions(objective, w_start, np.ones(len(dataset.X)))
    beta = hessian_extreme_eigenvalues(hvp, w_start.size)[1]
    if not beta > 0:
        raise ValueError(f"the loss has no positive curvature at the pre-trained weights (β̂ = {beta})")
    lr, n_steps, checkpoints = _schedule(config, stabiliser, config.lr_scale / beta)
    trace = train_mlp(model, start, dataset.X, dataset.y, masks=masks, seeds=layout.model_seeds,
                      loss=loss, lr=lr, n_steps=n_steps, checkpoints=checkpoints,
                      batch_size=config.batch_size, stabilisers=stabilisers)
    l2sp = float(stabiliser.objective_kwargs().get("l2sp", 0.0)) if stabiliser is not None else 0.0
    flat = network.flatten(trace.weights, lead=2)
    head = np.zeros(flat.shape[2], dtype=bool)
    head[network.head_indices()] = True
    w_pretrained = np.where(head, flat[0], network.flatten(start, lead=0))
    return _finish(trace, flat, lr=lr, n_steps=n_steps, loss=loss,
                   n_heads=network.n_heads(trace.weights, lead=2), model="mlp",
                   evaluator=network.evaluator(), l2sp=l2sp, objective=objective,
                   w_pretrained=w_pretrained)


TRAINERS = {"head": train_head_task, "quadratic": train_quadratic_task, "mlp": train_mlp_task}


def run_task(task: Task, dataset: Any) -> TaskOutput:
    """Train every model of ``task`` in one batched call, measure every row and bound it.

    The models are, for each seed, the one trained on all of S and one per left-out sample
    (:func:`choose_left_out`, up to ``config.max_left_out``). A failing trainer raises (the sweep
    records the task as failed); a failing bound estimate is recorded in that bound's row.

    Parameters
    ----------
    task : Task
    dataset : synth.Dataset
        The dataset ``task.dataset_id`` names.

    Returns
    -------
    TaskOutput
    """
    from verify.measures import (RowInputs, add_asymptotic_predictions, add_feature_margins, bound_rows,
                                 trace_rows)
    if dataset.card["id"] != task.dataset_id:
        raise ValueError(f"dataset: expected {task.dataset_id}, got {dataset.card['id']}")
    config = task.config
    trainer = trainer_for(config, dataset.card["kind"])
    stabiliser = make_stabiliser(task)
    if stabiliser is not None and trainer not in stabiliser.applies_to:
        raise ValueError(f"stabilisers: {task.stabiliser} does not apply to the {trainer} trainer")
    n_samples = len(dataset.X)
    support = np.asarray(dataset.arrays.get("support", np.empty(0, dtype=np.int64)), dtype=np.int64)
    left_out = choose_left_out(task.dataset_id, n_samples, support, config.max_left_out)
    layout = model_layout(task, left_out)
    masks = layout.masks(n_samples)
    trained = TRAINERS[trainer](config, dataset, stabiliser, layout, masks)

    u_star = dataset.arrays.get("u_star") if config.setting == "head" else None
    if u_star is not None:
        u_star = np.ravel(u_star) / np.linalg.norm(u_star)
        if u_star.size != trained.weights.shape[2]:
            u_star = None
    n_classes = _class_count(dataset)
    inputs = RowInputs(X=dataset.X, y=dataset.y, X_test=dataset.X_test, y_test=dataset.y_test,
                       n_classes=n_classes, u_star=u_star, lr=trained.lr,
                       w_init=trained.w_init if trained.w_pretrained is None else trained.w_pretrained)
    rows = trace_rows(trained.iterations, trained.weights, trained.train_loss, trained.diverged_at,
                      layout=layout, evaluator=trained.evaluator, inputs=inputs, masks=masks)
    weights = dict(zip(left_out.tolist(), left_out_weights(left_out, support, n_samples).tolist()))
    support_set = set(support.tolist())
    for row in rows:
        row["n_steps"] = trained.n_steps
        row["loss"] = trained.loss
        row["n_heads"] = trained.n_heads
        if config.setting == "head":
            row["init"] = head_init(config, stabiliser)
        if row["left_out"] is not None:
            row["left_out_support"] = int(row["left_out"] in support_set)
            row["left_out_weight"] = weights[row["left_out"]]
    add_feature_margins(rows, trained.weights, layout=layout, evaluator=trained.evaluator,
                        X=dataset.X, y=dataset.y)
    add_asymptotic_predictions(rows, trained.weights, trained.iterations, layout=layout,
                               w_init=trained.w_init, X=dataset.X, y=dataset.y, u_star=u_star,
                               head_lr=trained.head_lr)
    context = dict(model=trained.model, loss=trained.loss, X=dataset.X, y=dataset.y, lr=trained.lr,
                   batch_size=config.batch_size, l2sp=trained.l2sp,
                   weight_decay=trained.weight_decay, objective=trained.objective,
                   arrays=dataset.arrays, card=dataset.card)
    bounds = bound_rows(rows, weights=trained.weights, w_init=trained.w_init, layout=layout,
                        context=context, setting=config.setting, max_models=config.bound_models,
                        last_only=config.bound_last_only)
    return TaskOutput(runs=rows, bounds=bounds)
