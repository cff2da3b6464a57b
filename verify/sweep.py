"""Run tasks (dataset × config × stabiliser) in-process, on a local process pool or on Dask, into the store.

Workers only compute; the parent process is the one writer of ``results.sqlite``, and it writes each
task's rows, bounds, dataset card and ``done`` status in one transaction as soon as the task comes
back. So a sweep killed at any moment loses at most the tasks in flight, and a re-run (which skips
tasks marked done and retries failed ones) ends with the same rows as an uninterrupted sweep.
"""
from __future__ import annotations

import concurrent.futures
import json
import multiprocessing
import os
import signal
import sys
import time
import traceback
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol

from tqdm import tqdm

from verify.configs import TrainingConfig
from verify.seeding import run_seed
from verify.store import RESULTS_FILE, ResultStore
from verify.tasks import NO_STABILISER, Task, TaskOutput, canonical_params, task_is_stochastic

TaskRunner = Callable[[Task, Any], TaskOutput]


class DatasetSource(Protocol):
    """Where a sweep's datasets come from; must pickle (it travels to every worker)."""

    def entries(self) -> list[tuple[str, str, int]]:
        """``(dataset_id, kind, n_classes)`` of every dataset (0 classes: regression), stable order."""

    def load(self, dataset_id: str) -> Any:
        """The ``synth.Dataset`` with that id."""

    def cards(self) -> list[dict[str, Any]]:
        """Cards known without generating anything (may be empty)."""


@dataclass(frozen=True)
class FolderSource:
    """Datasets written by ``ftstab synth --out FOLDER`` (``FOLDER/index.json``, ``<id>.npz/.json``)."""

    folder: Path
    ids: tuple[str, ...]

    def entries(self) -> list[tuple[str, str, int]]:
        index = {entry["id"]: entry for entry in json.loads((self.folder / "index.json").read_text())}
        return [(dataset_id, index[dataset_id]["kind"], int(index[dataset_id]["params"].get("n_classes", 0)))
                for dataset_id in self.ids]

    def load(self, dataset_id: str) -> Any:
        from synth.io import load_dataset
        return load_dataset(dataset_id, self.folder)

    def cards(self) -> list[dict[str, Any]]:
        return [json.loads((self.folder / f"{dataset_id}.json").read_text()) for dataset_id in self.ids]


@dataclass(frozen=True)
class GridSource:
    """Datasets generated in memory from a grid's specs (each worker generates what it trains)."""

    specs: tuple[Any, ...]

    def entries(self) -> list[tuple[str, str, int]]:
        from synth.dataset import bind_params
        from synth.grids import GENERATORS
        return [(spec.id, spec.kind,
                 int(bind_params(GENERATORS[spec.generator].function, spec.params).get("n_classes", 0)))
                for spec in self.specs]

    def load(self, dataset_id: str) -> Any:
        return next(spec for spec in self.specs if spec.id == dataset_id).generate()

    def cards(self) -> list[dict[str, Any]]:
        return []


@dataclass
class SweepSummary:
    """What a sweep did: task counts and wall time."""

    total: int
    skipped: int
    done: int
    failed: int
    seconds: float
    results: Path


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
        (:func:`verify.tasks.task_is_stochastic`: MHLoss makes a zero-init head config random).
    applies : callable, optional
        ``applies(stabiliser_name, config, kind) -> bool``; by default a stabiliser applies to every
        config with ``with_stabilisers``.
    """
    if n_seeds < 1:
        raise ValueError(f"seeds: must be >= 1, got {n_seeds}")
    tasks = []
    for dataset_id, kind, n_classes in entries:
        for config in configs:
            if not config.trains(kind, n_classes):
                continue
            for name, params in stabilisers:
                if name != NO_STABILISER and not (
                        config.with_stabilisers and (applies is None or applies(name, config, kind))):
                    continue
                params = canonical_params(params)
                seeds = tuple(range(n_seeds)) if task_is_stochastic(config, name, params) else (0,)
                tasks.append(Task(dataset_id, config, name, params, seeds))
    return tasks


def expected_cost(task: Task) -> int:
    """A rough rank of a task's run time: MLP fine-tuning (2), then heads (1), then quadratic tasks."""
    config = task.config
    return 2 if "mlp" in config.kinds else 1 if config.setting == "head" else 0


def run_id(task_key: str, row: dict[str, Any]) -> int:
    """A run's primary key: a pure function of its coordinates, the same whoever computes it."""
    return run_seed(task_key, row["seed"], row["left_out"], row["iteration"])


def _card_columns(card: dict[str, Any]) -> dict[str, Any]:
    params = card.get("params", {})
    support = card.get("support_indices")
    return {"kind": card["kind"], "n_samples": card.get("n_samples"), "n_features": card.get("n_features"),
            "n_classes": card.get("n_classes"), "margin": card.get("margin"), "radius": card.get("radius"),
            "label_noise": card.get("label_noise", params.get("label_noise")),
            "distance": card.get("distance"), "n_support": None if support is None else len(support)}


