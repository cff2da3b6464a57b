"""``ftstab figures --from DIR --out FIGDIR [--only F1,F5,...]``."""
from __future__ import annotations

import argparse
from pathlib import Path

from figures.output import Drawn
from figures.registry import parse_only, render_figures, write_index
from verify.errors import check_output_folder, make_output_folder
from verify.store.read import open_results_option


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``figures`` sub-command to the ``ftstab`` parser."""
    parser = subparsers.add_parser(
        "figures", help="draw the figures and table T1 from a results database",
        description="Draw F1-F10 and table T1 from the results of `ftstab verify`. "
                    "Each figure is written as PNG, PDF and the CSV of what it plots; figures "
                    "whose data is absent are skipped with a note in FIGDIR/index.md.")
    parser.add_argument("--from", dest="source", required=True, metavar="DIR",
                        help="folder with results.sqlite (or the SQLite file itself)")
    parser.add_argument("--out", required=True, metavar="FIGDIR", help="folder for the figures")
    parser.add_argument("--only", metavar="KEYS",
                        help="comma-separated subset, e.g. F1,F5,T1 (default: all)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Validate the arguments, then draw; returns the exit code."""
    keys = parse_only(args.only)
    out_dir = Path(args.out)
    check_output_folder(out_dir, "--out")
    connection = open_results_option(args.source, "--from").connection
    try:
        make_output_folder(out_dir, "--out")
        outcomes = render_figures(connection, out_dir, keys)
    finally:
        connection.close()
    index = write_index(out_dir, outcomes, source=Path(args.source))
    for outcome in outcomes:
        if isinstance(outcome, Drawn):
            print(f"{outcome.key}: {', '.join(path.name for path in outcome.files)}")
        else:
            print(f"{outcome.key}: skipped ({outcome.reason})")
    print(f"index: {index}")
    return 0
