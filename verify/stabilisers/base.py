"""The one stabiliser API that the trainers compose.

A stabiliser is a small object with optional hooks, in the spirit of optax's composable
transformations. Every hook is the identity by default, so a stabiliser overrides only what it
changes. The MLP trainer (:func:`verify.trainers.mlp.train_mlp`) applies them in this order:

1. once before training, for each stabiliser in turn: the start weights and heads of its record
   (:meth:`Stabiliser.effects`: top layers re-drawn, H heads), then ``prepare(problem, generators)
   -> problem``: a stage before fine-tuning (SURT). ``generators`` holds one ``torch.Generator`` per
   model, seeded from that model's seed and the stabiliser's name, so models sharing a seed (the
   model on S and the ones on S\\i) are prepared identically.
2. at every step, outside ``vmap``: ``draw(problem, batch_size, generator) -> dict`` of random
   tensors for one seed (Mixout masks, LNSR noise), drawn from the per-seed training stream after
   the minibatch indices, in stabiliser order. Models sharing a seed share the draws.
3. inside the per-model loss (under ``vmap``): ``perturb(params, ctx) -> params`` gives the
   parameters used in the forward pass (Mixout); the record's L2-SP term, then ``penalty(params, ctx)
   -> scalar``, add loss terms (MMR, LNSR), where ``params`` are the trainable parameters and
   ``ctx.features`` the forward pass's encoder features;
4. after differentiation, in stabiliser order: the record's decoupled weight decay, then
   ``transform_grads(grads, params, ctx) -> grads`` (layer-wise learning-rate decay); the step is
   ``params - lr * grads`` (or the optimiser's).

Parameters are chosen explicitly by group (``"encoder"``, ``"head"``) and by the layer order the
problem gives (bottom to top, the head last), never by module names of a particular network.

What a stabiliser changes that a trainer or the theory reads as data (penalties on parameter groups,
decay, heads and their reduction, schedule, start weights) it declares once, in
:meth:`Stabiliser.effects` (a :class:`verify.effects.Effects`); the trainers, their naive twins, the
sweep and the theory's objective all read that record. Which trainers a stabiliser applies to
(``applies_to``) follows from its record and the hooks it overrides
(:func:`verify.effects.trainers_changed`), never from a hand-kept list.
"""
from __future__ import annotations

import copy
import inspect
import math
import numbers
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from synth.validation import Constraint, Interval, Options, Subset, check_param
from verify.effects import GROUPS, NO_EFFECTS, TRAINERS, Effects, trainers_changed
from verify.seeding import run_seed

__all__ = ["GROUPS", "TRAINERS", "Effects", "FineTuningProblem", "Stabiliser", "StepContext"]
# Penalty strengths (L2-SP, weight decay, MMR, LNSR) are declared in [0, MAX_STRENGTH]: the losses
# the theory bounds are O(1) on the suite's datasets, so a penalty 100 times larger leaves training
# nothing but the penalty (weight decay 1e308 gave lr = 1e-308: nothing trained, every bound Inf).
MAX_STRENGTH = 100.0
# Multipliers of a size or a time (heads, steps, layers) are declared up to here: far beyond what
# any sweep of the suite uses, and small enough that a typo cannot ask for 10^9 heads.
MAX_MULTIPLIER = 1000
STRENGTH = Interval(numbers.Real, 0.0, MAX_STRENGTH)
# A selection of parameter groups: one group's name or a non-empty list of them.
GROUP_CONSTRAINTS: list[Constraint] = [Options(GROUPS), Subset(GROUPS)]