def _task_columns(task: Task) -> dict[str, Any]:
    config = task.config
    return {"task_key": task.key, "dataset_id": task.dataset_id, "setting": config.setting,
            "config": config.name, "loss": config.loss, "init": config.init, "lr_scale": config.lr_scale,
            "n_steps": config.n_steps, "batch_size": config.batch_size, "n_heads": config.n_heads,
            "stabiliser": task.stabiliser, "stabiliser_params": task.stabiliser_params}


_DATASETS: OrderedDict[str, Any] = OrderedDict()
_DATASETS_KEPT = 2


def _load(source: DatasetSource, dataset_id: str) -> Any:
    """Per-process cache of the last datasets loaded (tasks of one dataset are submitted together).

    Keyed by id alone: an id is a hash of the generator and its parameters, so it names the same
    data whichever source produced it.
    """
    if dataset_id not in _DATASETS:
        _DATASETS[dataset_id] = source.load(dataset_id)
        while len(_DATASETS) > _DATASETS_KEPT:
            _DATASETS.popitem(last=False)
    _DATASETS.move_to_end(dataset_id)
    return _DATASETS[dataset_id]


def limit_threads() -> None:
    """One compute thread per worker process (torch and the BLAS behind numpy); the pool supplies
    the parallelism. Torch reads the variables when a task first imports it."""
    from threadpoolctl import threadpool_limits
    for variable in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[variable] = "1"
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(1)
    threadpool_limits(1)


def execute(task: Task, source: DatasetSource, runner: TaskRunner) -> dict[str, Any]:
    """Run one task where it lands (worker or parent) and package the outcome for the writer.

    Never raises for a failing task: the outcome is ``status="failed"`` with the traceback, so one
    broken task cannot stop a sweep or be mistaken for results.
    """
    start = time.perf_counter()
    try:
        dataset = _load(source, task.dataset_id)
        output = runner(task, dataset)
        common = {**_card_columns(dataset.card), **_task_columns(task)}
        runs = [{**common, **row} for row in output.runs]
        ids = [run_id(task.key, row) for row in runs]
        for row, rid in zip(runs, ids, strict=True):
            row["run_id"] = rid
        bounds = [{**{k: v for k, v in bound.items() if k != "row"}, "run_id": ids[bound["row"]]}
                  for bound in output.bounds]
        return {"status": "done", "task": task.record(), "runs": runs, "bounds": bounds,
                "card": dataset.card, "seconds": time.perf_counter() - start}
    except Exception:  # a task's failure is data for the store, not a reason to stop the sweep
        return {"status": "failed", "task": task.record(), "error": traceback.format_exc(),
                "seconds": time.perf_counter() - start}


