"""What a stabiliser changes in training, as one typed, frozen record: :class:`Effects`.

Every trainer reads the same record (:meth:`verify.stabilisers.base.Stabiliser.effects`), by field,
never a keyword dictionary by key:

- the head trainer (:func:`verify.trainers.head.train_heads` and its naive twin): ``heads``;
- the least-squares trainer (:func:`verify.trainers.quadratic.train_quadratic` and its twin): the
  penalties ``l2sp`` and ``weight_decay`` on its one block of pre-trained weights
  (:data:`LINEAR_GROUP`);
- the MLP trainer (:func:`verify.trainers.mlp.train_mlp` and its twin): ``heads`` (the model's
  heads and how their losses combine), ``start`` (layers re-drawn before training), ``l2sp`` (a
  loss term on its groups) and ``weight_decay`` (decoupled: added to the gradient of its groups);
- the sweep, for every trainer: ``schedule`` (learning rate and number of steps);
- the theory: the bounds' ``RunContext`` takes ``l2sp``, ``weight_decay`` (strength, anchor and the
  flat weights of their groups) and ``n_heads`` from the same record
  (:func:`theory.objective.training_objective` adds the penalties to the data loss).

What a record cannot say (a penalty on features, a perturbed forward pass, random draws, a stage
before fine-tuning, a transform of the gradient) a stabiliser says with the hooks of
:mod:`verify.stabilisers.base`, which only the MLP trainer runs. Which trainers a stabiliser applies
to follows from the two (:func:`trainers_changed`), in one place.
"""
from __future__ import annotations

from dataclasses import dataclass, field

GROUPS = ("encoder", "head")
TRAINERS = ("head", "quadratic", "mlp")
# The least-squares model is one block of pre-trained weights (it starts at the dataset's w0), so a
# penalty acts on it when it acts on the pre-trained group.
LINEAR_GROUP = "encoder"
# How H heads' losses combine (docs/theory.md §4): "balanced" trains each head as a single head
# would and leaves the encoder's effective step unchanged (the heads' losses averaged, each head's
# gradient multiplied by H: equivalently summed over heads with the encoder at lr / H); "sum" also
# multiplies the encoder's gradient by H; "mean" divides each head's step by H.
HEAD_REDUCTIONS = ("balanced", "sum", "mean")
# Where the step size's curvature comes from: the objective actually trained (its largest
# eigenvalue, heads, penalties and the balanced reading's step scaling included), or one head's
# data loss at the mean of the heads (the former setup, kept as a labelled null control).
CURVATURES = ("trained", "single_head")


def _check_groups(label: str, groups: tuple[str, ...]) -> None:
    if not groups or any(group not in GROUPS for group in groups) or len(set(groups)) != len(groups):
        raise ValueError(f"{label} must be a non-empty subset of {GROUPS}, got {groups!r}")


@dataclass(frozen=True)
class Penalty:
    """½ strength ‖(w − anchor)_A‖² over the parameter groups A (``groups``).

    The anchor is the penalty's own: the pre-trained weights w0 for L2-SP, 0 for weight decay.
    """

    strength: float = 0.0
    groups: tuple[str, ...] = GROUPS

    def __post_init__(self) -> None:
        if not (isinstance(self.strength, (int, float)) and not isinstance(self.strength, bool)
                and 0 <= self.strength < float("inf")):
            raise ValueError(f"strength must be a finite number >= 0, got {self.strength!r}")
        object.__setattr__(self, "strength", float(self.strength))
        object.__setattr__(self, "groups", tuple(self.groups))
        _check_groups("groups", self.groups)

    def on(self, group: str) -> float:
        """The strength acting on ``group`` (0 where the penalty does not act)."""
        return self.strength if group in self.groups else 0.0


@dataclass(frozen=True)
class Heads:
    """H linear heads per model, how their losses combine (:data:`HEAD_REDUCTIONS`) and where the
    step size's curvature comes from (:data:`CURVATURES`); prediction is by the mean logit."""

    n_heads: int = 1
    reduction: str = "mean"
    curvature: str = "trained"

    def __post_init__(self) -> None:
        if isinstance(self.n_heads, bool) or not isinstance(self.n_heads, int) or self.n_heads < 1:
            raise ValueError(f"n_heads must be an integer >= 1, got {self.n_heads!r}")
        if self.reduction not in HEAD_REDUCTIONS:
            raise ValueError(f"reduction must be one of {HEAD_REDUCTIONS}, got {self.reduction!r}")
        if self.curvature not in CURVATURES:
            raise ValueError(f"curvature must be one of {CURVATURES}, got {self.curvature!r}")

    @property
    def head_step_scale(self) -> float:
        """Factor of each head's gradient after the reduction: H for "balanced", else 1."""
        return float(self.n_heads) if self.reduction == "balanced" else 1.0

    @property
    def fixed_features_reduction(self) -> str:
        """The head trainer's reduction (no encoder: "balanced" is "sum" there)."""
        return "sum" if self.reduction == "balanced" else self.reduction

    def per_head_lr(self, lr: float) -> float:
        """The step each head takes on its own loss: lr / H for "mean", lr otherwise."""
        return lr / self.n_heads if self.reduction == "mean" else lr


