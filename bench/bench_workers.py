"""Worker start-up: spawned workers against workers forked from a preloaded fork server, and in-process.

    python bench/bench_workers.py --data DIR [--grid smoke] [--configs A,B] [--rounds 2] [--json]

Runs the same sweep (``ftstab verify --grid G --data DIR --configs ...``) in a fresh process per
arm, the arms taking turns ``--rounds`` times: ``spawn`` (2 workers, each a fresh interpreter, as
before), ``forkserver`` (2 workers forked from a fork server that imported torch and the task runner
once, :func:`verify.sweep.executors.pool_context`) and ``in-process`` (``--workers 1``). Reports
the wall seconds and the CPU seconds of every process involved: the sweep's own, its reaped
children (spawned workers) and the fork server with the workers it reaped, read with psutil before
the sweep's process exits. ``DIR`` is a ``ftstab synth`` output folder for the grid.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from common import best_of_rounds, run_sweep_arm

ARM = """
import json, multiprocessing, sys, time
import psutil
from verify.cli import main
from verify.sweep import executors
if {arm!r} == "spawn":
    executors.pool_context = lambda: multiprocessing.get_context("spawn")
start = time.perf_counter()
code = main(["verify", "--grid", {grid!r}, "--data", {data!r}, "--out", {out!r}, "--configs", {configs!r},
             "--workers", {workers!r}, "--seeds", "10"])
wall = time.perf_counter() - start
me = psutil.Process()
total = 0.0
for process in [me] + me.children(recursive=True):
    times = process.cpu_times()
    total += times.user + times.system + times.children_user + times.children_system
print(json.dumps({{"code": code, "wall_s": wall, "cpu_s": total}}))
"""


def run_arm(arm: str, args: argparse.Namespace, out: Path) -> dict:
    workers = "1" if arm == "in-process" else "2"
    code = ARM.format(arm=arm, grid=args.grid, data=args.data, out=str(out), configs=args.configs,
                      workers=workers)
    return run_sweep_arm(arm, code)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--grid", default="smoke")
    parser.add_argument("--configs", default="head_gd_logistic,head_sgd_logistic_random,full_quadratic_gd")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    best = best_of_rounds(("spawn", "forkserver", "in-process"), lambda arm, out: run_arm(arm, args, out),
                          rounds=args.rounds, key="cpu_s")
    for arm, result in best.items():
        print(json.dumps({"arm": arm, **result}) if args.json else
              f"{arm:11s} wall {result['wall_s']:6.1f} s  CPU {result['cpu_s']:6.1f} s")


if __name__ == "__main__":
    main()