@dataclass(frozen=True)
class FineTuningProblem:
    """What the MLP trainer is about to train: M models sharing one architecture.

    Attributes
    ----------
    model : torch.nn.Module
        The architecture, with ``encoder`` and ``head`` submodules and
        ``model(x) == model.head(model.encoder(x))``; only its structure is used.
    params : dict of str to torch.Tensor
        Starting parameters per model, shape ``(M, ...)``; head parameters carry a heads axis,
        ``(M, n_heads, ...)``.
    reference : dict of str to torch.Tensor
        The pre-trained weights w0 (no models axis) that L2-SP and Mixout pull toward; head entries
        are zero unless w0 provides them (a new head has no pre-trained value).
    X : torch.Tensor
        ``(n, d)`` training inputs of the full set S.
    y : torch.Tensor
        ``(n,)`` int64 labels.
    masks : torch.Tensor
        ``(M, n)`` 0/1 sample membership.
    seeds : numpy.ndarray
        ``(M,)`` int seeds; models sharing a seed are coupled.
    layers : tuple of tuple of str
        Parameter names grouped by layer, bottom to top; the last layer is the head.
    groups : dict of str to str
        Parameter name to group, ``"encoder"`` or ``"head"``.
    n_heads : int
        Number of linear heads per model (MHLoss).
    head_reduction : {"balanced", "sum", "mean"}
        How the heads' losses combine.
    pretrained : dict of str to numpy.ndarray
        Everything the pre-trained checkpoint provides, including parts outside the fine-tuned
        model (e.g. the pre-training decoder ``decoder.*`` that SURT continues to train).
    unlabelled : numpy.ndarray or None
        ``(N, d)`` unlabelled target inputs of the task (the target pool SURT re-trains on), the
        same for every model; None when the task has none.
    """

    model: nn.Module
    params: dict[str, torch.Tensor]
    reference: dict[str, torch.Tensor]
    X: torch.Tensor
    y: torch.Tensor
    masks: torch.Tensor
    seeds: np.ndarray
    layers: tuple[tuple[str, ...], ...]
    groups: dict[str, str]
    n_heads: int = 1
    head_reduction: str = "mean"
    pretrained: dict[str, np.ndarray] = field(default_factory=dict)
    unlabelled: np.ndarray | None = None

    @property
    def n_models(self) -> int:
        return int(self.masks.shape[0])


@dataclass(frozen=True)
class StepContext:
    """What the per-model hooks see at one step (tensors without the models axis).

    Attributes
    ----------
    x, y : torch.Tensor
        The step's inputs ``(B, d)`` and labels ``(B,)`` (the whole set for full-batch GD).
    weights : torch.Tensor
        ``(B,)`` sample weights summing to 1 over this model's samples in the batch (0 for samples
        outside the model's training set).
    reference : dict of str to torch.Tensor
        The pre-trained weights w0.
    layers, groups
        As in :class:`FineTuningProblem`.
    encode : callable
        ``encode(params, x) -> features``: the encoder as a function of the parameters.
    forward_params : dict of str to torch.Tensor
        The parameters the forward pass used (after ``perturb``).
    features : torch.Tensor
        ``(B, h)`` encoder features of the forward pass.
    noise : dict of str to torch.Tensor
        This stabiliser's draws for this step (see :meth:`Stabiliser.draw`).
    """

    x: torch.Tensor
    y: torch.Tensor
    weights: torch.Tensor
    reference: Mapping[str, torch.Tensor]
    layers: tuple[tuple[str, ...], ...]
    groups: Mapping[str, str]
    encode: Callable[[Mapping[str, torch.Tensor], torch.Tensor], torch.Tensor]
    forward_params: Mapping[str, torch.Tensor] = field(default_factory=dict)
    features: torch.Tensor | None = None
    noise: Mapping[str, torch.Tensor] = field(default_factory=dict)


HOOKS = ("prepare", "draw", "perturb", "penalty", "transform_grads")


class _Applicability:
    """``applies_to`` of a stabiliser class: the trainers its record (at the default parameters)
    and its hooks act on (:func:`verify.effects.trainers_changed`)."""

    def __get__(self, instance: Any, owner: type[Stabiliser]) -> frozenset[str]:
        return trainers_changed(owner().effects(), hooks=owner.overrides_hooks())


