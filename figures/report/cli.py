"""``ftstab report --from DIR --out REPORT [--figures FIGDIR]``."""
from __future__ import annotations

import argparse
from pathlib import Path

from figures.report.build import write_report
from verify.errors import UsageError
from verify.store.read import open_results_option


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``report`` sub-command to the ``ftstab`` parser."""
    parser = subparsers.add_parser(
        "report", help="write a self-contained HTML report of a sweep (REPORT/index.html)",
        description="One page to share: claims and verdict summary, bounds (violations, vacuous "
                    "share, tightness), corollaries with their tau and CI, stabiliser tables, every "
                    "figure with its reading and CSV, the datasets' cards (sortable, searchable) "
                    "and the run's provenance. Opens from disk; nothing is fetched from a network.")
    parser.add_argument("--from", dest="results_dir", type=Path, required=True, metavar="DIR",
                        help="the folder of a sweep (ftstab verify --out), holding results.sqlite")
    parser.add_argument("--out", type=Path, required=True, metavar="REPORT",
                        help="the report folder to write (index.html and figures/)")
    parser.add_argument("--figures", type=Path, metavar="FIGDIR",
                        help="copy the figures of `ftstab figures --out FIGDIR` (default: draw them)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    with open_results_option(args.results_dir, "--from"):  # missing, damaged, foreign: one line
        pass
    if args.out.exists() and not args.out.is_dir():
        raise UsageError(f"--out: {args.out} exists and is not a folder")
    if args.figures is not None and not (args.figures / "index.md").is_file():
        raise UsageError(f"--figures: no index.md in {args.figures}; draw the figures with "
                         "`ftstab figures` or leave --figures out")
    index = write_report(args.results_dir, args.out, figures_dir=args.figures)
    print(f"report: {index} (open it in a browser)")
    return 0
