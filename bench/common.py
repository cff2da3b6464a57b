"""Shared helpers of the benchmarks: problems, the matmul reference, timing and memory.

Every time is CPU time of this process (``time.process_time``): on a shared machine it does not count
the time other processes hold the cores, and with one thread it equals wall time on an idle machine.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import resource
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path

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


def describe(result: dict, *, reference: str, detail: str = "", compared: str = "naive",
             precision: int = 1) -> str:
    """One line for a benchmark result.

    ``reference`` names the matmul the throughput is compared with, ``detail`` is inserted after
    the timings, ``compared`` names what ``max_abs_diff`` compares the batched trainer with.
    """
    extrapolated = ("" if result["naive_models_timed"] == result["models"] else
                    f" (naive timed on {result['naive_models_timed']} of {result['models']} models, "
                    "extrapolated linearly)")
    return (f"{result['case']}: M={result['models']} T={result['steps']} batched "
            f"{result['batched_s']:.1f} s, naive {result['naive_s']:.1f} s{extrapolated}{detail}, "
            f"speedup {result['speedup']:.0f}x; {result['gflops']:.{precision}f} GFLOP/s = "
            f"{result['gflops'] / result['matmul_gflops']:.0%} of {reference} "
            f"({result['matmul_gflops']:.{precision}f} GFLOP/s); max |batched - {compared}| "
            f"{result['max_abs_diff']:.1e}; peak memory {result['peak_mib']:.0f} MiB")


def benchmark_arguments(description: str, *, steps: int) -> argparse.ArgumentParser:
    """The options every benchmark script shares; a script adds its size options."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--steps", type=int, default=steps)
    parser.add_argument("--naive-models", default="8", help="models timed in the naive loop, or 'all'")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", action="store_true", help="print the result as one JSON line")
    return parser


def naive_model_count(args: argparse.Namespace) -> int | None:
    """``--naive-models``: None (every model) for 'all', else the count."""
    return None if args.naive_models == "all" else int(args.naive_models)


def report(result: dict, args: argparse.Namespace, line: Callable[[dict], str]) -> None:
    """Print the result as JSON (``--json``) or as its one-line description."""
    print(json.dumps(result) if args.json else line(result))


def module_at_revision(revision: str, path: str, name: str):
    """The module at ``path`` as it was at git ``revision``, imported under ``name``.

    Its own imports resolve to today's packages, so it can only stand in for a module whose
    dependencies have not changed since; the benchmarks use it to time a trainer against its
    previous version in one process, alternating the two.
    """
    import importlib.util
    import pathlib
    import subprocess
    import sys
    import tempfile

    root = pathlib.Path(__file__).resolve().parents[1]
    source = subprocess.run(["git", "show", f"{revision}:{path}"], cwd=root, check=True,
                            capture_output=True, text=True).stdout
    directory = pathlib.Path(tempfile.mkdtemp(prefix="ftstab-revision-"))
    file = directory / f"{name}.py"
    file.write_text(source)
    spec = importlib.util.spec_from_file_location(name, file)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module   # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def alternate(functions: dict[str, Callable[[], object]], *, rounds: int) -> dict[str, float]:
    """Best CPU seconds of each function over ``rounds`` rounds, the functions taking turns."""
    best = dict.fromkeys(functions, np.inf)
    for _ in range(rounds):
        for name, function in functions.items():
            start = time.process_time()
            function()
            best[name] = min(best[name], time.process_time() - start)
    return best


def run_sweep_arm(arm: str, code: str) -> dict:
    """Run ``code`` (a Python program that prints one JSON object, with the sweep's exit ``code``, on
    its last line) in a fresh interpreter; that object, or an error naming ``arm`` if the sweep
    failed."""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    outcome = json.loads(result.stdout.strip().splitlines()[-1])
    if outcome["code"] != 0:
        raise RuntimeError(f"the {arm} sweep failed: {result.stderr.strip().splitlines()[-1]}")
    return outcome


def best_of_rounds(arms: Iterable[str], run: Callable[[str, Path], dict], *, rounds: int,
                   key: str) -> dict[str, dict]:
    """Each arm ``run(arm, out)`` into a fresh scratch folder, the arms taking turns ``rounds``
    times; per arm the result with the smallest ``key``."""
    best: dict[str, dict] = {}
    arms = list(arms)
    with tempfile.TemporaryDirectory() as scratch:
        for round_ in range(rounds):
            for arm in arms:
                result = run(arm, Path(scratch) / f"{arm.replace(' ', '-')}-{round_}")
                if arm not in best or result[key] < best[arm][key]:
                    best[arm] = result
    return best


def stored_digest(results: Path) -> str:
    """SHA-256 of every run's measured numbers, in key order (the same whatever the executor)."""
    with sqlite3.connect(f"file:{results / 'results.sqlite'}?mode=ro", uri=True) as connection:
        rows = connection.execute(
            "SELECT task_key, seed, left_out, iteration, train_loss, test_accuracy, "
            "parameter_stability, head_direction_stability, distance_from_start, teacher_distance, "
            "validation_accuracy FROM runs "
            "ORDER BY task_key, seed, left_out, iteration").fetchall()
    return hashlib.sha256(repr(rows).encode()).hexdigest()


def noop_runner(task, dataset):
    """A task runner that trains nothing and returns no rows: what is left of a sweep's time is its
    executor's (bench_workers.py --startup)."""
    from verify.run.output import TaskOutput
    return TaskOutput(runs=[])
