"""``ftstab check --from DIR --golden golden.json``: has anything moved since the golden file?"""
from __future__ import annotations

import argparse
from pathlib import Path

from verify.golden.compare import FAILING, compare, render_table, summary_line
from verify.golden.golden_file import read_golden
from verify.golden.numbers import golden_numbers
from verify.store.read import open_results_option


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``check`` sub-command to the ``ftstab`` parser."""
    parser = subparsers.add_parser(
        "check", help="compare a sweep with a golden file (exit 1 on drift or a changed verdict)",
        description="Recompute the numbers `ftstab freeze` records and compare each with the "
                    "golden file: exit 1 when one drifts beyond its tolerance, a count or verdict "
                    "changes or a number is missing; numbers the golden file lacks are listed as new.")
    parser.add_argument("--from", dest="results_dir", type=Path, required=True, metavar="DIR",
                        help="the folder of a sweep (ftstab verify --out), holding results.sqlite")
    parser.add_argument("--golden", type=Path, required=True, metavar="GOLDEN",
                        help="a golden file written by `ftstab freeze`")
    parser.add_argument("--all", action="store_true",
                        help="list every number (default: only those not within tolerance)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    with open_results_option(args.results_dir, "--from"):  # missing, damaged, foreign: one line
        pass
    header, golden = read_golden(args.golden)
    rows = compare(golden, golden_numbers(args.results_dir, rtol=header.get("rtol", 0.0)))
    print(render_table(rows, only_failing=not args.all))
    print(summary_line(rows))
    return 1 if any(row.status in FAILING for row in rows) else 0
