"""Measured CPU seconds of a sweep's task groups against their predicted cost (verify/run/cost.py).

    python bench/task_cost.py --grid smoke [--data DIR] [--configs A,B] [--seeds 10] [--every 1] [--fit]
    python bench/task_cost.py --grid default --configs head_gd_logistic --every 20 --fit

Plans the sweep as ``ftstab verify`` does, groups its tasks as the sweep does (a learning-rate sweep
of heads trains in one call), and trains every ``--every``-th group in this process with one
thread, timing each with ``time.process_time`` (after torch's first-call set-up, which a sweep pays
once). Prints per trainer the measured and predicted seconds (:func:`verify.run.cost.predicted_seconds`)
and their worst ratio; ``--fit`` prints the constants that fit these measurements best
(non-negative least squares per trainer; COST_CONSTANTS' values). ``--json FILE`` keeps every
group's work features and seconds, and ``--fit`` accepts several such files (``--from``) to fit
measurements of several grids at once.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
from scipy.optimize import nnls

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from synth.dataset import bind_params  # noqa: E402
from synth.grids import GENERATORS, load_grid  # noqa: E402
from verify.configs import CONFIGS  # noqa: E402
from verify.run.cost import COST_CONSTANTS, predicted_seconds, task_work  # noqa: E402
from verify.sweep.cli import _source, _split, _stabiliser_applies, parse_stabilisers  # noqa: E402
from verify.sweep.plan import build_tasks, group_tasks  # noqa: E402


def measure(args: argparse.Namespace) -> list[dict]:
    import verify.sweep.preload  # noqa: F401  (torch, the task runner, torch.func's set-up: paid once)
    from verify.run.runner import run_tasks, training_key
    from verify.sweep.executors import execute_group, prepare_worker
    prepare_worker()
    specs = load_grid(args.grid)
    params = {spec.id: (spec.kind, bind_params(GENERATORS[spec.generator].function, spec.params))
              for spec in specs}
    source = _source(args.grid, specs, args.data)
    configs = [CONFIGS[name] for name in (_split(args.configs) if args.configs else CONFIGS)]
    tasks = build_tasks(source.entries(), configs, parse_stabilisers(args.stabilisers),
                        n_seeds=args.seeds, applies=_stabiliser_applies)
    groups = group_tasks(tasks, training_key)[::args.every]
    measured = []
    for group in groups:
        works = [task_work(task, *params[task.dataset_id]) for task in group]
        start = time.process_time()
        outcomes = execute_group(group, source, run_tasks)
        seconds = time.process_time() - start
        if any(outcome["status"] != "done" for outcome in outcomes):
            raise RuntimeError(f"group {group[0].key} failed: {outcomes[0].get('error')}")
        measured.append({"trainer": works[0].model, "tasks": [task.key for task in group],
                         "works": [work.__dict__ for work in works], "seconds": seconds})
    return measured


def measure_bounds(args: argparse.Namespace) -> list[dict]:
    """CPU seconds of every bound job of a finished results folder (re-evaluated, nothing written)."""
    import verify.sweep.preload  # noqa: F401
    from verify.bounds.cost import bounded_rows, job_trainer
    from verify.bounds.step import execute_bounds, plan_jobs, select_bounds
    from verify.store import RESULTS_FILE, ResultStore
    from verify.sweep.executors import prepare_worker
    from verify.sweep.sources import CardSource, FolderSource
    prepare_worker()
    with ResultStore(args.bounds / RESULTS_FILE) as store:
        jobs = plan_jobs(store, select_bounds(None), force=True)
        rows, cards, configs = bounded_rows(store), store.cards(), store.configs()
    source = (CardSource(cards) if args.data is None
              else FolderSource(args.data, tuple(cards)))
    measured = []
    for job in jobs:
        start = time.process_time()
        outcome = execute_bounds(job, source)
        seconds = time.process_time() - start
        if outcome["status"] != "done":
            raise RuntimeError(f"bounds of {job.task_key} failed: {outcome['error']}")
        measured.append({"trainer": job_trainer(job, configs, cards), "rows": rows.get(job.task_key, 0),
                         "bounds": len(job.bounds), "seconds": seconds})
    return measured


def fit_bounds(measured: list[dict]) -> None:
    from verify.bounds.cost import BOUND_CONSTANTS, job_seconds
    by_trainer: dict[str, list[dict]] = defaultdict(list)
    for entry in measured:
        by_trainer[entry["trainer"]].append(entry)
    fitted = {}
    for trainer, entries in sorted(by_trainer.items()):
        features = np.array([[1.0, entry["rows"] * entry["bounds"]] for entry in entries])
        seconds = np.array([entry["seconds"] for entry in entries])
        weights = 1.0 / np.sqrt(np.maximum(seconds, 1e-3))   # as fit()
        scale = np.maximum(features.max(axis=0), 1.0)
        solution, _ = nnls(features / scale * weights[:, None], seconds * weights)
        fitted[trainer] = tuple(float(value) for value in solution / scale)
    for label, constants in (("BOUND_CONSTANTS", BOUND_CONSTANTS), ("fitted", {**BOUND_CONSTANTS, **fitted})):
        print(f"bound jobs with {label}:")
        for trainer, entries in sorted(by_trainer.items()):
            real = np.array([entry["seconds"] for entry in entries])
            predicted = np.array([job_seconds(trainer, entry["rows"], entry["bounds"], constants)
                                  for entry in entries])
            ratio = predicted / np.maximum(real, 1e-6)
            print(f"  {trainer:10s} {len(entries):4d} jobs  measured {real.sum():6.2f} s "
                  f"(max {real.max():.3f})  predicted {predicted.sum():6.2f} s  per job "
                  f"{ratio.min():.2f} .. {ratio.max():.2f} (median {np.median(ratio):.2f})")
    for trainer, values in fitted.items():
        print(f'    "{trainer}": ({", ".join(f"{value:.3g}" for value in values)}),')


def group_features(entry: dict) -> np.ndarray:
    """(FIXED, STEP, VOLUME, ROW) multipliers of a group: the steps' dispatch counted once."""
    from verify.run.cost import TaskWork
    works = [TaskWork(**work) for work in entry["works"]]
    features = np.sum([work.features() for work in works], axis=0)
    features[1] = max(work.n_steps for work in works)
    return features


