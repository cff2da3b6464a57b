"""The bounds step: evaluate bounds on the stored weights of a results folder, without training.

``run_bounds(DIR)`` finds every done task with stored weights, and for each bound of its setting
that has not been evaluated on it yet (or every selected one, with ``force``) runs one job: read the
task's weights file, rebuild each left-out RunContext from the dataset, evaluate, and send the rows
back. The parent writes each task's bound rows and their ``bound_evaluations`` records in one
transaction, so the step is resumable like a sweep, and runs in-process, on a local pool or on Dask
through the sweep's executors.
"""
from __future__ import annotations

import os
import sys
import time
import traceback
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tqdm import tqdm

from theory.bounds import BOUNDS
from verify.bounds.stored import task_bound_rows
from verify.run.output import TaskWeights
from verify.store import RUN_COLUMNS, ResultStore, results_path
from verify.store.checks import check_path, connect_readonly
from verify.store.weights import read_weights
from verify.bounds.cost import bounded_rows, job_seconds, job_trainer
from verify.sweep.choice import choose_executor
from verify.sweep.executors import (
    _run_in_process,
    _run_on_dask,
    _run_on_pool,
    load_cached,
    pool_is_warm,
)
from verify.sweep.sources import CardSource, DatasetSource

if TYPE_CHECKING:
    from theory.bounds.base import Bound


@dataclass(frozen=True)
class BoundJob:
    """One task's pending bounds: where its weights and runs are, and which bounds to evaluate."""

    task_key: str
    dataset_id: str
    results: Path
    weights_folder: Path
    sha256: str
    bounds: tuple[Any, ...]


@dataclass
class BoundsSummary:
    """What a bounds step did: tasks with pending bounds, how they ended, rows written, wall time,
    and where it ran (``executor``, in words)."""

    tasks: int
    done: int
    failed: int
    rows: int
    seconds: float
    executor: str = ""


def select_bounds(names: Sequence[str] | None) -> list[Bound]:
    """The registered bounds named (all of ``theory.bounds.BOUNDS`` for None), in registry order."""
    if names is None:
        return list(BOUNDS.values())
    unknown = [name for name in names if name not in BOUNDS]
    if unknown:
        raise ValueError(f"bound: unknown bound {unknown[0]!r}; choose from {', '.join(BOUNDS)}")
    if not names:
        raise ValueError("bound: give at least one bound name")
    return [bound for name, bound in BOUNDS.items() if name in set(names)]


def _measured(job: BoundJob) -> dict[int, dict[str, Any]]:
    """The task's left-out rows, with the columns its bounds measure (read-only, no check: the
    parent checked the file)."""
    columns = sorted({bound.measure for bound in job.bounds})
    unknown = [name for name in columns if name not in RUN_COLUMNS]
    if unknown:
        raise ValueError(f"bound: measure {unknown[0]!r} is not a column of runs")
    connection = connect_readonly(job.results)
    try:
        rows = connection.execute(
            f"SELECT run_id, {', '.join(columns)} FROM runs WHERE task_key = ? AND left_out IS NOT NULL",
            (job.task_key,)).fetchall()
    finally:
        connection.close()
    return {row[0]: dict(zip(columns, row[1:], strict=True)) for row in rows}


def execute_bounds(job: BoundJob, source: DatasetSource, runner: Any = task_bound_rows) -> dict[str, Any]:
    """Evaluate one job where it lands; a crash is an outcome (``failed`` with its traceback)."""
    start = time.perf_counter()
    try:
        stored = read_weights(job.weights_folder, job.sha256)
        weights = TaskWeights.from_stored(stored.arrays, stored.info)
        rows = runner(weights, load_cached(source, job.dataset_id), job.bounds, _measured(job))
        return {"status": "done", "task_key": job.task_key, "rows": rows,
                "seconds": time.perf_counter() - start}
    except Exception:  # recorded for the bounds it concerns; the next bounds step retries them
        return {"status": "failed", "task_key": job.task_key,
                "bounds": [bound.name for bound in job.bounds], "error": traceback.format_exc(),
                "seconds": time.perf_counter() - start}


def execute_bound_jobs(jobs: Sequence[BoundJob], source: DatasetSource,
                       runner: Any = task_bound_rows) -> list[dict[str, Any]]:
    """:func:`execute_bounds` on each job of a group (the sweep's executors run groups)."""
    return [execute_bounds(job, source, runner) for job in jobs]


