"""Shared helpers of the benchmarks: problems, the matmul reference, timing and memory.

Every time is CPU time of this process (``time.process_time``): on a shared machine it does not count
the time other processes hold the cores, and with one thread it equals wall time on an idle machine.
"""
from __future__ import annotations

import resource
import time
from collections.abc import Callable

import numpy as np
import torch


def leave_one_out_masks(n: int) -> np.ndarray:
    """(n + 1, n) masks: the full set S, then S without sample i for i = 0..n-1."""
    masks = np.ones((n + 1, n), dtype=bool)
    masks[np.arange(1, n + 1), np.arange(n)] = False
    return masks


def separable_features(n: int, d: int, *, margin: float = 0.2, seed: int = 0):
    """Gaussian features pushed apart along a random unit direction: separable with that margin."""
    rng = np.random.default_rng(seed)
    direction = rng.normal(size=d)
    direction /= np.linalg.norm(direction)
    X = rng.normal(size=(n, d))
    signs = np.where(X @ direction >= 0, 1.0, -1.0)
    X += margin * signs[:, None] * direction
    return X, ((signs + 1) // 2).astype(np.int64)


def best_seconds(function: Callable[[], object], *, repeats: int, rounds: int = 3) -> float:
    """Best over ``rounds`` of the mean CPU time of ``repeats`` calls (after one warm-up call)."""
    function()
    best = np.inf
    for _ in range(rounds):
        start = time.process_time()
        for _ in range(repeats):
            function()
        best = min(best, (time.process_time() - start) / repeats)
    return best


def matmul_gflops(products: list[tuple[tuple[int, int], tuple[int, int]]], *, repeats: int = 200) -> float:
    """float64 GFLOP/s of ``torch.mm`` (with ``out=``) on the given ``(a, b)`` shape pairs, in turn."""
    operands = [(torch.randn(a, dtype=torch.float64), torch.randn(b, dtype=torch.float64),
                 torch.empty(a[0], b[1], dtype=torch.float64)) for a, b in products]

    def run():
        for left, right, out in operands:
            torch.mm(left, right, out=out)

    flops = sum(2 * a[0] * a[1] * b[1] for a, b in products)
    return flops / best_seconds(run, repeats=repeats) / 1e9


def peak_memory_mib() -> float:
    """Peak resident memory of this process so far, in MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
