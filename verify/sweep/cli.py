"""``ftstab verify``: train and measure every task of a grid into DIR/results.sqlite, then judge.

Every input is checked before anything is written (pre-flight): the grid (and, without --data, every
dataset's parameters against its generator's declared constraints), every numeric option
against its declared range, the configs, the stabilisers (names, parameter ranges, and that each one
named applies to some selected config), the data folder (``synth.io.check_data_folder``: index,
cards, arrays and digests), the memory of the largest tasks against the machine's, an existing
results file, the scheduler (a Dask handshake within a timeout) and that ``--out`` can be written.
A failure is one line on stderr naming the option or file and the rule, exit status 2, and no file
is created or changed. The run then holds the results folder's lock (``verify.sweep.lock``).
"""
from __future__ import annotations

import argparse
import json
import numbers
import os
import signal
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from synth.dataset import bind_params
from synth.grids import GENERATORS, DatasetSpec, load_grid
from synth.io import check_data_folder, read_index
from synth.validation import Interval, validate_params
from verify.configs import CONFIGS, SETTINGS, TrainingConfig, select_configs
from verify.errors import UsageError, check_output_folder, make_output_folder
from verify.listing import HelpNamingStabilisers
from verify.run.task import NO_STABILISER, Task, canonical_params, trainer_for
from verify.store import RESULTS_FILE, open_results
from verify.sweep.executors import connect_scheduler
from verify.sweep.lock import results_folder_lock
from verify.sweep.plan import build_tasks, check_sweep, with_max_left_out
from verify.sweep.runner import run_sweep
from verify.sweep.sources import DatasetSource, FolderSource, GridSource, ListedSource
from verify.verdicts.write import write_verdicts

if TYPE_CHECKING:
    from verify.stabilisers.base import Stabiliser

DEFAULT_SEEDS = 3
# Declared ranges of the numeric options. Seeds: the suite's sweeps use 3-10; 10^4 seeds per task
# is beyond any of them (and the memory check refuses what cannot fit below that). Left-out sets:
# 0 would measure no stability at all; more than a dataset's samples leaves every sample out once.
SEEDS = Interval(numbers.Integral, 1, 10_000)
WORKERS = Interval(numbers.Integral, 1, 1024)
MAX_LEFT_OUT = Interval(numbers.Integral, 1, 1_000_000)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``verify`` sub-command to the ``ftstab`` parser."""
    parser = subparsers.add_parser(
        "verify", help="train every task of a grid, measure stability, evaluate the bounds",
        add_help=False,
        description="Cross a grid's datasets with training configs, stabilisers and seeds; train "
                    "every leave-one-out set of a task as one batched program; write one row per "
                    "run into DIR/results.sqlite (re-running resumes, failed tasks are retried); "
                    "then write DIR/verdicts.json and DIR/verdicts.md.")
    parser.add_argument("-h", "--help", action=HelpNamingStabilisers,
                        help="show this help message, naming the stabilisers, and exit")
    parser.add_argument("--grid", required=True, metavar="NAME|PATH", help="a named grid or a grid .toml")
    parser.add_argument("--out", required=True, type=Path, metavar="DIR", help="results folder")
    parser.add_argument("--data", type=Path, metavar="DIR",
                        help="datasets written by `ftstab synth --grid NAME --out DIR` "
                             "(default: generate them in memory)")
    parser.add_argument("--settings", metavar="LIST", default=",".join(SETTINGS),
                        help="comma-separated subset of head,full (default: both)")
    parser.add_argument("--configs", metavar="NAME|PATH.toml[,...]", action="append",
                        help=f"configs to train: names of shipped configs and .toml config files "
                             f"(all their configs), comma-separated, repeatable (default: all of "
                             f"{', '.join(CONFIGS)}; `ftstab list configs`)")
    parser.add_argument("--stabilisers", metavar="LIST", default=NO_STABILISER,
                        help="comma-separated stabilisers, each NAME or NAME:key=value[:key=value], "
                             "or 'all' (plain training plus every stabiliser at its defaults), or "
                             "'grid' (plain training plus every stabiliser at each point of its "
                             "declared strength grid, `ftstab list stabilisers`; NAME:grid for one "
                             "stabiliser's); 'none' is plain training (default)")
    parser.add_argument("--seeds", type=SEEDS, default=DEFAULT_SEEDS, metavar="K",
                        help=f"seeds per stochastic config, in {SEEDS} (default: %(default)s)")
    parser.add_argument("--workers", type=WORKERS, metavar="N",
                        help=f"local worker processes, in {WORKERS} (default: all cores; 1 runs in "
                             f"this process)")
    parser.add_argument("--scheduler", metavar="tcp://HOST:PORT",
                        help="run the tasks on this Dask distributed scheduler instead")
    parser.add_argument("--max-left-out", type=MAX_LEFT_OUT, metavar="N",
                        help=f"leave-one-out sets per seed, in {MAX_LEFT_OUT} (default: each "
                             f"config's own; configs without left-out sets keep none)")
    parser.add_argument("--no-bounds", action="store_true",
                        help="train and store the weights only; evaluate the bounds later with "
                             "`ftstab bounds --from DIR`")
    parser.set_defaults(func=run)


def _split(text: str) -> list[str]:
    return [item.strip() for item in text.split(",") if item.strip()]


def parameter_value(text: str) -> Any:
    """The value of ``key=value`` in ``--stabilisers``: JSON where it parses, true/false in any case,
    else the text."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        if text.lower() in ("true", "false"):
            return text.lower() == "true"
        return text