def _init_pool_worker() -> None:
    """Pool workers leave Ctrl-C to the parent, which writes what has arrived and ends them."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    limit_threads()


def _execute_in_worker(task: Task, source: DatasetSource, runner: TaskRunner) -> dict[str, Any]:
    limit_threads()
    return execute(task, source, runner)


def _run_in_process(tasks: Sequence[Task], source: DatasetSource, runner: TaskRunner) -> Iterator[dict]:
    import torch
    from threadpoolctl import threadpool_limits
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with threadpool_limits(1):
            for task in tasks:
                yield execute(task, source, runner)
    finally:
        torch.set_num_threads(previous)


def _run_on_pool(tasks: Sequence[Task], source: DatasetSource, runner: TaskRunner,
                 workers: int) -> Iterator[dict]:
    context = multiprocessing.get_context("spawn")
    others = set(multiprocessing.active_children())
    pool = concurrent.futures.ProcessPoolExecutor(max_workers=workers, mp_context=context,
                                                  initializer=_init_pool_worker)
    finished = False
    try:
        # Only as_completed holds the futures, and it lets go of each once yielded, so results do
        # not pile up in memory over a long sweep.
        completed = concurrent.futures.as_completed([pool.submit(execute, task, source, runner)
                                                     for task in tasks])
        for future in completed:
            try:
                outcome = future.result()
            except concurrent.futures.process.BrokenProcessPool:
                raise RuntimeError("a worker process died (out of memory?); every finished task is "
                                   "saved, re-run the same command to resume") from None
            yield outcome
        finished = True
    finally:
        if finished:
            pool.shutdown(wait=True)
        else:
            # Ctrl-C or the consumer stopped: what is in flight will not be written, so the pool's
            # workers are ended rather than waited for.
            _end_pool(pool, set(multiprocessing.active_children()) - others)


def _end_pool(pool: concurrent.futures.ProcessPoolExecutor, workers: set) -> None:
    """Stop ``pool`` now: cancel what is queued, end its ``workers`` and its manager thread.

    A worker ended while sending its result leaves a partial message in the result pipe, and the
    executor's manager thread then waits for the rest for ever (this process holds the pipe's write
    end), so the interpreter, which joins that thread at exit, would never exit. Closing the write
    end once the workers are gone turns that wait into end-of-file, which the executor handles as a
    broken pool: its thread ends. (``_result_queue`` and ``_executor_manager_thread`` are
    CPython's; they are read before ``shutdown`` drops them.)
    """
    result_queue = pool._result_queue
    manager = pool._executor_manager_thread
    pool.shutdown(wait=False, cancel_futures=True)
    for worker in workers:
        worker.terminate()
    for worker in workers:
        worker.join()
    if result_queue is not None:
        result_queue._writer.close()
    if manager is not None:
        manager.join()


def connect_scheduler(address: str, *, timeout: float = 5.0) -> Any:
    """A ``distributed.Client`` on ``address``; ValueError (naming the address) if it cannot connect."""
    from distributed import Client
    try:
        return Client(address, timeout=timeout)
    except (OSError, TimeoutError) as exc:
        raise ValueError(f"scheduler: cannot reach the Dask scheduler at {address} ({exc})") from None


def _run_on_dask(tasks: Sequence[Task], source: DatasetSource, runner: TaskRunner,
                 client: Any) -> Iterator[dict]:
    from distributed import as_completed
    completed = as_completed([client.submit(_execute_in_worker, task, source, runner, pure=False)
                              for task in tasks])
    try:
        for future in completed:
            outcome = future.result()
            future.release()
            yield outcome
    finally:
        client.cancel(list(completed.futures))


def check_sweep(store: ResultStore, tasks: Sequence[Task], n_seeds: int) -> dict[str, str]:
    """The sweep facts to record, or ValueError if they contradict what ``store`` already holds.

    A results file describes one sweep: one seed count, and each config name always meaning the
    same training, or re-runs would mix old and new results under one name.
    """
    meta = store.meta()
    if "n_seeds" in meta and int(meta["n_seeds"]) != n_seeds:
        raise ValueError(f"seeds: {store.path} holds a sweep with --seeds {meta['n_seeds']}; "
                         f"use the same value or a new output folder")
    known = json.loads(meta.get("configs", "{}"))
    for config in {task.config.name: task.config for task in tasks}.values():
        definition = config.to_dict()
        if known.setdefault(config.name, definition) != definition:
            raise ValueError(f"configs: {store.path} holds config {config.name!r} with another "
                             f"definition {known[config.name]}; use a new output folder")
    return {"n_seeds": str(n_seeds), "configs": json.dumps(known, sort_keys=True)}


def run_sweep(tasks: Sequence[Task], source: DatasetSource, out: str | Path, *, n_seeds: int,
              workers: int | None = None, client: Any = None, runner: TaskRunner | None = None,
              progress: bool = True) -> SweepSummary:
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
        Local processes; 1 runs in this process; None uses every core. Ignored with ``client``.
    client : distributed.Client, optional
        Run on this Dask cluster instead of locally.
    runner : callable, optional
        ``runner(task, dataset) -> TaskOutput``; default :func:`verify.tasks.run_task`.
    progress : bool
        Show a tqdm bar with ETA on stderr.

    Returns
    -------
    SweepSummary

    Raises
    ------
    KeyboardInterrupt
        After writing every task that had arrived; the store is consistent and resumable.
    """
    if runner is None:
        from verify.tasks import run_task as runner
    workers = (os.cpu_count() or 1) if workers is None else workers
    if workers < 1:
        raise ValueError(f"workers: must be >= 1, got {workers}")
    start = time.perf_counter()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    with ResultStore(out / RESULTS_FILE) as store:
        store.set_meta(check_sweep(store, tasks, n_seeds))
        store.write_datasets(source.cards())
        done = {key for key, status in store.task_status().items() if status == "done"}
        # Longest first, so that the pool does not end waiting on one slow task (a stable sort keeps
        # a dataset's tasks together for the workers' dataset cache); the order never changes a
        # result (seeds and run ids come from coordinates).
        pending = sorted((task for task in tasks if task.key not in done), key=expected_cost, reverse=True)
        if client is not None:
            outcomes = _run_on_dask(pending, source, runner, client)
        elif workers == 1 or len(pending) <= 1:
            outcomes = _run_in_process(pending, source, runner)
        else:
            outcomes = _run_on_pool(pending, source, runner, min(workers, len(pending)))
        counts = {"done": 0, "failed": 0}
        bar = tqdm(total=len(pending), unit="task", file=sys.stderr, disable=not progress,
                   dynamic_ncols=True, desc="verify")
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
                        results=out / RESULTS_FILE)


def _write(store: ResultStore, outcome: dict[str, Any]) -> None:
    if outcome["status"] == "done":
        store.write_done(outcome["task"], outcome["runs"], outcome["bounds"], seconds=outcome["seconds"],
                         card=outcome["card"])
    else:
        store.write_failed(outcome["task"], error=outcome["error"], seconds=outcome["seconds"])


def with_max_left_out(configs: Iterable[TrainingConfig], max_left_out: int | None) -> list[TrainingConfig]:
    """The configs with ``max_left_out`` overridden (``--max-left-out``), or unchanged for None."""
    if max_left_out is None:
        return list(configs)
    if max_left_out < 0:
        raise ValueError(f"max-left-out: must be >= 0, got {max_left_out}")
    return [replace(config, max_left_out=max_left_out) for config in configs]