class Stabiliser:
    """Base class: no effects and every hook the identity; subclasses override what they change.

    Class attributes
    ----------------
    name : str
        Registry name (``verify.stabilisers.STABILISERS``) and the ``stabiliser`` column of results.
    targets : tuple of str
        The theory quantities it is meant to move, among ``"mu"``, ``"D"``, ``"rho"``,
        ``"gamma_over_R"``, ``"init_variance"``, ``"eta_T"``.
    parameter_constraints : dict of str to list of constraints
        The declared constraints of every constructor parameter, in ``synth.validation``'s
        vocabulary (a value is valid when it satisfies one; checked by :meth:`check_param`); a value
        outside them is refused before anything trains, and the tests generate their invalid
        cases from them.
    identity_params : dict or None
        Parameters at which the stabiliser is plain training (strength 0, one head, factor 1),
        checked bit for bit by the contract tests; None when there are none (a stage that always
        runs, layers always re-drawn).
    applies_to : frozenset of str
        Derived, never declared: the trainers among ``"head"``, ``"quadratic"``, ``"mlp"`` that
        consume everything it changes (:func:`verify.effects.trainers_changed`).
    strength_grid : dict of str to tuple
        A small declared grid of its strength: one parameter and a few values (the default among
        them), each run with the other parameters at their defaults (``ftstab verify
        --stabilisers grid``); the verdicts report the default and the setting selected on
        validation accuracy. Empty: no grid.
    """

    name: ClassVar[str] = "none"
    targets: ClassVar[tuple[str, ...]] = ()
    parameter_constraints: ClassVar[Mapping[str, Sequence[Constraint]]] = {}
    identity_params: ClassVar[Mapping[str, Any] | None] = None
    applies_to: ClassVar[frozenset[str]] = _Applicability()  # type: ignore[assignment]
    strength_grid: ClassVar[Mapping[str, tuple]] = {}

    @classmethod
    def grid_settings(cls) -> list[dict[str, Any]]:
        """The keyword parameters of each point of :attr:`strength_grid` (the other parameters at
        their defaults); ``[{}]`` (the defaults) without a grid."""
        if not cls.strength_grid:
            return [{}]
        (name, values), = cls.strength_grid.items()
        return [{name: value} for value in values]

    @classmethod
    def check_param(cls, name: str, value: Any) -> Any:
        """``value`` (converted) if it satisfies ``parameter_constraints[name]``, else ValueError
        ``"<name> must be <form> (got <value>)"``."""
        return check_param(name, value, cls.parameter_constraints[name])

    @classmethod
    def overrides_hooks(cls) -> bool:
        """Whether it overrides a hook that only the MLP trainer runs (:data:`HOOKS`)."""
        return any(getattr(cls, hook) is not getattr(Stabiliser, hook) for hook in HOOKS)

    @classmethod
    def from_params(cls, **params: Any) -> Stabiliser:
        """Build from keyword parameters, as stored in the results' ``stabiliser_params``."""
        allowed = sorted(name for name in inspect.signature(cls).parameters)
        unknown = sorted(set(params) - set(allowed))
        if unknown:
            raise ValueError(f"{cls.name}: unknown parameter(s) {unknown}; allowed: {allowed}")
        return cls(**params)

    def params(self) -> dict[str, Any]:
        """JSON-serialisable parameters, such that ``from_params(**params())`` rebuilds it."""
        return {}

    def effects(self) -> Effects:
        """What it changes in training as data (:class:`verify.effects.Effects`)."""
        return NO_EFFECTS

    def check_encoder(self, n_layers: int) -> None:
        """Refuse (ValueError) before training when this stabiliser cannot act on an encoder of
        ``n_layers`` layers (the sweep's pre-flight calls it for every MLP dataset)."""
        reinit = self.effects().start.reinit_top
        if reinit > n_layers:
            raise ValueError(f"n_layers must be an int in [1, {n_layers}] for this encoder "
                             f"(got {reinit})")

    def prepare(self, problem: FineTuningProblem,
                generators: Sequence[torch.Generator]) -> FineTuningProblem:
        return problem

    def draw(self, problem: FineTuningProblem, batch_size: int,
             generator: torch.Generator) -> dict[str, torch.Tensor]:
        return {}

    def perturb(self, params: dict[str, torch.Tensor], ctx: StepContext) -> dict[str, torch.Tensor]:
        return params

    def penalty(self, params: dict[str, torch.Tensor], ctx: StepContext) -> torch.Tensor | float:
        return 0.0

    def transform_grads(self, grads: dict[str, torch.Tensor], params: dict[str, torch.Tensor],
                        ctx: StepContext) -> dict[str, torch.Tensor]:
        return grads

    def __repr__(self) -> str:
        args = ", ".join(f"{key}={value!r}" for key, value in self.params().items())
        return f"{type(self).__name__}({args})"


def check_groups(groups: Any) -> tuple[str, ...]:
    """Validate a selection of parameter groups (:data:`GROUP_CONSTRAINTS`) and return it as a tuple."""
    checked = check_param("groups", groups, GROUP_CONSTRAINTS)
    return (checked,) if isinstance(checked, str) else checked


