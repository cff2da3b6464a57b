"""Which tasks a sweep runs, and the sweep facts a results file must agree with."""
from __future__ import annotations

import json
import numbers
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from typing import Any

from synth.validation import Interval, check_param
from verify.configs import TrainingConfig
from verify.run.task import NO_STABILISER, TASK_BITS, Task, canonical_params, task_id_base, task_is_stochastic
from verify.store import Results


def build_tasks(entries: Sequence[tuple[str, str, int]], configs: Sequence[TrainingConfig],
                stabilisers: Sequence[tuple[str, dict[str, Any]]], *, n_seeds: int,
                applies: Callable[[str, TrainingConfig, str], bool] | None = None) -> list[Task]:
    """Cross datasets × configs × stabilisers into tasks, each carrying its seeds.

    Parameters
    ----------
    entries : sequence of (dataset_id, kind, n_classes)
    configs : sequence of TrainingConfig
        A config trains the datasets it says it trains (``TrainingConfig.trains``).
    stabilisers : sequence of (name, params)
        ``("none", {})`` is plain training.
    n_seeds : int
        Seeds per stochastic task; deterministic ones get seed 0 only
        (:func:`verify.run.task.task_is_stochastic`: MHLoss makes a zero-init head config random).
    applies : callable, optional
        ``applies(stabiliser_name, config, kind) -> bool``; by default a stabiliser applies to every
        config with ``with_stabilisers``.
    """
    check_param("n_seeds", n_seeds, [Interval(numbers.Integral, 1, None)])
    tasks = []
    for dataset_id, kind, n_classes in entries:
        for config in configs:
            if not config.trains(kind, n_classes):
                continue
            for name, params in stabilisers:
                if name != NO_STABILISER and not (
                        config.with_stabilisers and (applies is None or applies(name, config, kind))):
                    continue
                canonical = canonical_params(params)
                seeds = tuple(range(n_seeds)) if task_is_stochastic(config, name, canonical) else (0,)
                tasks.append(Task(dataset_id, config, name, canonical, seeds))
    return tasks


def group_tasks(tasks: Sequence[Task], key: Callable[[Task], Any] | None) -> list[list[Task]]:
    """The tasks in groups that run together: equal ``key(task)`` (not None) share a group, placed
    where its first task was; without ``key`` every task is its own group."""
    groups: list[list[Task]] = []
    by_key: dict[Any, list[Task]] = {}
    for task in tasks:
        shared = None if key is None else key(task)
        if shared is None:
            groups.append([task])
        elif shared in by_key:
            by_key[shared].append(task)
        else:
            by_key[shared] = [task]
            groups.append(by_key[shared])
    return groups


def expected_cost(task: Task) -> int:
    """A rough rank of a task's run time: MLP fine-tuning (2), then heads (1), then quadratic tasks."""
    config = task.config
    return 2 if "mlp" in config.kinds else 1 if config.setting == "head" else 0


def check_sweep(store: Results, tasks: Sequence[Task], n_seeds: int) -> dict[str, str]:
    """The sweep facts to record, or ValueError if they contradict what ``store`` already holds.

    A results file describes one sweep: one seed count, and each config name always meaning the
    same training, or re-runs would mix old and new results under one name.
    """
    meta = store.meta()
    if "n_seeds" in meta and int(meta["n_seeds"]) != n_seeds:
        raise ValueError(f"n_seeds: {store.path} holds a sweep of {meta['n_seeds']} seeds (got "
                         f"{n_seeds}); use the same value or a new output folder")
    known = json.loads(meta.get("configs", "{}"))
    for config in {task.config.name: task.config for task in tasks}.values():
        definition = config.to_dict()
        if known.setdefault(config.name, definition) != definition:
            raise ValueError(f"configs: {store.path} holds config {config.name!r} with another "
                             f"definition {known[config.name]}; use a new output folder")
    stored = [row[0] for row in store.connection.execute("SELECT task_key FROM tasks")]
    owner: dict[int, str] = {}
    for key in sorted({*stored, *(task.key for task in tasks)}):
        other = owner.setdefault(task_id_base(key), key)
        if other != key:
            raise ValueError(f"tasks: {other} and {key} have the same run-id prefix (a "
                             f"{TASK_BITS}-bit hash of the task key); run one of them into another "
                             "output folder")
    return {"n_seeds": str(n_seeds), "configs": json.dumps(known, sort_keys=True)}


def with_max_left_out(configs: Iterable[TrainingConfig], max_left_out: int | None) -> list[TrainingConfig]:
    """The configs with ``max_left_out`` overridden (``--max-left-out N``: at most N left-out sets
    per seed, every sample where n <= N, a stratified sample of N otherwise), or unchanged for None.

    A config that leaves nothing out (``max_left_out = exact_left_out_up_to = 0``: it measures the
    seed-to-seed spread only) keeps none: the budget is a leave-one-out precision, not a reason to
    train N more models per seed where no left-out set is measured."""
    if max_left_out is None:
        return list(configs)
    check_param("max_left_out", max_left_out, [Interval(numbers.Integral, 0, None)])
    return [replace(config, max_left_out=max_left_out, exact_left_out_up_to=0)
            if config.max_left_out or config.exact_left_out_up_to else config for config in configs]