def fit(measured: list[dict]) -> dict[str, tuple[float, ...]]:
    by_trainer: dict[str, list[dict]] = defaultdict(list)
    for entry in measured:
        by_trainer[entry["trainer"]].append(entry)
    constants = {}
    for trainer, entries in sorted(by_trainer.items()):
        features = np.array([group_features(entry) for entry in entries])
        seconds = np.array([entry["seconds"] for entry in entries])
        # between absolute error (sums: what the rule compares) and relative error (a 0.1 s group
        # and a 10 s one alike): each group weighted by 1/sqrt(seconds)
        weights = 1.0 / np.sqrt(np.maximum(seconds, 1e-3))
        scale = features.max(axis=0)
        scale[scale == 0] = 1.0
        solution, _ = nnls(features / scale * weights[:, None], seconds * weights)
        constants[trainer] = tuple(float(value) for value in solution / scale)
    return constants


def report(measured: list[dict], constants) -> None:
    from verify.run.cost import TaskWork
    by_trainer: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for entry in measured:
        predicted = predicted_seconds([TaskWork(**work) for work in entry["works"]], constants)
        by_trainer[entry["trainer"]].append((entry["seconds"], predicted))
    for trainer, pairs in sorted(by_trainer.items()):
        real, predicted = np.array(pairs).T
        ratio = predicted / np.maximum(real, 1e-6)
        print(f"{trainer:10s} {len(pairs):4d} groups  measured {real.sum():7.2f} s "
              f"(min {real.min():.3f}, max {real.max():.3f})  predicted {predicted.sum():7.2f} s  "
              f"predicted/measured per group {ratio.min():.2f} .. {ratio.max():.2f} "
              f"(median {np.median(ratio):.2f})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--grid", default="smoke")
    parser.add_argument("--data", type=Path)
    parser.add_argument("--configs")
    parser.add_argument("--stabilisers", default="none")
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--every", type=int, default=1, help="train every N-th group only")
    parser.add_argument("--json", type=Path, help="write the measurements to this file")
    parser.add_argument("--from", dest="sources", type=Path, action="append", default=[],
                        help="read measurements written by --json instead of training (repeatable)")
    parser.add_argument("--fit", action="store_true", help="fit the constants to the measurements")
    parser.add_argument("--bounds", type=Path, metavar="DIR",
                        help="time the bound jobs of this finished results folder instead")
    args = parser.parse_args()
    if args.bounds:
        fit_bounds(measure_bounds(args))
        return
    if args.sources:
        measured = [entry for path in args.sources for entry in json.loads(path.read_text())]
    else:
        measured = measure(args)
    if args.json:
        args.json.write_text(json.dumps(measured))
    print("with COST_CONSTANTS:")
    report(measured, COST_CONSTANTS)
    if args.fit:
        constants = fit(measured)
        print("fitted (FIXED, STEP, VOLUME, ROW):")
        for trainer, values in constants.items():
            print(f'    "{trainer}": ({", ".join(f"{value:.3g}" for value in values)}),')
        report(measured, {**COST_CONSTANTS, **constants})


if __name__ == "__main__":
    main()
