"""Worker start-up: spawned workers against workers forked from a preloaded fork server, and in-process.

    python bench/bench_workers.py --data DIR [--grid smoke] [--configs A,B] [--rounds 2] [--json]
    python bench/bench_workers.py --data DIR --rule [--small A,B] [--above A,B]
    python bench/bench_workers.py --data DIR --startup

Runs the same sweep (``ftstab verify --grid G --data DIR --configs ...``) in a fresh process per
arm, the arms taking turns ``--rounds`` times: ``spawn`` (2 workers, each a fresh interpreter, as
before), ``forkserver`` (2 workers forked from a fork server that imported torch and the task runner
once, :func:`verify.sweep.executors.pool_context`) and ``in-process`` (``--workers 1``). Reports
the wall seconds and the CPU seconds of every process involved: the sweep's own, its reaped
children (spawned workers) and the fork server with the workers it reaped, read with psutil before
the sweep's process exits. ``DIR`` is a ``ftstab synth`` output folder for the grid.

``--rule``: the small-sweep rule (:func:`verify.sweep.choice.choose_executor`). The same sweep with
``--workers 2`` on the ``--small`` configs, ``forced pool`` (the rule off: the pool whenever there
are two task groups, as before the rule) against ``rule`` (as shipped), and a sweep predicted just
above the break-even (``--above`` configs) both ways; each arm reports where its training and its
bounds ran.

``--startup``: what the rule's break-even is made of. Two no-op task groups (no training, no rows)
in a process that has imported the task runner (as ``run_sweep`` has before it chooses): in-process
after the first ``torch.func`` call (which a sweep in-process pays and a pool's fork server pays
for its workers), on a cold pool of 2 (the fork server's preload included), and on a warm one (a
second pool of the same process: the workers' forks only).
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
from verify.bounds import step
from verify.sweep import choice, executors, runner
if {arm!r} == "spawn":
    executors.pool_context = lambda: multiprocessing.get_context("spawn")
if {arm!r} in ("spawn", "forkserver") or {arm!r}.startswith("forced pool"):
    # the rule off: a pool whenever --workers and the task groups allow one (as before the rule)
    def pool_always(seconds, workers, **kwargs):
        return choice.choose_executor(None, workers, **kwargs)
    runner.choose_executor = step.choose_executor = pool_always
from verify.sweep import cli
seen = []
def recording(function):
    def run(*args, **kwargs):
        summary = function(*args, **kwargs)
        seen.append(summary.executor)
        return summary
    return run
cli.run_sweep, step.run_bounds = recording(cli.run_sweep), recording(step.run_bounds)
start = time.perf_counter()
code = main(["verify", "--grid", {grid!r}, "--data", {data!r}, "--out", {out!r}, "--configs", {configs!r},
             "--workers", {workers!r}, "--seeds", "10"])
wall = time.perf_counter() - start
me = psutil.Process()
total = 0.0
for process in [me] + me.children(recursive=True):
    times = process.cpu_times()
    total += times.user + times.system + times.children_user + times.children_system
print(json.dumps({{"code": code, "wall_s": wall, "cpu_s": total,
                  "executor": "training " + seen[0].split(":")[0] + ", bounds " + seen[1].split(":")[0]}}))
"""

STARTUP = """
import json, os, sys, time
from functools import partial
from pathlib import Path
import psutil
sys.path.insert(0, {bench!r})
from common import noop_runner
import verify.run.runner  # noqa: F401  (run_sweep imports it before choosing where to run)
from verify.configs import CONFIGS
from verify.sweep.executors import _run_in_process, _run_on_pool, each_task
from verify.sweep.plan import build_tasks
from verify.sweep.sources import FolderSource
source = FolderSource(Path({data!r}), ({dataset!r},))
tasks = build_tasks(source.entries(), [CONFIGS["head_gd_logistic"], CONFIGS["head_gd_exponential"]],
                    [("none", {{}})], n_seeds=1)
groups, task_runner = [[task] for task in tasks], partial(each_task, noop_runner)

def cpu():
    me = psutil.Process()
    total = 0.0
    for process in [me] + me.children(recursive=True):
        times = process.cpu_times()
        total += times.user + times.system + times.children_user + times.children_system
    return total

if {arm!r} == "warm pool":
    list(_run_on_pool(groups, source, task_runner, 2))
wall, used = time.perf_counter(), cpu()
if {arm!r} == "in-process":
    import torch
    torch.func.grad(lambda x: (x * x).sum())(torch.ones(1, dtype=torch.float64))
    outcomes = list(_run_in_process(groups, source, task_runner))
else:
    outcomes = list(_run_on_pool(groups, source, task_runner, 2))
assert [outcome["status"] for outcome in outcomes] == ["done", "done"], outcomes
print(json.dumps({{"code": 0, "wall_s": time.perf_counter() - wall, "cpu_s": cpu() - used}}))
"""


def run_arm(arm: str, args: argparse.Namespace, out: Path) -> dict:
    if args.startup:
        code = STARTUP.format(arm=arm, bench=str(Path(__file__).resolve().parent), data=args.data,
                              dataset=args.startup_dataset)
        return run_sweep_arm(arm, code)
    workers = "1" if arm == "in-process" else "2"
    configs = args.above if arm.endswith("above") else args.small if args.rule else args.configs
    code = ARM.format(arm=arm, grid=args.grid, data=args.data, out=str(out), configs=configs,
                      workers=workers)
    return run_sweep_arm(arm, code)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--grid", default="smoke")
    parser.add_argument("--configs", default="head_gd_logistic,head_sgd_logistic_random,full_quadratic_gd")
    parser.add_argument("--small", default="head_gd_logistic,head_gd_logistic_lr0.1,full_quadratic_gd",
                        help="--rule: configs of a sweep predicted below the break-even")
    parser.add_argument("--above", default="head_gd_logistic,head_sgd_logistic_random,full_quadratic_gd",
                        help="--rule: configs of a sweep predicted just above the break-even")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--json", action="store_true")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--rule", action="store_true", help="the small-sweep rule's arms")
    mode.add_argument("--startup", action="store_true", help="a pool's start-up, no training")
    parser.add_argument("--startup-dataset", default="separable-d69c25b11f4d",
                        help="--startup: the dataset of the no-op tasks")
    args = parser.parse_args()
    arms = (("in-process", "cold pool", "warm pool") if args.startup else
            ("forced pool", "rule", "forced pool, above", "rule, above") if args.rule else
            ("spawn", "forkserver", "in-process"))
    best = best_of_rounds(arms, lambda arm, out: run_arm(arm, args, out), rounds=args.rounds,
                          key="cpu_s")
    for arm, result in best.items():
        where = f"  {result['executor']}" if result.get("executor") else ""
        print(json.dumps({"arm": arm, **result}) if args.json else
              f"{arm:18s} wall {result['wall_s']:6.2f} s  CPU {result['cpu_s']:6.2f} s{where}")


if __name__ == "__main__":
    main()
