"""``ftstab verify``: train and measure every task of a grid into DIR/results.sqlite, then judge.

Every input is checked before anything is written: an unknown grid, config or stabiliser, a bad
worker count, a data folder that lacks the grid's datasets or an unreachable scheduler is one line on
stderr, exit status 2, and no file.
"""
from __future__ import annotations

import argparse
import json
import signal
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from synth.grids import load_grid
from verify.configs import CONFIGS, SETTINGS, select_configs
from verify.run.task import NO_STABILISER, canonical_params, trainer_for
from verify.store import RESULTS_FILE, ResultStore
from verify.sweep.executors import connect_scheduler
from verify.sweep.plan import build_tasks, check_sweep, with_max_left_out
from verify.sweep.runner import run_sweep
from verify.sweep.sources import FolderSource, GridSource
from verify.verdicts.write import write_verdicts

DEFAULT_SEEDS = 3


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``verify`` sub-command to the ``ftstab`` parser."""
    parser = subparsers.add_parser(
        "verify", help="train every task of a grid, measure stability, evaluate the bounds",
        description="Cross a grid's datasets with training configs, stabilisers and seeds; train "
                    "every leave-one-out set of a task as one batched program; write one row per "
                    "run into DIR/results.sqlite (re-running resumes, failed tasks are retried); "
                    "then write DIR/verdicts.json and DIR/verdicts.md.")
    parser.add_argument("--grid", required=True, metavar="NAME|PATH", help="a named grid or a grid .toml")
    parser.add_argument("--out", required=True, type=Path, metavar="DIR", help="results folder")
    parser.add_argument("--data", type=Path, metavar="DIR",
                        help="datasets written by `ftstab synth --grid NAME --out DIR` "
                             "(default: generate them in memory)")
    parser.add_argument("--settings", metavar="LIST", default=",".join(SETTINGS),
                        help="comma-separated subset of head,full (default: both)")
    parser.add_argument("--configs", metavar="LIST",
                        help=f"comma-separated config names (default: all of {', '.join(CONFIGS)})")
    parser.add_argument("--stabilisers", metavar="LIST", default=NO_STABILISER,
                        help="comma-separated stabilisers, each NAME or NAME:key=value[:key=value], "
                             "or 'all' (plain training plus every stabiliser at its defaults); "
                             "'none' is plain training (default)")
    parser.add_argument("--seeds", type=int, default=DEFAULT_SEEDS, metavar="K",
                        help="seeds per stochastic config (default: %(default)s)")
    parser.add_argument("--workers", type=int, metavar="N",
                        help="local worker processes (default: all cores; 1 runs in this process)")
    parser.add_argument("--scheduler", metavar="tcp://HOST:PORT",
                        help="run the tasks on this Dask distributed scheduler instead")
    parser.add_argument("--max-left-out", type=int, metavar="N",
                        help="leave-one-out sets per seed (default: each config's own)")
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


def parse_stabilisers(text: str, classes: Mapping[str, Any] | None = None, *,
                      applies: Callable[[Any], bool] | None = None,
                      setting: str = "") -> list[tuple[str, dict[str, Any]]]:
    """``"none,l2sp:strength=0.1,mhloss"`` -> ``[("none", {}), ("l2sp", {"strength": 0.1, ...}), ...]``.

    ``all`` stands for plain training and every stabiliser of ``classes`` (default: the registry
    ``verify.stabilisers.STABILISERS``) that ``applies`` (default: all) at its default parameters;
    a named stabiliser that does not apply is refused, naming ``setting``.

    Each stabiliser is built once here so that bad names or parameters fail before anything runs;
    its parameters are completed with its defaults (``params()``), so a task names them all.
    """
    if classes is None:
        from verify.stabilisers import (
            STABILISERS,  # lazy: the ftstab parser stays torch-free
        )
        classes = STABILISERS
    applies = applies or (lambda cls: True)
    items = [expanded for item in _split(text)
             for expanded in ([NO_STABILISER, *(name for name, cls in classes.items() if applies(cls))]
                              if item == "all" else [item])]
    if not items:
        raise ValueError("stabilisers: give at least one name, 'none' or 'all'")
    chosen = []
    for item in items:
        name, *assignments = item.split(":")
        if name == NO_STABILISER and not assignments:
            chosen.append((NO_STABILISER, {}))
            continue
        if name not in classes:
            raise ValueError(f"stabilisers: unknown stabiliser {name!r}; choose from none, all, "
                             f"{', '.join(classes)}")
        if not applies(classes[name]):
            raise ValueError(f"stabilisers: {name} does not apply to {setting}")
        params = {}
        for assignment in assignments:
            key, equals, value = assignment.partition("=")
            if not equals or not key:
                raise ValueError(f"stabilisers: {item!r}: parameters are written NAME:key=value")
            params[key] = parameter_value(value)
        chosen.append((name, classes[name].from_params(**params).params()))
    unique = {(name, canonical_params(params)): (name, params) for name, params in chosen}
    return list(unique.values())


def _stabiliser_applies(name: str, config: Any, kind: str) -> bool:
    from verify.stabilisers import (
        STABILISERS,  # lazy: the ftstab parser stays torch-free
    )
    return trainer_for(config, kind) in STABILISERS[name].applies_to


def _source(grid: str, data: Path | None) -> Any:
    specs = load_grid(grid)
    if data is None:
        return GridSource(tuple(specs))
    index_path = data / "index.json"
    if not index_path.is_file():
        raise ValueError(f"data: {index_path} not found; write it with "
                         f"`ftstab synth --grid {grid} --out {data}`")
    available = {entry["id"] for entry in json.loads(index_path.read_text())}
    missing = [spec.id for spec in specs if spec.id not in available]
    if missing:
        raise ValueError(f"data: {data} lacks {len(missing)} dataset(s) of grid {grid} "
                         f"(e.g. {missing[0]}); regenerate it with `ftstab synth --grid {grid} --out {data}`")
    return FolderSource(data, tuple(spec.id for spec in specs))


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def run(args: argparse.Namespace) -> int:
    if args.workers is not None and args.workers < 1:
        raise ValueError(f"workers: must be >= 1, got {args.workers}")
    if args.seeds < 1:
        raise ValueError(f"seeds: must be >= 1, got {args.seeds}")
    if args.out.exists() and not args.out.is_dir():
        raise ValueError(f"out: {args.out} exists and is not a folder")
    configs = with_max_left_out(
        select_configs(settings=_split(args.settings),
                       names=None if args.configs is None else _split(args.configs)),
        args.max_left_out)
    stabilisers = parse_stabilisers(args.stabilisers)
    source = _source(args.grid, args.data)
    tasks = build_tasks(source.entries(), configs, stabilisers, n_seeds=args.seeds,
                        applies=_stabiliser_applies)
    if not tasks:
        raise ValueError(f"configs: none of the selected configs trains a dataset of grid {args.grid}")
    results = args.out / RESULTS_FILE
    if results.exists():
        with ResultStore(results, readonly=True) as store:
            check_sweep(store, tasks, args.seeds)
    client = connect_scheduler(args.scheduler) if args.scheduler else None
    # SIGTERM (a batch system's stop) ends the sweep the way Ctrl-C does: what has arrived is
    # written, the workers are ended, exit status 130.
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        summary = run_sweep(tasks, source, args.out, n_seeds=args.seeds, workers=args.workers,
                            client=client)
    finally:
        signal.signal(signal.SIGTERM, previous)
        if client is not None:
            client.close()
    print(f"ftstab verify: {summary.total} tasks: {summary.skipped} already done, {summary.done} run, "
          f"{summary.failed} failed, in {summary.seconds:.1f} s")
    print(f"  results:  {summary.results}")
    write_verdicts(args.out)
    print(f"  verdicts: {args.out / 'verdicts.md'} and {args.out / 'verdicts.json'}")
    if summary.failed:
        print(f"  {summary.failed} task(s) failed: their tracebacks are in the tasks table "
              f"(status 'failed'); re-run the same command to retry them", file=sys.stderr)
        return 1
    return 0
