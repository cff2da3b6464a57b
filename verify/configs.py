"""Named training configurations: what a sweep trains on each dataset, written as TOML files.

The shipped configs are the ``[[config]]`` tables of ``verify/configs/*.toml`` (one file per family:
``head``, ``full_quadratic``, ``full_mlp``, ``full_deep``; each file's ``[defaults]`` are shared by its
configs), loaded into :data:`CONFIGS` in file-name order; adding a config is adding a table there,
and ``ftstab verify --configs PATH.toml`` trains a user's own file (:func:`load_config_file`).

For the theorems' optimisers (GD, SGD) the learning rate is never absolute: ``lr = lr_scale / beta_hat``
with ``beta_hat`` the smoothness of the training objective on the dataset (the largest over the task's
training sets S and S\\i), so one config means the same thing on every dataset and ``lr_scale`` reads
directly against the theory's ``eta <= 1/beta`` and ``eta < 2/beta``. The practice's optimisers
(AdamW, whose step is about ``lr`` per coordinate whatever the curvature) take ``lr_unit="absolute"``:
then ``lr = lr_scale``.
"""
from __future__ import annotations

import numbers
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import MISSING, asdict, dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np

from synth.validation import (BOOLEAN, Constraint, InstanceOf, Interval, Options, Subset, Text,
                              validate_params)
from verify.optimiser_spec import PLAIN, OptimiserSpec

SETTINGS = ("head", "full")
KINDS = ("separable", "quadratic", "mlp", "deep_mlp")
LR_UNITS = ("inverse_beta", "absolute")
LOSSES = ("logistic", "exponential", "softmax", "squared")
INITS = ("zero", "random", "pretrained", "teacher_head")
# A config's name is a results column and part of every task key ("|"-separated) and run seed.
NAME = Text(r"[A-Za-z0-9][A-Za-z0-9_.+-]*", "a name of letters, digits and _.+- (not starting with "
            "_.+-)")
COUNT = Interval(numbers.Integral, 1, None)
SIZE = Interval(numbers.Integral, 0, None)
# A validation split holds at most half of the labelled samples (and at least one per class stays
# for training, verify.run.validation).
MAX_VALIDATION_FRACTION = 0.5
# The declared range of every parameter, in field order (synth.validation's vocabulary).
PARAMETER_CONSTRAINTS: dict[str, list[Constraint]] = {
    "name": [NAME], "setting": [Options(SETTINGS)], "kinds": [Subset(KINDS)],
    "loss": [Options(LOSSES)], "init": [Options(INITS)],
    "lr_scale": [Interval(numbers.Real, 0.0, None, "neither")], "n_steps": [COUNT],
    "n_checkpoints": [COUNT], "batch_size": [Options((None,)), COUNT], "max_left_out": [SIZE],
    "exact_left_out_up_to": [SIZE], "n_heads": [COUNT], "bound_models": [Options((None,)), SIZE],
    "bound_left_out": [Options((None,)), SIZE], "bound_last_only": [BOOLEAN],
    "with_stabilisers": [BOOLEAN], "optimiser": [InstanceOf(OptimiserSpec)],
    "lr_unit": [Options(LR_UNITS)], "dropout": [Interval(numbers.Real, 0.0, 1.0, "left")],
    "validation_fraction": [Interval(numbers.Real, 0.0, MAX_VALIDATION_FRACTION)],
}