def parse_stabilisers(text: str, classes: Mapping[str, type[Stabiliser]] | None = None, *,
                      applies: Callable[[type[Stabiliser]], bool] | None = None,
                      setting: str = "") -> list[tuple[str, dict[str, Any]]]:
    """``"none,l2sp:strength=0.1,mhloss"`` -> ``[("none", {}), ("l2sp", {"strength": 0.1, ...}), ...]``.

    ``all`` stands for plain training and every stabiliser of ``classes`` (default: the registry
    ``verify.stabilisers.STABILISERS``) that ``applies`` (default: all) at its default parameters;
    ``grid`` for plain training and every such stabiliser at each point of its declared
    ``strength_grid`` (``Stabiliser.grid_settings``), ``NAME:grid`` for one stabiliser's grid
    points; a named stabiliser that does not apply is refused, naming ``setting``.

    Each stabiliser is built once here so that bad names or parameters fail before anything runs;
    its parameters are completed with its defaults (``params()``), so a task names them all.
    """
    if classes is None:
        from verify.stabilisers import (
            STABILISERS,  # lazy: the ftstab parser stays torch-free
        )
        classes = STABILISERS
    applies = applies or (lambda cls: True)
    def expand(item: str) -> list[str]:
        if item == "all":
            return [NO_STABILISER, *(name for name, cls in classes.items() if applies(cls))]
        def points(name: str) -> list[str]:
            return [":".join([name, *(f"{key}={json.dumps(value)}" for key, value in point.items())])
                    for point in classes[name].grid_settings()]

        if item == "grid":
            return [NO_STABILISER, *(point for name, cls in classes.items() if applies(cls)
                                     for point in points(name))]
        name, _, rest = item.partition(":")
        if rest == "grid" and name in classes:
            return points(name)
        return [item]

    items = [expanded for item in _split(text) for expanded in expand(item)]
    if not items:
        raise ValueError("stabilisers: give at least one name, 'none', 'all' or 'grid'")
    chosen: list[tuple[str, dict[str, Any]]] = []
    for item in items:
        name, *assignments = item.split(":")
        if name == NO_STABILISER and not assignments:
            chosen.append((NO_STABILISER, {}))
            continue
        if name not in classes:
            raise ValueError(f"stabilisers: unknown stabiliser {name!r}; choose from none, all, grid, "
                             f"{', '.join(classes)}")
        if not applies(classes[name]):
            raise ValueError(f"stabilisers: {name} does not apply to {setting}")
        params = {}
        for assignment in assignments:
            key, equals, value = assignment.partition("=")
            if not equals or not key:
                raise ValueError(f"stabilisers: {item!r}: parameters are written NAME:key=value")
            params[key] = parameter_value(value)
        try:
            chosen.append((name, classes[name].from_params(**params).params()))
        except (ValueError, TypeError) as exc:
            raise ValueError(f"stabilisers: {name}: {str(exc).removeprefix(f'{name}: ')}") from None
    unique = {(name, canonical_params(params)): (name, params) for name, params in chosen}
    return list(unique.values())


