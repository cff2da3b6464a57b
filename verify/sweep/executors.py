"""Run tasks in this process, on a local process pool or on Dask, and package each outcome.

Workers only compute; the parent is the one writer of the store (``verify.sweep.runner``).
"""
from __future__ import annotations

import concurrent.futures
import multiprocessing
import os
import signal
import socket
import sys
import threading
import time
import traceback
from collections import OrderedDict
from collections.abc import Callable, Generator, Sequence
from functools import partial
from typing import Any, cast

from threadpoolctl import threadpool_limits

from verify.plugins import load_plugins, recorded_modules
from verify.run.output import TaskOutput
from verify.run.task import Task, run_ids
from verify.sweep.allocator import retain_freed_memory
from verify.sweep.sources import DatasetSource

TaskRunner = Callable[[Task, Any], TaskOutput]
# Runs tasks of one dataset together: runner(tasks, dataset) -> one TaskOutput per task.
GroupRunner = Callable[[Sequence[Task], Any], list[TaskOutput]]
# ``execute(group, source, runner) -> outcomes`` runs one unit of work where it lands: a group of
# training tasks (:func:`execute_group`) or of bound evaluations (``verify.bounds.step``).
Execute = Callable[[Sequence[Any], DatasetSource, Callable], list[dict]]


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


def load_cached(source: DatasetSource, dataset_id: str) -> Any:
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


def prepare_worker() -> None:
    """Set up a process that computes tasks: one thread (:func:`limit_threads`) and an allocator
    that keeps freed memory for the next step (:func:`verify.sweep.allocator.retain_freed_memory`)."""
    limit_threads()
    retain_freed_memory()


def limit_threads() -> None:
    """One compute thread per worker process (torch and the BLAS behind numpy); the pool supplies
    the parallelism. Torch reads the variables when a task first imports it."""
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
    return execute_group([task], source, partial(each_task, runner))[0]


def each_task(runner: TaskRunner, tasks: Sequence[Task], dataset: Any) -> list[TaskOutput]:
    """A :data:`GroupRunner` that runs each task alone with a per-task ``runner``."""
    return [runner(task, dataset) for task in tasks]


def execute_group(tasks: Sequence[Task], source: DatasetSource, runner: GroupRunner) -> list[dict[str, Any]]:
    """Run tasks of one dataset together (``runner(tasks, dataset)``) and package each outcome.

    Never raises: if the group fails, every task of it is ``status="failed"`` with the traceback.
    """
    start = time.perf_counter()
    try:
        dataset = load_cached(source, tasks[0].dataset_id)
        outputs = runner(tasks, dataset)
        seconds = (time.perf_counter() - start) / len(tasks)
        return [_package(task, output, dataset, seconds) for task, output in zip(tasks, outputs, strict=True)]
    except Exception:  # a task's failure is data for the store, not a reason to stop the sweep
        error, seconds = traceback.format_exc(), (time.perf_counter() - start) / len(tasks)
        return [{"status": "failed", "task": task.record(), "error": error, "seconds": seconds}
                for task in tasks]


def _package(task: Task, output: TaskOutput, dataset: Any, seconds: float) -> dict[str, Any]:
    common = {**_card_columns(dataset.card), **_task_columns(task)}
    runs = [{**common, **row} for row in output.runs]
    for row, identifier in zip(runs, run_ids(task.key, runs), strict=True):
        row["run_id"] = identifier
    weights = None if output.weights is None else (output.weights.arrays(), output.weights.info())
    return {"status": "done", "task": task.record(), "runs": runs, "weights": weights,
            "card": dataset.card, "seconds": seconds}


# Linux prctl(2) option: the signal a process receives when its parent dies.
PR_SET_PDEATHSIG = 1
WATCHDOG_SECONDS = 1.0


def kill_with_parent() -> None:
    """On Linux, have the kernel send this process SIGKILL when its parent dies (``PR_SET_PDEATHSIG``);
    elsewhere nothing (:func:`end_with_parent` adds a watchdog)."""
    if sys.platform.startswith("linux"):
        try:
            import ctypes
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        except (OSError, AttributeError):  # no prctl: end_with_parent's watchdog still ends workers
            pass


def end_with_parent(parent: int) -> None:
    """Make this process end when the process ``parent`` dies, even by SIGKILL.

    On Linux the kernel sends SIGKILL on the parent's death (``PR_SET_PDEATHSIG``); everywhere a
    daemon thread also polls ``os.getppid()`` and exits once the parent is gone (a dead parent's
    children are re-parented). A parent that died before this call is caught by the first check.
    A pool worker left alive would hold ~400 MB and the resource tracker's pipe for ever.
    """
    kill_with_parent()
    if os.getppid() != parent:
        os._exit(1)

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(WATCHDOG_SECONDS)
        os._exit(1)

    threading.Thread(target=watch, name="ftstab-parent-watchdog", daemon=True).start()


PRELOAD = "verify.sweep.preload"


def pool_context() -> multiprocessing.context.BaseContext:
    """Where the platform has one, a fork server that imports :mod:`verify.sweep.preload` once and
    forks every worker from there (a worker then starts in 0.02 CPU s instead of 2.7-4.5); else spawn.

    The fork server is started by the first pool of this process and serves every later one.
    """
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload([PRELOAD])
    return context


_FORK_SERVER_STARTED = False


def pool_is_warm() -> bool:
    """Whether a pool started now finds this process's fork server running (an earlier pool
    started it), so that its workers start warm without the fork server's preload."""
    return _FORK_SERVER_STARTED


