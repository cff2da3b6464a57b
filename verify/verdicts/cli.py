"""``ftstab verdicts --from DIR``: judge a finished (or partial) sweep's results again."""
from __future__ import annotations

import argparse
from pathlib import Path

from verify.errors import check_output_folder
from verify.store.read import open_results_option
from verify.verdicts.write import JSON_FILE, MARKDOWN_FILE, write_verdicts


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``verdicts`` sub-command to the ``ftstab`` parser."""
    parser = subparsers.add_parser(
        "verdicts", help="write DIR/verdicts.json and DIR/verdicts.md from DIR/results.sqlite",
        description="Check every bound against the measured instability (violations, tightness), "
                    "test the predicted trends (granulated Kendall tau) and the rank correlation "
                    "across datasets; writes DIR/verdicts.json and DIR/verdicts.md.")
    parser.add_argument("--from", dest="results_dir", type=Path, required=True, metavar="DIR",
                        help="the folder of a sweep (ftstab verify --out), holding results.sqlite")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    check_output_folder(args.results_dir, "--from")  # the verdicts are written next to the results
    with open_results_option(args.results_dir, "--from"):  # missing, damaged, foreign: one line
        pass
    summary = write_verdicts(args.results_dir)["summary"]
    measured = summary["corollaries_measured"]
    print(f"{summary['violations']} violation(s) where assumptions hold; corollaries (measured): "
          f"{measured['pass']} passed, {measured['fail']} failed, {measured['inconclusive']} "
          f"inconclusive; wrote {args.results_dir / JSON_FILE} and {args.results_dir / MARKDOWN_FILE}")
    return 0