@dataclass(frozen=True)
class TrainingConfig:
    """One way of training every model of a task.

    Parameters
    ----------
    name : str
        Stable identifier, stored in the results' ``config`` column.
    setting : {"head", "full"}
        Head tuning (features frozen, linear head trained) or full fine-tuning.
    kinds : tuple of str
        Dataset kinds (``card["kind"]``) the config trains on.
    loss : {"logistic", "exponential", "softmax", "squared"}
        Training loss; "logistic" means softmax cross-entropy on multiclass datasets.
    init : {"zero", "random", "pretrained", "teacher_head"}
        Head initialisation, or "pretrained" (start from the dataset's ``w0``) for full fine-tuning;
        for full fine-tuning of an MLP, "random" says that the seed's fresh head makes runs differ,
        and "teacher_head" (deep tasks) starts every model's head at the dataset's teacher head,
        so that the labelled task's optimum lies at the teacher backbone (SURT's premise).
    lr_scale : float
        Learning rate in units of ``1 / beta_hat`` (``lr_unit="inverse_beta"``) or the learning
        rate itself (``lr_unit="absolute"``).
    n_steps : int
        Training iterations T.
    n_checkpoints : int
        Number of log-spaced checkpoints in ``[1, n_steps]`` (fewer when they coincide).
    batch_size : int or None
        Minibatch size for SGD; None is full-batch gradient descent.
    max_left_out : int
        Leave-one-out sets trained per seed where E_i is estimated: a stratified random sample
        (support vectors / others, each with a guaranteed share; ``verify.run.layout``); 0 trains
        none (seed-to-seed measures only).
    exact_left_out_up_to : int
        Every sample is left out (E_i exact) where n is at most this (or at most ``max_left_out``).
    n_heads : int
        Linear heads trained at once (MHLoss); 1 is a single head.
    bound_models : int or None
        Evaluate the bounds on the first this many left-out models (seed 0 first), None for all;
        bounds whose constants need Lanczos on an MLP's Hessian cost seconds per model.
    bound_left_out : int or None
        Evaluate the bounds, per seed, on a stratified sub-sample of this many of the left-out sets
        (``verify.run.layout.choose_left_out`` with this budget: a subset of the left-out sets, with its
        own weights, ``runs.bound_weight``); None: on every left-out set. Head configs leave every
        sample out but bound 16 per seed: a bound row per model and checkpoint would be millions.
    bound_last_only : bool
        Evaluate the bounds at the last checkpoint only.
    with_stabilisers : bool
        Whether ``--stabilisers`` crosses this config (the base configs of each setting do; the
        learning-rate sweeps are compared without stabilisers).
    optimiser : OptimiserSpec
        Plain gradient steps by default (GD, or SGD with ``batch_size``); momentum or AdamW with
        a warm-up / decay schedule otherwise (MLP trainers only).
    lr_unit : {"inverse_beta", "absolute"}
        How ``lr_scale`` becomes the learning rate.
    dropout : float
        Dropout rate in [0, 1) at the backbone's dropout sites while training (MLP only).
    validation_fraction : float
        Share of the labelled samples, in [0, 0.5], set aside per class as a validation split by a
        seeded rule (``verify.run.validation``): the models train on the rest, and every row records
        its ``validation_accuracy`` (for selecting a stabiliser's strength, never the reported test
        accuracy). 0: no split, the models train on all of S. MLP kinds only (the certificates of
        the other kinds index the whole training set).
    """

    name: str
    setting: str
    kinds: tuple[str, ...]
    loss: str
    init: str
    lr_scale: float
    n_steps: int
    n_checkpoints: int = 12
    batch_size: int | None = None
    max_left_out: int = 16
    exact_left_out_up_to: int = 0
    n_heads: int = 1
    bound_models: int | None = None
    bound_left_out: int | None = None
    bound_last_only: bool = False
    with_stabilisers: bool = False
    optimiser: OptimiserSpec = PLAIN
    lr_unit: str = "inverse_beta"
    dropout: float = 0.0
    validation_fraction: float = 0.0

    def __post_init__(self) -> None:
        values = {field.name: getattr(self, field.name) for field in fields(self)}
        for name, value in validate_params(PARAMETER_CONSTRAINTS, values).items():
            object.__setattr__(self, name, value)
        if self.optimiser.warmup_steps > self.n_steps:
            raise ValueError(f"optimiser.warmup_steps must be an int in [0, n_steps = {self.n_steps}] "
                             f"(got {self.optimiser.warmup_steps})")
        mlp_only = not self.optimiser.is_plain or self.dropout > 0
        if mlp_only and (self.setting != "full" or "quadratic" in self.kinds):
            raise ValueError("optimiser/dropout: only full fine-tuning of MLP kinds takes a "
                             "non-plain optimiser or dropout")
        if self.init == "teacher_head" and (self.setting != "full" or set(self.kinds) - {"deep_mlp"}):
            raise ValueError("init: 'teacher_head' is for full fine-tuning of deep_mlp kinds, whose "
                             "datasets carry a teacher head (got kinds "
                             f"{', '.join(self.kinds)}, setting {self.setting})")
        if self.validation_fraction > 0 and (self.setting != "full"
                                             or set(self.kinds) - {"mlp", "deep_mlp"}):
            raise ValueError("validation_fraction: only full fine-tuning of MLP kinds takes a "
                             "validation split (got kinds "
                             f"{', '.join(self.kinds)}, setting {self.setting})")

    @property
    def stochastic(self) -> bool:
        """Whether the seed changes training (random init, SGD or dropout); deterministic configs
        train seed 0 only."""
        return self.init == "random" or self.batch_size is not None or self.dropout > 0

    @property
    def plain_steps(self) -> bool:
        """Whether every step is ``w - lr * grad`` at one constant lr (the theorems' optimisers)."""
        return self.optimiser.is_plain

    def learning_rate(self, beta_hat: float | None) -> float:
        """The learning rate on a dataset whose smoothness estimate is ``beta_hat`` (unused, and
        may be None, when ``lr_unit="absolute"``)."""
        if self.lr_unit == "absolute":
            return self.lr_scale
        if beta_hat is None or not beta_hat > 0:
            raise ValueError(f"beta_hat: must be > 0 for lr_unit='inverse_beta', got {beta_hat!r}")
        return self.lr_scale / beta_hat

    @property
    def binary_only(self) -> bool:
        """Whether the loss is defined for two classes only (the exponential loss)."""
        return self.loss == "exponential"

    def trains(self, kind: str, n_classes: int) -> bool:
        """Whether this config trains a dataset of this kind and number of classes."""
        return kind in self.kinds and not (self.binary_only and n_classes > 2)

    def checkpoints(self) -> np.ndarray:
        """Log-spaced checkpoint iterations in ``[1, n_steps]``, strictly increasing, ending at T."""
        points = np.geomspace(1, self.n_steps, self.n_checkpoints)
        return np.unique(np.rint(points).astype(np.int64))

    def to_dict(self) -> dict:
        return {**asdict(self), "kinds": list(self.kinds), "optimiser": self.optimiser.to_dict()}