@dataclass(frozen=True)
class Schedule:
    """The learning rate divided by ``lr_divisor`` and the number of steps multiplied by ``steps_factor``."""

    lr_divisor: float = 1.0
    steps_factor: int = 1

    def __post_init__(self) -> None:
        if not (isinstance(self.lr_divisor, (int, float)) and 0 < self.lr_divisor < float("inf")):
            raise ValueError(f"lr_divisor must be a finite number > 0, got {self.lr_divisor!r}")
        if isinstance(self.steps_factor, bool) or not isinstance(self.steps_factor, int) \
                or self.steps_factor < 1:
            raise ValueError(f"steps_factor must be an integer >= 1, got {self.steps_factor!r}")

    def apply(self, lr: float, n_steps: int) -> tuple[float, int]:
        """``(lr, n_steps)`` after the change (exactly ``(lr, n_steps)`` when nothing changes)."""
        if self.lr_divisor == 1 and self.steps_factor == 1:
            return lr, n_steps
        return lr / self.lr_divisor, n_steps * self.steps_factor


@dataclass(frozen=True)
class Start:
    """Start weights: the top ``reinit_top`` encoder layers re-drawn from each model's seed."""

    reinit_top: int = 0

    def __post_init__(self) -> None:
        if isinstance(self.reinit_top, bool) or not isinstance(self.reinit_top, int) \
                or self.reinit_top < 0:
            raise ValueError(f"reinit_top must be an integer >= 0, got {self.reinit_top!r}")


@dataclass(frozen=True)
class Effects:
    """Everything a stabiliser changes in training that a trainer or the theory reads as data.

    Attributes
    ----------
    l2sp : Penalty
        ½λ‖(w − w0)_A‖² in the loss, anchored at the pre-trained weights (the encoder by default).
    weight_decay : Penalty
        Decoupled decay: λ w added to the gradient of its groups (for plain GD, the penalty ½λ‖w_B‖²).
    heads : Heads
        Heads per model and their reduction.
    schedule : Schedule
        Learning rate and number of steps.
    start : Start
        Changes of the start weights.
    """

    l2sp: Penalty = field(default_factory=lambda: Penalty(0.0, ("encoder",)))
    weight_decay: Penalty = field(default_factory=Penalty)
    heads: Heads = field(default_factory=Heads)
    schedule: Schedule = field(default_factory=Schedule)
    start: Start = field(default_factory=Start)

    def changes(self) -> frozenset[str]:
        """The parts this record changes, structurally (a penalty of strength 0 still counts: its
        strength is a parameter, which may be 0 on a strength grid)."""
        plain = Effects()
        parts = {"l2sp": self.l2sp != plain.l2sp or self.l2sp.strength > 0,
                 "weight_decay": self.weight_decay != plain.weight_decay or self.weight_decay.strength > 0,
                 "heads": self.heads != plain.heads,
                 "schedule": self.schedule != plain.schedule,
                 "start": self.start != plain.start}
        return frozenset(name for name, changed in parts.items() if changed)

    def quadratic_penalties(self) -> tuple[float, float]:
        """``(l2sp, weight_decay)`` strengths on the least-squares model's weights."""
        return self.l2sp.on(LINEAR_GROUP), self.weight_decay.on(LINEAR_GROUP)


NO_EFFECTS = Effects()

# Which parts of a record each trainer consumes; the rest it cannot honour.
CONSUMED = {"head": frozenset({"heads", "schedule"}),
            "quadratic": frozenset({"l2sp", "weight_decay", "schedule"}),
            "mlp": frozenset({"l2sp", "weight_decay", "heads", "schedule", "start"})}


def trainers_changed(effects: Effects, *, hooks: bool) -> frozenset[str]:
    """The trainers on which a stabiliser with this record acts: those that consume every part it
    changes (``hooks``: it also overrides a per-step or preparation hook, which only the MLP trainer
    runs). A stabiliser that changes nothing acts on no trainer.

    A least-squares penalty counts only when it acts on the model's block (:data:`LINEAR_GROUP`):
    L2-SP of the head alone would change nothing there.
    """
    changed = effects.changes()
    if not changed and not hooks:
        return frozenset()
    trainers = {trainer for trainer in TRAINERS if changed <= CONSUMED[trainer]}
    if hooks:
        trainers &= {"mlp"}
    if "quadratic" in trainers and any(
            LINEAR_GROUP not in getattr(effects, name).groups
            for name in ("l2sp", "weight_decay") if name in changed):
        trainers.discard("quadratic")
    return frozenset(trainers)