def plan_jobs(store: ResultStore, bounds: Sequence[Bound], *, force: bool = False,
              task_keys: Collection[str] | None = None) -> list[BoundJob]:
    """One job per done task (of ``task_keys``, when given) with stored weights and a bound of its
    setting left to evaluate."""
    configs = store.configs()
    evaluated = store.evaluations()
    jobs = []
    for task in store.tasks(status="done"):
        config = configs.get(task["config"])
        if task["weights"] is None or config is None:
            continue
        if task_keys is not None and task["task_key"] not in task_keys:
            continue
        pending = tuple(bound for bound in bounds if bound.setting == config["setting"]
                        and (force or evaluated.get((task["task_key"], bound.name)) != "done"))
        if pending:
            jobs.append(BoundJob(task["task_key"], task["dataset_id"], store.path.resolve(),
                                 store.weights_folder.resolve(), task["weights"], pending))
    # MLP tasks (Lanczos) first so the pool does not end on one of them; a dataset's jobs stay
    # together for the workers' dataset cache. The order never changes a row.
    return sorted(jobs, key=lambda job: ("mlp" not in configs[job.task_key.split("|")[1]]["kinds"],
                                         job.dataset_id, job.task_key))


def run_bounds(folder: str | Path, *, bounds: Sequence[str] | None = None,
               source: DatasetSource | None = None, force: bool = False, workers: int | None = None,
               client: Any = None, progress: bool = True,
               task_keys: Collection[str] | None = None) -> BoundsSummary:
    """Evaluate ``bounds`` (default: every registered bound) on the stored runs of ``folder``.

    Parameters
    ----------
    folder : str or Path
        A results folder written by ``ftstab verify`` (or its ``results.sqlite``).
    bounds : sequence of str, optional
        Names in ``theory.bounds.BOUNDS``.
    source : DatasetSource, optional
        Where the datasets come from; default: regenerated from the cards the file recorded.
    force : bool
        Re-evaluate bounds already evaluated (their rows are replaced).
    workers : int or None
        The most local processes; 1 runs in this process; None uses every core. Jobs predicted to
        finish sooner in this process than on a pool, start-up included (:mod:`verify.bounds.cost`,
        :func:`verify.sweep.choice.choose_executor`), run here. Ignored with ``client``.
    client : distributed.Client, optional
        Run on this Dask cluster instead (its workers must see ``folder``).
    progress : bool
        Show a tqdm bar on stderr.
    task_keys : collection of str, optional
        Only these tasks (a sweep's own: the folder may hold other sweeps' tasks whose datasets
        ``source`` does not have); default: every done task.

    Returns
    -------
    BoundsSummary
    """
    selected = select_bounds(bounds)
    workers = (os.cpu_count() or 1) if workers is None else workers
    if workers < 1:
        raise ValueError(f"workers: must be >= 1, got {workers}")
    path = results_path(folder)
    if not check_path(path):
        raise ValueError(f"path: no results file at {path} (run `ftstab verify --out DIR` first)")
    start = time.perf_counter()
    with ResultStore(path) as store:
        source = CardSource(store.cards()) if source is None else source
        jobs = plan_jobs(store, selected, force=force, task_keys=task_keys)
        groups = [[job] for job in jobs]
        if client is not None:  # the user asked for the cluster: never second-guessed
            executor, label = "Dask cluster", "Dask"
            outcomes = _run_on_dask(groups, source, task_bound_rows, client, execute=execute_bound_jobs)
        else:
            choice = choose_executor(_predicted_seconds(store, jobs) if len(jobs) > 1 and workers > 1
                                     else None, workers, n_groups=len(jobs), pool_warm=pool_is_warm())
            executor, label = choice.describe(), choice.label
            outcomes = (_run_in_process(groups, source, task_bound_rows, execute=execute_bound_jobs)
                        if choice.in_process else
                        _run_on_pool(groups, source, task_bound_rows, choice.workers,
                                     execute=execute_bound_jobs))
        counts = {"done": 0, "failed": 0, "rows": 0}
        bar = tqdm(total=len(jobs), unit="task", file=sys.stderr, disable=not progress,
                   dynamic_ncols=True, desc=f"bounds, {label}")
        try:
            for outcome in outcomes:
                if outcome["status"] == "done":
                    store.write_bounds(outcome["task_key"], outcome["rows"], seconds=outcome["seconds"])
                    counts["rows"] += sum(len(rows) for rows in outcome["rows"].values())
                else:
                    store.write_bounds(outcome["task_key"], {}, seconds=outcome["seconds"],
                                       failed=dict.fromkeys(outcome["bounds"], outcome["error"]))
                counts[outcome["status"]] += 1
                bar.set_postfix(failed=counts["failed"], refresh=False)
                bar.update()
        finally:
            outcomes.close()
            bar.close()
    return BoundsSummary(tasks=len(jobs), done=counts["done"], failed=counts["failed"],
                         rows=counts["rows"], seconds=time.perf_counter() - start, executor=executor)


def _predicted_seconds(store: ResultStore, jobs: Sequence[BoundJob]) -> list[float]:
    """Each job's predicted CPU seconds (:func:`verify.bounds.cost.job_seconds`)."""
    rows, configs, cards = bounded_rows(store), store.configs(), store.cards()
    return [job_seconds(job_trainer(job, configs, cards), rows.get(job.task_key, 0), len(job.bounds))
            for job in jobs]

