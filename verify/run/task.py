"""A sweep's unit of work: one dataset × training config × stabiliser, all its seeds and left-out sets.

Running a task (``verify.run.runner.run_task``) trains every model of the task in one batched
trainer call and turns the trace into result rows. Every random number comes from
``verify.seeding.run_seed`` applied to the task's coordinates, so a task's results never depend on
which worker runs it, or when.
"""
from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from verify.configs import TrainingConfig
from verify.effects import NO_EFFECTS, Effects, Heads
from verify.seeding import run_seed

NO_STABILISER = "none"


def canonical_params(params: dict[str, Any] | None) -> str:
    """The JSON text that names a stabiliser's parameters everywhere (keys sorted, compact)."""
    return json.dumps(params or {}, sort_keys=True, separators=(",", ":"))


# A run id is the task's hash in the high TASK_BITS and the row's rank in the task in the low
# ROW_BITS: a task's rows are adjacent in the runs table, so storing a task writes a few pages at one
# place of the file instead of one page per row (a hash per row scatters them: about 30x the bytes).
TASK_BITS = 40
ROW_BITS = 23


def run_ids(task_key: str, rows: Sequence[Mapping[str, Any]]) -> list[int]:
    """The primary keys of a task's runs, a pure function of the task and its rows' coordinates.

    Parameters
    ----------
    task_key : str
        The task (``Task.key``).
    rows : sequence of mapping
        Every run of the task, each with ``seed``, ``left_out`` (None for the full set) and
        ``iteration``, in any order.

    Returns
    -------
    list of int
        One id in ``[0, 2**63)`` per row, in the order of ``rows``: the task's 40-bit hash times
        ``2**23`` plus the row's rank in (seed, left_out with the full set first, iteration) order.
        The same whoever computes it, for every worker count and order.

    Raises
    ------
    ValueError
        Two rows with the same coordinates, or more than ``2**23`` rows.
    """
    if len(rows) > 1 << ROW_BITS:
        raise ValueError(f"rows: a task holds at most {1 << ROW_BITS} runs, got {len(rows)}")
    coordinates = [(int(row["seed"]), -1 if row["left_out"] is None else int(row["left_out"]),
                    int(row["iteration"])) for row in rows]
    rank = {point: index for index, point in enumerate(sorted(set(coordinates)))}
    if len(rank) != len(coordinates):
        raise ValueError(f"rows: two runs of {task_key} have the same (seed, left_out, iteration)")
    base = task_id_base(task_key) << ROW_BITS
    return [base + rank[point] for point in coordinates]


def task_id_base(task_key: str) -> int:
    """The task's part of its run ids: a TASK_BITS-bit hash of the key (two tasks sharing it would
    share ids; the sweep refuses such a pair before it runs, ``verify.sweep.plan.check_sweep``)."""
    return run_seed(task_key) >> (63 - TASK_BITS)


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


def make_stabiliser(task: Task) -> Any:
    """The task's stabiliser object, or None for plain training."""
    if task.stabiliser == NO_STABILISER:
        return None
    from verify.stabilisers import (
        STABILISERS,  # lazy: planning a sweep (and the CLI parser) stays torch-free
    )
    if task.stabiliser not in STABILISERS:
        raise ValueError(f"stabilisers: unknown stabiliser {task.stabiliser!r}; "
                         f"choose from {', '.join(sorted(STABILISERS))}")
    return STABILISERS[task.stabiliser].from_params(**json.loads(task.stabiliser_params))


def task_effects(config: TrainingConfig, stabiliser: Any) -> Effects:
    """What the task's training changes: the stabiliser's record (:class:`verify.effects.Effects`),
    with the config's heads where the stabiliser leaves the heads alone."""
    effects = NO_EFFECTS if stabiliser is None else stabiliser.effects()
    if "heads" in effects.changes() or config.n_heads == 1:
        return effects
    return replace(effects, heads=Heads(config.n_heads, effects.heads.reduction))


def head_init(config: TrainingConfig, stabiliser: Any) -> str:
    """The head initialisation a head task trains with.

    Several heads trained at once (MHLoss) must start apart: zero heads under full-batch GD stay
    identical, so their mean would be a single head. A zero init therefore becomes the trainer's
    random init (from the model seeds) when the task trains more than one head.
    """
    n_heads = task_effects(config, stabiliser).heads.n_heads
    return "random" if config.init == "zero" and n_heads > 1 else config.init


def task_is_stochastic(config: TrainingConfig, stabiliser_name: str, stabiliser_params: str) -> bool:
    """Whether the seed changes a task's training: the config's randomness, or random heads forced
    by the stabiliser (:func:`head_init`). Names outside the registry leave the config's answer."""
    from verify.stabilisers import (
        STABILISERS,  # lazy: planning a sweep (and the CLI parser) stays torch-free
    )
    if config.stochastic or config.setting != "head" or stabiliser_name not in STABILISERS:
        return config.stochastic
    stabiliser = STABILISERS[stabiliser_name].from_params(**json.loads(stabiliser_params))
    return head_init(config, stabiliser) == "random"

def trainer_for(config: TrainingConfig, kind: str) -> str:
    """Which batched trainer a config uses on a dataset kind: "head", "quadratic" or "mlp"."""
    if kind not in config.kinds:
        raise ValueError(f"config: {config.name} does not train datasets of kind {kind!r}")
    return trainer_of(config.setting, kind)


def trainer_of(setting: str, kind: str) -> str:
    """The batched trainer of a ``setting`` ("head" or "full") on a dataset ``kind``."""
    if setting == "head":
        return "head"
    return "quadratic" if kind == "quadratic" else "mlp"