CONFIG_DIR = Path(__file__).parent / "configs"
FILE_KEYS = ("description", "defaults", "config")
REQUIRED = tuple(field.name for field in fields(TrainingConfig) if field.default is MISSING)


def config_file_names() -> list[str]:
    """Names of the config files shipped in ``verify/configs`` (``head``, ``full_mlp``, ...)."""
    return sorted(path.stem for path in CONFIG_DIR.glob("*.toml"))


def load_config_file(name_or_path: str | Path) -> list[TrainingConfig]:
    """The training configs of a shipped config file (by name) or of a ``.toml`` file, in file order.

    A file has an optional ``description``, an optional ``[defaults]`` table (parameters shared by
    its configs) and a non-empty list of ``[[config]]`` tables; a config is ``[defaults]`` updated
    with its own table (an ``optimiser`` table replaces the default one whole), and its parameters
    are :class:`TrainingConfig`'s (``kinds`` a list, ``optimiser`` an inline table of
    :class:`~verify.optimiser_spec.OptimiserSpec`'s fields). TOML has no null: a parameter whose
    value is None (``batch_size``, ``bound_models``, ``bound_left_out``) is left out.

    Raises
    ------
    ValueError
        One line naming the file, the config and the key with its rule: unreadable or malformed
        TOML, an unknown, missing or invalid key, a duplicate name.
    """
    path = Path(name_or_path)
    if not path.is_file():
        if str(name_or_path) not in config_file_names():
            raise ValueError(f"configs: no config file {str(name_or_path)!r}: use one of "
                             f"{', '.join(config_file_names())} or the path of a .toml file")
        path = CONFIG_DIR / f"{name_or_path}.toml"
    try:
        document = tomllib.loads(path.read_text())
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"configs {path}: cannot read: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"configs {path}: malformed TOML: {exc}") from None
    _check_keys(document, FILE_KEYS, f"configs {path}")
    defaults = document.get("defaults", {})
    if not isinstance(defaults, dict):
        raise ValueError(f"configs {path}: key 'defaults' must be a table")
    _check_keys(defaults, tuple(PARAMETER_CONSTRAINTS)[1:], f"configs {path}, [defaults]")
    entries = document.get("config")
    if not isinstance(entries, list) or not entries:
        raise ValueError(f"configs {path}: key 'config' must be a non-empty list of [[config]] tables")
    configs: dict[str, TrainingConfig] = {}
    for number, entry in enumerate(entries, start=1):
        where = f"configs {path}, config {number}"
        if not isinstance(entry, dict):
            raise ValueError(f"{where}: must be a table")
        if isinstance(entry.get("name"), str):
            where += f" ({entry['name']})"
        config = _config(entry, defaults, where)
        if config.name in configs:
            raise ValueError(f"{where}: duplicate name {config.name!r}")
        configs[config.name] = config
    return list(configs.values())


