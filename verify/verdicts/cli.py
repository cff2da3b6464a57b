"""``ftstab verdicts --from DIR``: judge a finished (or partial) sweep's results again."""
from __future__ import annotations

import argparse
from pathlib import Path

from verify.errors import UsageError, check_output_folder
from verify.store.read import open_results_option
from verify.verdicts.claims import (
    README_BEGIN,
    README_END,
    claim_rows,
    results_facts,
    rewrite_readme,
)
from verify.verdicts.write import (
    CLAIMS_JSON,
    JSON_FILE,
    MARKDOWN_FILE,
    write_atomically,
    write_verdicts,
)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``verdicts`` sub-command to the ``ftstab`` parser."""
    parser = subparsers.add_parser(
        "verdicts", help="write DIR/verdicts.json and DIR/verdicts.md from DIR/results.sqlite",
        description="Check every bound against the measured instability (violations, tightness), "
                    "test the predicted trends (granulated Kendall tau) and the rank correlation "
                    "across datasets; writes DIR/verdicts.json, DIR/verdicts.md and the claims "
                    "scorecard DIR/claims.json, DIR/claims.md.")
    parser.add_argument("--from", dest="results_dir", type=Path, required=True, metavar="DIR",
                        help="the folder of a sweep (ftstab verify --out), holding results.sqlite")
    parser.add_argument("--readme", type=Path, metavar="FILE",
                        help="also rewrite the claims block of FILE (between its "
                             "'<!-- claims:begin' and '<!-- claims:end -->' markers) from the scorecard")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    check_output_folder(args.results_dir, "--from")  # the verdicts are written next to the results
    with open_results_option(args.results_dir, "--from"):  # missing, damaged, foreign: one line
        pass
    if args.readme is not None:
        if not args.readme.is_file():
            raise UsageError(f"--readme: no file at {args.readme}")
        text = args.readme.read_text(encoding="utf-8")
        if README_BEGIN not in text or README_END not in text:
            raise UsageError(f"--readme: {args.readme} has no block between {README_BEGIN!r} and "
                             f"{README_END!r}")
    verdicts = write_verdicts(args.results_dir)
    summary = verdicts["summary"]
    if args.readme is not None:
        write_atomically(args.readme, rewrite_readme(text, claim_rows(verdicts), results_facts(verdicts)))
    measured = summary["corollaries_measured"]
    print(f"{summary['violations']} violation(s) where assumptions hold; corollaries (measured): "
          f"{measured['pass']} passed, {measured['fail']} failed, {measured['inconclusive']} "
          f"inconclusive; wrote {args.results_dir / JSON_FILE}, {args.results_dir / MARKDOWN_FILE} and "
          f"{args.results_dir / CLAIMS_JSON}" + (f"; rewrote the claims block of {args.readme}"
                                                 if args.readme is not None else ""))
    return 0
