"""Run every benchmark case, each in its own process (so peak memory is per case), and print one table.

    python bench/run_all.py [--steps T] [--naive-models 8] [--threads 1]

A case is a script in bench/ that accepts ``--steps --naive-models --threads --json`` and prints one
JSON object with the keys of ``COLUMNS``; add it to ``CASES`` to include it here. Without ``--steps``
every case runs its own default number of steps (20000 for heads and the quadratic task).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
CASES = (
    ("bench_head.py", "--n", "128"),
    ("bench_head.py", "--n", "512"),
    ("bench_quadratic.py", "--n", "256"),
    ("bench_mlp.py",),
)
COLUMNS = (("case", "{}"), ("models", "{}"), ("steps", "{}"), ("batched_s", "{:.1f}"),
           ("naive_s", "{:.1f}"), ("naive_models_timed", "{}"), ("speedup", "{:.0f}x"),
           ("gflops", "{:.2f}"), ("matmul_gflops", "{:.2f}"), ("of_matmul", "{:.0%}"),
           ("max_abs_diff", "{:.1e}"), ("peak_mib", "{:.0f}"))


def run_case(script: str, *options: str, steps: int | None, naive_models: str, threads: int) -> dict:
    environment = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    if steps is not None:
        options = (*options, "--steps", str(steps))
    completed = subprocess.run(
        [sys.executable, str(HERE / script), *options, "--naive-models", naive_models,
         "--threads", str(threads), "--json"],
        check=True, capture_output=True, text=True, env=environment)
    result = json.loads(completed.stdout.strip().splitlines()[-1])
    result["of_matmul"] = result["gflops"] / result["matmul_gflops"]
    return result


def table(results: list[dict]) -> str:
    rows = [[name for name, _ in COLUMNS]]
    rows += [[template.format(result[name]) for name, template in COLUMNS] for result in results]
    widths = [max(len(row[i]) for row in rows) for i in range(len(COLUMNS))]
    return "\n".join("  ".join(cell.rjust(width) for cell, width in zip(row, widths)) for row in rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=None,
                        help="training steps of every case (default: each case's own)")
    parser.add_argument("--naive-models", default="8", help="models timed in the naive loop, or 'all'")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    results = []
    for script, *options in CASES:
        results.append(run_case(script, *options, steps=args.steps, naive_models=args.naive_models,
                                threads=args.threads))
        print(f"done: {results[-1]['case']}", file=sys.stderr, flush=True)
    print(table(results))
    print(f"\nload average at the end: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; naive times "
          "of subsets are extrapolated linearly to all models (column naive_models_timed)")


if __name__ == "__main__":
    main()