def model_generators(seeds: Iterable[int], purpose: str) -> list[torch.Generator]:
    """One generator per model, a pure function of the model's seed and ``purpose``."""
    return [torch.Generator().manual_seed(run_seed(int(seed), purpose)) for seed in seeds]


def layer_fan_in(shapes: Mapping[str, torch.Size]) -> int:
    """Fan-in of a layer given its parameter shapes: the input size of its weight matrix."""
    matrices = [shape for shape in shapes.values() if len(shape) >= 2]
    if len(matrices) != 1:
        raise ValueError(f"a layer must hold exactly one weight matrix, got shapes {dict(shapes)}")
    return math.prod(matrices[0][1:])


def init_layer(shapes: Mapping[str, torch.Size], generator: torch.Generator,
               dtype: torch.dtype) -> dict[str, torch.Tensor]:
    """Fresh parameters of one layer: U(-1/sqrt(fan_in), 1/sqrt(fan_in)), torch.nn.Linear's default.

    Drawn in the order of ``shapes`` from ``generator``, so the result is a pure function of it.
    """
    bound = 1.0 / math.sqrt(layer_fan_in(shapes))
    return {name: torch.empty(shape, dtype=dtype).uniform_(-bound, bound, generator=generator)
            for name, shape in shapes.items()}


def encoder_blocks(problem: FineTuningProblem) -> list[list[tuple[str, ...]]]:
    """The encoder's layers grouped into blocks, bottom to top: a layer holding a weight matrix
    starts a block, and the layers above it without one (normalisation) belong to it."""
    blocks: list[list[tuple[str, ...]]] = []
    for layer in problem.layers:
        if problem.groups[layer[0]] != "encoder":
            continue
        if any(problem.reference[name].dim() >= 2 for name in layer) or not blocks:
            blocks.append([layer])
        else:
            blocks[-1].append(layer)
    return blocks


def initial_values(problem: FineTuningProblem, layer: tuple[str, ...]) -> dict[str, torch.Tensor]:
    """The values the architecture's own initialisation gives a layer without a weight matrix
    (a normalisation layer's ``reset_parameters``: deterministic, e.g. LayerNorm's 1 and 0)."""
    prefix = layer[0].rsplit(".", 1)[0]
    module = copy.deepcopy(problem.model.get_submodule(prefix))
    module.reset_parameters()  # type: ignore[operator]  # torch types module attributes as Tensor | Module
    own = dict(module.named_parameters())
    return {name: own[name.rsplit(".", 1)[1]].detach().to(problem.reference[name].dtype)
            for name in layer}


def init_heads(model: nn.Module, head_names: Sequence[str], seeds: Iterable[int],
               n_heads: int, dtype: torch.dtype) -> dict[str, torch.Tensor]:
    """Head parameters ``(M, n_heads, ...)`` drawn from each model's seed.

    Head h of a model is the (h+1)-th draw of its seed's head stream, so head 0 does not depend on
    ``n_heads``: with one head, MHLoss starts exactly where the plain trainer starts.
    """
    state = dict(model.named_parameters())
    shapes = {name: state[name].shape for name in head_names}
    per_model = []
    for generator in model_generators(seeds, "head_init"):
        heads = [init_layer(shapes, generator, dtype) for _ in range(n_heads)]
        per_model.append({name: torch.stack([head[name] for head in heads]) for name in head_names})
    return {name: torch.stack([model[name] for model in per_model]) for name in head_names}


def map_selected(tensors: Mapping[str, torch.Tensor], names: Sequence[str],
                 function: Callable[[str, torch.Tensor], torch.Tensor]) -> dict[str, torch.Tensor]:
    """Apply ``function(name, tensor)`` to the selected names, keep the rest unchanged."""
    selected = set(names)
    return {name: function(name, tensor) if name in selected else tensor
            for name, tensor in tensors.items()}


def selected_names(where: StepContext | FineTuningProblem, groups: Sequence[str],
                   *, matrices_only: bool = False) -> tuple[str, ...]:
    """Names in ``groups`` in layer order, bottom to top; ``matrices_only`` keeps weight matrices
    (parameters with two or more dimensions) and drops biases."""
    names = tuple(name for layer in where.layers for name in layer if where.groups[name] in groups)
    if matrices_only:
        names = tuple(name for name in names if where.reference[name].dim() >= 2)
    return names
