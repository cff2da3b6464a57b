"""Turn ``ftstab real`` options into a source, a config, tasks and a runner, validating everything
before anything runs."""
from __future__ import annotations

import argparse
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from verify.real.configs import RealConfig
from verify.real.extra import require
from verify.real.kinds import REAL_KINDS, real_kind
from verify.real.runner import RealRunner
from verify.real.source import RealSource, requests
from verify.run.task import Task, canonical_params
from verify.sweep.cli import parse_stabilisers


@dataclass(frozen=True)
class RealPlan:
    source: RealSource
    config: RealConfig
    tasks: list[Task]
    runner: RealRunner


def _shots(text: str) -> tuple[int, ...]:
    try:
        shots = tuple(dict.fromkeys(int(item) for item in text.split(",") if item.strip()))
    except ValueError:
        shots = ()
    if not shots or min(shots) < 1:
        raise ValueError(f"shots: give comma-separated integers >= 1, got {text!r}")
    return shots


def _positive(name: str, value: int | None, *, low: int = 1) -> None:
    if value is not None and value < low:
        raise ValueError(f"{name}: must be >= {low}, got {value}")


def config_name(task: str, config: RealConfig, max_length: int | None) -> str:
    """A name that changes with every option that changes training (a results file never holds two
    definitions under one name)."""
    batch = "gd" if config.batch_size is None else f"sgd{config.batch_size}"
    step = f"lr{config.lr:g}" if config.lr is not None else f"lrscale{config.lr_scale:g}"
    left_out = "all" if config.max_left_out is None else config.max_left_out
    tokens = "" if max_length is None else f"_L{max_length}"
    return f"real_{task.replace('-', '_')}_{batch}_T{config.n_steps}_{step}_loo{left_out}{tokens}"


def select_stabilisers(text: str, setting: str, kind: str) -> list[tuple[str, dict[str, Any]]]:
    """Parse ``--stabilisers`` as ``ftstab verify`` does (``NAME`` or ``NAME:key=value[:key=value]``,
    ``none``, ``all``), with each name's class for this kind (its record's ``stabiliser_classes``);
    ``all`` is plain training plus every stabiliser that applies to the setting, at its defaults."""
    trainer = "head" if setting == "head" else "mlp"
    return parse_stabilisers(text, real_kind(kind).stabiliser_classes(),
                             applies=lambda cls: trainer in cls.applies_to, setting=f"{setting} tuning")


def plan_real_tasks(args: argparse.Namespace, defaults) -> RealPlan:
    """Validate the options of ``ftstab real`` and build what :func:`verify.sweep.runner.run_sweep` needs.

    Raises
    ------
    ValueError
        On a bad option (the message names it).
    MissingExtraError
        When a module of the [real] extra that the task's kind needs is not installed.
    """
    kind = real_kind(defaults.kind)
    for module in kind.extras:
        require(module)
    for name in ("seeds", "subsets", "workers", "steps", "test_per_class"):
        _positive(name.replace("_", "-"), getattr(args, name))
    _positive("batch-size", args.batch_size, low=0)
    _positive("left-out", args.left_out, low=0)
    if args.lr is not None and not args.lr > 0:
        raise ValueError(f"lr: must be > 0, got {args.lr}")
    if args.max_length is not None and (kind.max_length is None or not 2 <= args.max_length <= 512):
        readers = ", ".join(name for name, other in REAL_KINDS.items() if other.max_length is not None)
        raise ValueError(f"max-length: only for tasks of kind {readers}, in [2, 512]")
    shots = _shots(args.shots or defaults.shots)
    lr = defaults.lr if args.lr is None else args.lr
    batch = defaults.batch_size if args.batch_size is None else (args.batch_size or None)
    config = RealConfig(
        name="", setting=defaults.setting, kinds=(defaults.kind,), n_steps=args.steps or defaults.steps,
        lr=lr if defaults.setting == "full" else None, lr_scale=lr if defaults.setting == "head" else None,
        batch_size=batch, max_left_out=defaults.left_out if args.left_out is None else args.left_out,
        n_checkpoints=defaults.checkpoints, init="random" if defaults.setting == "head" else "pretrained")
    max_length = None if kind.max_length is None else args.max_length or kind.max_length[defaults.setting]
    config = replace(config, name=config_name(args.task, config, max_length))
    cache = args.cache or Path(args.out) / "cache"
    source = RealSource(requests(kind.default_task, shots, args.subsets,
                                 args.test_per_class or defaults.test_per_class), cache)
    stabilisers = select_stabilisers(args.stabilisers, defaults.setting, defaults.kind)
    source.validate()
    seeds = tuple(range(args.seeds))
    tasks = [Task(dataset_id, config, name, canonical_params(params), seeds)
             for dataset_id, _ in source.entries() for name, params in stabilisers]
    return RealPlan(source=source, config=config, tasks=tasks,
                    runner=RealRunner(cache_dir=cache, max_length=max_length or 128))
