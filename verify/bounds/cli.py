"""``ftstab bounds``: evaluate (or re-evaluate) bounds on a stored sweep without training."""
from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path

from verify.store import open_results
from verify.sweep.cli import WORKERS
from verify.sweep.executors import connect_scheduler
from verify.sweep.sources import FolderSource


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``bounds`` sub-command to the ``ftstab`` parser."""
    parser = subparsers.add_parser(
        "bounds", help="evaluate bounds on the stored weights of a results folder (no training)",
        description="Read the weights `ftstab verify` stored for every task and evaluate the "
                    "registered bounds (or those named) on their left-out runs; write the rows into "
                    "DIR/results.sqlite. Resumable: bounds already evaluated on a task are skipped "
                    "unless --force. A bound registered after the sweep is evaluated in one command.")
    parser.add_argument("--from", dest="source", required=True, type=Path, metavar="DIR",
                        help="results folder written by `ftstab verify --out DIR`")
    parser.add_argument("--bound", action="append", metavar="NAME",
                        help="a bound of theory.bounds.BOUNDS (repeat, or comma-separate; default: all)")
    parser.add_argument("--force", action="store_true",
                        help="re-evaluate bounds already evaluated (their rows are replaced)")
    parser.add_argument("--data", type=Path, metavar="DIR",
                        help="the `ftstab synth` folder the sweep read (default: regenerate each "
                             "dataset from its stored card)")
    parser.add_argument("--workers", type=WORKERS, metavar="N",
                        help=f"local worker processes, in {WORKERS} (default: all cores; 1 runs in "
                             f"this process)")
    parser.add_argument("--scheduler", metavar="tcp://HOST:PORT",
                        help="run on this Dask distributed scheduler (its workers must see DIR)")
    parser.set_defaults(func=run)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def run(args: argparse.Namespace) -> int:
    if args.workers is not None and args.workers < 1:
        raise ValueError(f"workers: must be >= 1, got {args.workers}")
    names = (None if args.bound is None
             else [name.strip() for item in args.bound for name in item.split(",") if name.strip()])
    source = None
    if args.data is not None:
        with open_results(args.source) as results:
            ids = tuple(results.cards())
        if not (args.data / "index.json").is_file():
            raise ValueError(f"data: {args.data / 'index.json'} not found")
        source = FolderSource(args.data, ids)
    from verify.bounds.step import (
        run_bounds,  # lazy: the ftstab parser stays torch-free
    )
    client = connect_scheduler(args.scheduler) if args.scheduler else None
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        summary = run_bounds(args.source, bounds=names, source=source, force=args.force,
                             workers=args.workers, client=client)
    finally:
        signal.signal(signal.SIGTERM, previous)
        if client is not None:
            client.close()
    print(f"ftstab bounds: {summary.tasks} task(s) with bounds to evaluate: {summary.done} done "
          f"({summary.rows} rows), {summary.failed} failed, in {summary.seconds:.1f} s "
          f"({summary.executor})")
    if summary.failed:
        print(f"  {summary.failed} task(s) failed: their tracebacks are in the bound_evaluations "
              f"table (status 'failed'); re-run the same command to retry them", file=sys.stderr)
        return 1
    return 0