def _stabiliser_applies(name: str, config: TrainingConfig, kind: str) -> bool:
    from verify.stabilisers import (
        STABILISERS,  # lazy: the ftstab parser stays torch-free
    )
    if config.init == "teacher_head" and STABILISERS[name]().effects().heads.n_heads > 1:
        return False  # its heads are drawn from the seeds: they cannot start at the teacher's
    return trainer_for(config, kind) in STABILISERS[name].applies_to


def _source(grid: str, specs: list[DatasetSpec], data: Path | None) -> ListedSource:
    """The datasets of ``specs``: generated in memory, or read from ``data`` after checking every
    file the sweep will read (``synth.io.check_data_folder``)."""
    if data is None:
        _check_grid_params(grid, specs)
        return GridSource(tuple(specs))
    if not (data / "index.json").is_file():
        what = "index.json not found" if data.is_dir() else "no such folder"
        raise UsageError(f"--data: {data}: {what}; write it with "
                         f"`ftstab synth --grid {grid} --out {data}`")
    available = read_index(data)
    missing = [spec.id for spec in specs if spec.id not in available]
    if missing:
        raise UsageError(f"--data: {data} lacks {len(missing)} dataset(s) of grid {grid} "
                         f"(e.g. {missing[0]}); regenerate it with `ftstab synth --grid {grid} "
                         f"--out {data}`")
    ids = tuple(spec.id for spec in specs)
    check_data_folder(data, ids)
    return FolderSource(data, ids)


def _check_grid_params(grid: str, specs: list[DatasetSpec]) -> None:
    """Check every dataset's parameters against its generator's declared constraints
    (``PARAMETER_CONSTRAINTS`` of the generator's module, ``synth.validation``) before any worker
    generates it: an out-of-range value would otherwise fail inside the task, after the results
    file was created."""
    for spec in specs:
        function = GENERATORS[spec.generator].function
        constraints = getattr(sys.modules[function.__module__], "PARAMETER_CONSTRAINTS", None)
        if constraints is None:
            continue
        try:
            validate_params(constraints, bind_params(function, spec.params))
        except ValueError as exc:
            raise UsageError(f"--grid {grid}: dataset {spec.id} ({spec.generator}): {exc}") from None


def _dataset_params(specs: list[DatasetSpec]) -> dict[str, tuple[str, dict[str, Any]]]:
    """``id -> (kind, every generator parameter)`` of a grid's datasets, without generating them."""
    return {spec.id: (spec.kind, bind_params(GENERATORS[spec.generator].function, spec.params))
            for spec in specs}


def _check_stabilisers_apply(text: str, stabilisers: list[tuple[str, dict[str, Any]]],
                             tasks: list[Task], configs: list[TrainingConfig]) -> None:
    """Refuse a stabiliser named in ``--stabilisers`` that no selected config trains with (``all``
    and ``grid`` take those that apply and are never refused)."""
    named = {item.split(":")[0] for item in _split(text)} - {"all", "grid", NO_STABILISER}
    used = {task.stabiliser for task in tasks}
    for name, _ in stabilisers:
        if name in named and name not in used:
            from verify.stabilisers import (
                STABILISERS,  # lazy: the ftstab parser stays torch-free
            )
            trainers = ", ".join(sorted(STABILISERS[name].applies_to))
            takers = [config.name for config in configs if config.with_stabilisers]
            raise UsageError(
                f"stabilisers: {name} applies to the {trainers} trainer(s) only, and none of the "
                f"selected configs trains it on this grid (configs that take stabilisers: "
                f"{', '.join(takers) or 'none selected'})")


def _check_encoders(tasks: list[Task], params: dict[str, tuple[str, dict[str, Any]]]) -> None:
    """Refuse a stabiliser that cannot act on an MLP dataset's encoder (e.g. re-initialising more
    layers than it has) before any task trains."""
    from verify.run.task import make_stabiliser
    for task in tasks:
        kind, dataset_params = params[task.dataset_id]
        if task.stabiliser == NO_STABILISER or kind != "mlp":
            continue
        try:
            make_stabiliser(task).check_encoder(len(dataset_params.get("hidden", ())))
        except ValueError as exc:
            raise UsageError(f"stabilisers: {task.stabiliser}: {exc} (dataset {task.dataset_id} "
                             f"has hidden={list(dataset_params['hidden'])})") from None


