"""``ftstab export``: one table of a results folder as CSV or JSON lines, to a file or stdout."""
from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path

from synth.atomic import atomic_target
from verify.store.export import FORMATS, TABLES, write_export
from verify.store.read import open_results


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``export`` sub-command to the ``ftstab`` parser."""
    parser = subparsers.add_parser(
        "export", help="write a table of a results folder as CSV or JSON lines",
        description="Write the runs, bounds or tasks table of DIR/results.sqlite as CSV or JSON lines "
                    "(docs/results-schema.md describes every column); bounds rows carry their run's "
                    "coordinates.")
    parser.add_argument("--from", dest="source", required=True, type=Path, metavar="DIR",
                        help="results folder written by `ftstab verify --out DIR`")
    parser.add_argument("--table", required=True, choices=TABLES)
    parser.add_argument("--format", default="csv", choices=FORMATS, help="default: %(default)s")
    parser.add_argument("--out", type=Path, metavar="FILE",
                        help="output file, written atomically (default: standard output)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.out is not None and args.out.is_dir():
        raise ValueError(f"out: {args.out} is a folder; give a file name")
    with open_results(args.source) as results:
        if args.out is None:
            count = write_export(results, args.table, args.format, sys.stdout)
        else:
            with atomic_target(args.out) as handle:
                text = io.TextIOWrapper(handle, encoding="utf-8", newline="")
                count = write_export(results, args.table, args.format, text)
                text.flush()
                text.detach()
            print(f"ftstab export: {count} {args.table} row(s) to {args.out}", file=sys.stderr)
    return 0
