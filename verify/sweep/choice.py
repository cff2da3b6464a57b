"""Where a sweep's pending work runs: in this process, or on a local pool of at most ``--workers``.

A pool pays a start-up before its first result: its fork server imports torch and the task runner
and pays ``torch.func``'s first-call set-up (:mod:`verify.sweep.preload`), which this process, having
imported the task runner already, would only pay the last part of; then each worker is forked and
sent its work. Work that takes less than that start-up plus its own duration on the pool runs
faster here: :func:`choose_executor` compares the two with the work's predicted CPU seconds
(:mod:`verify.run.cost`).
"""
from __future__ import annotations

import heapq
import os
from collections.abc import Sequence
from dataclasses import dataclass

# Wall seconds of a pool's start-up beyond what running in this process costs, on idle cores:
# bench/bench_workers.py --startup (2026-12-02, this project's 2-core development machine, best of
# 3): two no-op task groups took 1.12 s in-process (the first torch.func call, which a sweep here
# pays in its first task), 3.21 s on a cold pool of 2 (the fork server's preload, 3.3 CPU s in all
# processes) and 0.18 s on a warm one (a second pool: the two workers' forks and first round trip).
# So a cold pool costs 3.21 - 1.12 = 2.09 s more, 2 x WORKER_START_SECONDS of it its workers'.
POOL_START_SECONDS = 1.9
WORKER_START_SECONDS = 0.09


@dataclass(frozen=True)
class ExecutorChoice:
    """``workers`` processes (1: this one), why in a word, and the numbers behind it."""

    workers: int
    why: str = ""
    detail: str = ""

    @property
    def in_process(self) -> bool:
        return self.workers == 1

    @property
    def label(self) -> str:
        """``in-process (small sweep)``, ``2 workers``: for the progress bar."""
        where = "in-process" if self.in_process else f"{self.workers} workers"
        return f"{where} ({self.why})" if self.why else where

    def describe(self) -> str:
        """The label and the numbers: for the summary line."""
        return f"{self.label}: {self.detail}" if self.detail else self.label


def makespan(seconds: Sequence[float], workers: int) -> float:
    """Wall seconds of running jobs of these durations on ``workers`` processes, longest first,
    each to the first free process: an estimate of the pool's time, since the sweep submits in a
    coarser longest-first order (``verify.sweep.plan.expected_cost``, which keeps a dataset's tasks
    together for the workers' dataset cache)."""
    free = [0.0] * max(1, workers)
    for duration in sorted(seconds, reverse=True):
        heapq.heappush(free, heapq.heappop(free) + duration)
    return max(free)


def choose_executor(group_seconds: Sequence[float] | None, workers: int, *, n_groups: int,
                    pool_warm: bool = False, cores: int | None = None) -> ExecutorChoice:
    """In-process or a pool of at most ``workers`` for ``n_groups`` units of work.

    Parameters
    ----------
    group_seconds : sequence of float or None
        Predicted CPU seconds of each unit of work; None: unknown (a pool whenever ``workers`` and
        ``n_groups`` allow one).
    workers : int
        ``--workers``: the most processes the pool may have.
    n_groups : int
        Units of work (groups of tasks that train together, or bound jobs).
    pool_warm : bool
        Whether this process's fork server is already running (an earlier pool started it): a
        new pool then pays only its workers' start.
    cores : int, optional
        Cores the pool's workers share (default: this machine's).

    Returns
    -------
    ExecutorChoice
        ``workers == 1`` runs in this process.
    """
    if workers < 1:
        raise ValueError(f"workers: must be >= 1, got {workers}")
    if workers == 1:
        return ExecutorChoice(1, "--workers 1")
    if n_groups <= 1:
        return ExecutorChoice(1, "one task group" if n_groups else "nothing to run")
    size = min(workers, n_groups)
    if group_seconds is None:
        return ExecutorChoice(size)
    here = sum(group_seconds)
    parallel = min(size, cores or os.cpu_count() or 1)
    start = (0.0 if pool_warm else POOL_START_SECONDS) + size * WORKER_START_SECONDS
    pool = start + makespan(group_seconds, parallel)
    detail = (f"{here:.1f} CPU s predicted; a pool of {size} would take {pool:.1f} s, "
              f"{start:.1f} s of it its start-up")
    if here <= pool:
        return ExecutorChoice(1, "small sweep", detail)
    return ExecutorChoice(size, "", detail)
