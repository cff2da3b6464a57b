"""Run tasks (dataset × config × stabiliser) in-process, on a local process pool or on Dask, into the store.

Workers only compute; the parent process is the one writer of ``results.sqlite``: as soon as a task
comes back it writes the task's weights file (atomically, ``verify.store.weights``), then the task's
rows, dataset card, ``done`` status and the weights' sha256 in one transaction. So a sweep killed at
any moment loses at most the tasks in flight, and a re-run (which skips
tasks marked done and retries failed ones) ends with the same rows as an uninterrupted sweep.
"""
from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from tqdm import tqdm

from verify.run.task import Task
from verify.store import RESULTS_FILE, ResultStore
from verify.store.weights import write_weights
from verify.sweep.choice import choose_executor
from verify.sweep.executors import (
    TaskRunner,
    _run_in_process,
    _run_on_dask,
    _run_on_pool,
    each_task,
    pool_is_warm,
)
from verify.sweep.plan import check_sweep, expected_cost, group_tasks
from verify.sweep.sources import DatasetSource


@dataclass
class SweepSummary:
    """What a sweep did: task counts, wall time, and where it ran (``executor``, in words)."""

    total: int
    skipped: int
    done: int
    failed: int
    seconds: float
    results: Path
    executor: str = ""


def run_sweep(tasks: Sequence[Task], source: DatasetSource, out: str | Path, *, n_seeds: int,
              workers: int | None = None, client: Any = None, runner: TaskRunner | None = None,
              progress: bool = True,
              expected_seconds: Callable[[Sequence[Task]], float] | None = None) -> SweepSummary:
    """Run every task not yet done into ``out/results.sqlite``.

    Parameters
    ----------
    tasks : sequence of Task
        From :func:`build_tasks`.
    source : DatasetSource
        Where workers get each task's dataset.
    out : str or Path
        Output folder (created).
    n_seeds : int
        The sweep's ``--seeds`` (recorded; a re-run must use the same).
    workers : int or None
        The most local processes; 1 runs in this process; None uses every core. Ignored with
        ``client``.
    client : distributed.Client, optional
        Run on this Dask cluster instead of locally.
    runner : callable, optional
        ``runner(task, dataset) -> TaskOutput``; default :func:`verify.run.runner.run_task`.
    progress : bool
        Show a tqdm bar with ETA on stderr.
    expected_seconds : callable, optional
        ``expected_seconds(group) -> CPU seconds`` predicted for a group of tasks that train
        together (:func:`verify.run.cost.sweep_predictor`); with it, pending work predicted to finish
        sooner here than on a pool, start-up included, runs in this process
        (:func:`verify.sweep.choice.choose_executor`). Without it a pool runs whenever ``workers``
        and the groups allow one.

    Returns
    -------
    SweepSummary

    Raises
    ------
    KeyboardInterrupt
        After writing every task that had arrived; the store is consistent and resumable.
    """
    training_key: Callable[[Task], tuple | None] | None
    if runner is None:
        # lazy: torch loads when a task runs, not with the parser
        from verify.run.runner import run_tasks as group_runner
        from verify.run.runner import training_key
    else:
        group_runner, training_key = partial(each_task, runner), None
    workers = (os.cpu_count() or 1) if workers is None else workers
    if workers < 1:
        raise ValueError(f"workers: must be >= 1, got {workers}")
    start = time.perf_counter()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    with ResultStore(out / RESULTS_FILE) as store:
        store.set_meta(check_sweep(store, tasks, n_seeds))
        store.write_datasets(source.cards())
        store.remove_unreferenced_weights()
        done = {key for key, status in store.task_status().items() if status == "done"}
        # Longest first, so that the pool does not end waiting on one slow task (a stable sort keeps
        # a dataset's tasks together for the workers' dataset cache); the order never changes a
        # result (seeds and run ids come from coordinates).
        pending = sorted((task for task in tasks if task.key not in done), key=expected_cost, reverse=True)
        # Tasks that can share one trainer call (a learning-rate sweep) run together.
        groups = group_tasks(pending, training_key)
        if client is not None:  # the user asked for the cluster: never second-guessed
            executor, label = "Dask cluster", "Dask"
            outcomes = _run_on_dask(groups, source, group_runner, client)
        else:
            choice = choose_executor(None if expected_seconds is None else
                                     [expected_seconds(group) for group in groups],
                                     workers, n_groups=len(groups), pool_warm=pool_is_warm())
            executor, label = choice.describe(), choice.label
            outcomes = (_run_in_process(groups, source, group_runner) if choice.in_process else
                        _run_on_pool(groups, source, group_runner, choice.workers))
        counts = {"done": 0, "failed": 0}
        bar = tqdm(total=len(pending), unit="task", file=sys.stderr, disable=not progress,
                   dynamic_ncols=True, desc=f"verify, {label}")
        try:
            for outcome in outcomes:
                _write(store, outcome)
                counts[outcome["status"]] += 1
                bar.set_postfix(failed=counts["failed"], refresh=False)
                bar.update()
        finally:
            outcomes.close()
            bar.close()
    return SweepSummary(total=len(tasks), skipped=len(tasks) - len(pending), done=counts["done"],
                        failed=counts["failed"], seconds=time.perf_counter() - start,
                        results=out / RESULTS_FILE, executor=executor)


def _write(store: ResultStore, outcome: dict[str, Any]) -> None:
    if outcome["status"] == "done":
        sha = None if outcome["weights"] is None else write_weights(store.weights_folder, *outcome["weights"])
        store.write_done(outcome["task"], outcome["runs"], seconds=outcome["seconds"],
                         card=outcome["card"], weights=sha)
    else:
        store.write_failed(outcome["task"], error=outcome["error"], seconds=outcome["seconds"])