def _config(entry: Mapping[str, Any], defaults: Mapping[str, Any], where: str) -> TrainingConfig:
    _check_keys(entry, tuple(PARAMETER_CONSTRAINTS), where)
    values = {**defaults, **entry}
    missing = [name for name in REQUIRED if name not in values]
    if missing:
        raise ValueError(f"{where}: key {missing[0]!r} is required (in the config or [defaults])")
    if "optimiser" in values:
        if not isinstance(values["optimiser"], dict):
            raise ValueError(f"{where}: key 'optimiser' must be a table of "
                             f"{', '.join(field.name for field in fields(OptimiserSpec))}")
        try:
            values["optimiser"] = OptimiserSpec.from_dict(values["optimiser"])
        except (TypeError, ValueError) as exc:
            message = str(exc)
            raise ValueError(f"{where}: {message}" if message.startswith("optimiser: ")
                             else f"{where}: optimiser.{message}") from None
    try:
        return TrainingConfig(**values)
    except ValueError as exc:
        raise ValueError(f"{where}: {exc}") from None


def _check_keys(table: Mapping[str, Any], allowed: tuple[str, ...], where: str) -> None:
    unknown = sorted(set(table) - set(allowed))
    if unknown:
        raise ValueError(f"{where}: unknown key {unknown[0]!r} (allowed: {', '.join(allowed)})")


def shipped_configs() -> dict[str, TrainingConfig]:
    """Every config of the shipped files, by name: files in name order, each in file order."""
    configs: dict[str, TrainingConfig] = {}
    for file_name in config_file_names():
        for config in load_config_file(file_name):
            if config.name in configs:
                raise ValueError(f"configs {CONFIG_DIR / file_name}.toml: config {config.name!r} is "
                                 f"also defined in another file of {CONFIG_DIR}")
            configs[config.name] = config
    return configs


CONFIGS: dict[str, TrainingConfig] = shipped_configs()


def select_configs(*, settings: Iterable[str] | None = None,
                   names: Iterable[str] | None = None) -> list[TrainingConfig]:
    """The configs a sweep runs: by setting and/or by name or file.

    Parameters
    ----------
    settings : iterable of {"head", "full"}, optional
        Keep configs of these settings (all when None).
    names : iterable of str, optional
        Names of shipped configs (:data:`CONFIGS`) and paths of ``.toml`` config files (every
        config of the file, :func:`load_config_file`); all shipped configs when None. Shipped
        configs come in the registry's order, then the files' in file order.

    Raises
    ------
    ValueError
        On an unknown setting or config name, a config file that does not load, a file's config
        that redefines a shipped (or an earlier file's) config under its name, or when nothing is
        selected.
    """
    settings = None if settings is None else list(settings)
    names = None if names is None else list(names)
    for setting in settings or ():
        if setting not in SETTINGS:
            raise ValueError(f"settings: unknown setting {setting!r}; choose from {', '.join(SETTINGS)}")
    available, chosen_names = dict(CONFIGS), set(CONFIGS) if names is None else set()
    for name in names or ():
        if not name.endswith(".toml"):
            if name not in CONFIGS:
                raise ValueError(f"configs: unknown config {name!r}; choose from {', '.join(CONFIGS)} "
                                 f"or give the path of a .toml config file")
            chosen_names.add(name)
            continue
        for config in load_config_file(name):
            if available.get(config.name, config) != config:
                raise ValueError(f"configs {name}: config {config.name!r} differs from the config of "
                                 f"that name already defined; give it another name")
            available[config.name] = config
            chosen_names.add(config.name)
    chosen = [config for config in available.values() if config.name in chosen_names
              and (settings is None or config.setting in settings)]
    if not chosen:
        raise ValueError(f"configs: no config matches settings={settings} and configs={names}")
    return chosen