def _init_pool_worker(sweep: int, plugins: str | None) -> None:
    """Pool workers leave Ctrl-C to the parent, which writes what has arrived and ends them, and
    end when their parent dies (:func:`end_with_parent`): the sweep's process, or the fork server
    that forked them for it, which ends when the sweep's process does."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    parent = os.getppid()
    if parent != sweep and not _running(sweep):
        os._exit(1)
    end_with_parent(parent)
    prepare_worker()
    # The sweep's --plugins and the entry points: tasks may name their objects. Passed, not read
    # from this process's environment, which a fork server keeps from the time it started.
    load_plugins(plugins)


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, under another user
        return True
    return True


def _execute_in_worker(tasks: Sequence[Any], source: DatasetSource, runner: Callable,
                       execute: Execute = execute_group) -> list[dict[str, Any]]:
    prepare_worker()
    return execute(tasks, source, runner)


def _run_in_process(groups: Sequence[Sequence[Any]], source: DatasetSource, runner: Callable, *,
                    execute: Execute = execute_group) -> Generator[dict, None, None]:
    import torch  # lazy: the ftstab parser imports this module and stays torch-free
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    retain_freed_memory()
    try:
        with threadpool_limits(1):
            for tasks in groups:
                yield from execute(tasks, source, runner)
    finally:
        torch.set_num_threads(previous)


def _run_on_pool(groups: Sequence[Sequence[Any]], source: DatasetSource, runner: Callable,
                 workers: int, *, execute: Execute = execute_group) -> Generator[dict, None, None]:
    global _FORK_SERVER_STARTED
    others = set(multiprocessing.active_children())
    context = pool_context()
    pool = concurrent.futures.ProcessPoolExecutor(max_workers=workers, mp_context=context,
                                                  initializer=_init_pool_worker,
                                                  initargs=(os.getpid(), recorded_modules()))
    _FORK_SERVER_STARTED = context.get_start_method() == "forkserver"
    finished = False
    try:
        # Only as_completed holds the futures, and it lets go of each once yielded, so results do
        # not pile up in memory over a long sweep.
        completed = concurrent.futures.as_completed([pool.submit(execute, tasks, source, runner)
                                                     for tasks in groups])
        for future in completed:
            try:
                outcomes = future.result()
            except concurrent.futures.process.BrokenProcessPool:
                raise RuntimeError("a worker process died (out of memory?); every finished task is "
                                   "saved, re-run the same command to resume") from None
            yield from outcomes
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
    # typeshed omits SimpleQueue's _writer (a Connection) and types the manager thread _ThreadWakeup.
    result_queue = cast(Any, pool._result_queue)
    manager = cast("threading.Thread | None", pool._executor_manager_thread)
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
    """A ``distributed.Client`` on ``address``; ValueError (naming the address) if it cannot connect.

    A TCP address is first probed (:func:`probe_scheduler`): a server that accepts the connection
    but is not a Dask scheduler (an HTTP dashboard port, say) would otherwise keep the client's
    handshake waiting for ever, since the client's timeout only bounds the TCP connect.
    """
    from distributed import Client
    probe_scheduler(address, timeout=timeout)
    try:
        return Client(address, timeout=timeout)
    except (OSError, TimeoutError) as exc:
        raise ValueError(f"scheduler: cannot reach the Dask scheduler at {address} ({exc})") from None


def probe_scheduler(address: str, *, timeout: float = 5.0) -> None:
    """Check within ``timeout`` seconds that a Dask scheduler answers at a ``tcp://`` address.

    A Dask scheduler speaks first: on accepting a connection it sends its handshake. A server that
    says nothing within ``timeout`` is asked ``HEAD / HTTP/1.0`` to tell the user what answered; a
    server that answers with something else is named by its first line. Other schemes are left to
    ``distributed``.
    """
    scheme, _, rest = address.rpartition("://")
    if scheme not in ("", "tcp"):
        return
    host, _, port_text = rest.rpartition(":")
    if not host or not port_text.isdigit():
        raise ValueError(f"scheduler: {address!r} is not tcp://HOST:PORT")
    try:
        with socket.create_connection((host.strip("[]"), int(port_text)), timeout=timeout) as sock:
            sock.settimeout(timeout)
            try:
                first = sock.recv(256)
            except TimeoutError:
                first = None
            if first is None:
                sock.sendall(b"HEAD / HTTP/1.0\r\n\r\n")
                try:
                    answer = sock.recv(256)
                except TimeoutError:
                    answer = b""
                what = (f"it answered an HTTP request with {_first_line(answer)!r} (a web server, "
                        f"e.g. a Dask dashboard port?)" if answer.startswith(b"HTTP/")
                        else "it answered nothing")
                raise ValueError(f"scheduler: {address} accepted the connection but sent no Dask "
                                 f"handshake within {timeout:g} s; {what}")
    except OSError as exc:
        raise ValueError(f"scheduler: cannot reach the Dask scheduler at {address} "
                         f"({exc.strerror or exc})") from None
    if first.startswith(b"HTTP/") or not first:
        what = f"{_first_line(first)!r}" if first else "closed the connection"
        raise ValueError(f"scheduler: {address} is not a Dask scheduler (it {'answered ' if first else ''}"
                         f"{what})")


def _first_line(data: bytes) -> str:
    return data.split(b"\r\n")[0].split(b"\n")[0].decode("latin-1")[:80]


def _run_on_dask(groups: Sequence[Sequence[Any]], source: DatasetSource, runner: Callable,
                 client: Any, *, execute: Execute = execute_group) -> Generator[dict, None, None]:
    from distributed import as_completed
    completed = as_completed([client.submit(_execute_in_worker, tasks, source, runner, execute,
                                            pure=False)
                              for tasks in groups])
    try:
        for future in completed:
            outcomes = future.result()
            future.release()
            yield from outcomes
    finally:
        client.cancel(list(completed.futures))