def _check_memory(tasks: list[Task], params: dict[str, tuple[str, dict[str, Any]]],
                  workers: int | None) -> None:
    """Refuse tasks that cannot fit in this machine's memory, alone or ``workers`` at once."""
    from verify.run.memory import check_memory, task_memory
    estimates = [(task.key, task_memory(task, *params[task.dataset_id])) for task in tasks]
    check_memory(estimates, workers=min(workers or os.cpu_count() or 1, len(estimates)))


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def run(args: argparse.Namespace) -> int:
    check_output_folder(args.out, "--out")
    configs = with_max_left_out(
        select_configs(settings=_split(args.settings),
                       names=None if args.configs is None else
                       [name for text in args.configs for name in _split(text)]),
        args.max_left_out)
    stabilisers = parse_stabilisers(args.stabilisers)
    specs = load_grid(args.grid)
    source = _source(args.grid, specs, args.data)
    tasks = build_tasks(source.entries(), configs, stabilisers, n_seeds=args.seeds,
                        applies=_stabiliser_applies)
    _check_stabilisers_apply(args.stabilisers, stabilisers, tasks, configs)
    if not tasks:
        raise UsageError(f"configs: none of the selected configs ({', '.join(c.name for c in configs)}) "
                         f"trains a dataset of grid {args.grid}")
    params = _dataset_params(specs)
    _check_encoders(tasks, params)
    if args.scheduler is None:  # a cluster's memory is its machines', not this one's
        _check_memory(tasks, params, args.workers)
    results = args.out / RESULTS_FILE
    if results.exists():
        with open_results(results) as store:
            check_sweep(store, tasks, args.seeds)
    client = connect_scheduler(args.scheduler) if args.scheduler else None
    try:
        created = make_output_folder(args.out, "--out")
        try:
            with results_folder_lock(args.out, "--out"):
                return _sweep(args, tasks, source, client, params)
        except UsageError:
            if created:
                _remove_if_only_lock(args.out)
            raise
    finally:
        if client is not None:
            client.close()


def _remove_if_only_lock(folder: Path) -> None:
    from verify.sweep.lock import LOCK_FILE
    if {path.name for path in folder.iterdir()} <= {LOCK_FILE}:
        for path in folder.iterdir():
            path.unlink()
        folder.rmdir()


def _sweep(args: argparse.Namespace, tasks: list[Task], source: DatasetSource, client: Any,
           params: dict[str, tuple[str, dict[str, Any]]]) -> int:
    from verify.run.cost import sweep_predictor
    # SIGTERM (a batch system's stop) ends the sweep the way Ctrl-C does: what has arrived is
    # written, the workers are ended, exit status 130.
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        # A sweep predicted to finish sooner in this process than on a pool, start-up included,
        # runs here (verify.sweep.choice); --workers stays the most the pool may use.
        summary = run_sweep(tasks, source, args.out, n_seeds=args.seeds, workers=args.workers,
                            client=client, expected_seconds=sweep_predictor(params))
        if not args.no_bounds:
            from verify.bounds.step import (
                run_bounds,  # lazy: the ftstab parser stays torch-free
            )
            # This sweep's tasks only: the folder may hold other sweeps' tasks (another grid's
            # data folder), left to their own sweep or `ftstab bounds`.
            bounds = run_bounds(args.out, source=source, workers=args.workers, client=client,
                                task_keys={task.key for task in tasks})
    finally:
        signal.signal(signal.SIGTERM, previous)
    print(f"ftstab verify: {summary.total} tasks: {summary.skipped} already done, {summary.done} run, "
          f"{summary.failed} failed, in {summary.seconds:.1f} s ({summary.executor})")
    print(f"  results:  {summary.results}")
    if not args.no_bounds:
        print(f"  bounds:   {bounds.tasks} task(s) evaluated, {bounds.rows} rows, {bounds.failed} "
              f"failed, in {bounds.seconds:.1f} s ({bounds.executor})")
    write_verdicts(args.out)
    print(f"  verdicts: {args.out / 'verdicts.md'} and {args.out / 'verdicts.json'}")
    if summary.failed:
        print(f"  {summary.failed} task(s) failed: their tracebacks are in the tasks table "
              f"(status 'failed'); re-run the same command to retry them", file=sys.stderr)
        return 1
    if not args.no_bounds and bounds.failed:
        print(f"  the bounds of {bounds.failed} task(s) failed: their tracebacks are in the "
              f"bound_evaluations table; re-run `ftstab bounds --from {args.out}`", file=sys.stderr)
        return 1
    return 0
