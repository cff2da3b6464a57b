"""``ftstab freeze --from DIR --out golden.json``: record the numbers that matter of a sweep."""
from __future__ import annotations

import argparse
import numbers
from pathlib import Path

from synth.validation import Interval

from verify.errors import UsageError
from verify.golden.golden_file import write_golden
from verify.golden.numbers import RTOL, golden_numbers
from verify.store.read import open_results_option


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``freeze`` sub-command to the ``ftstab`` parser."""
    parser = subparsers.add_parser(
        "freeze", help="write a golden file of a sweep's verdicts and key numbers",
        description="Record every claim's and corollary's statistic and verdict, the bounds' "
                    "violations, vacuous shares and tightness quantiles, the rank correlations and "
                    "T1's cells, each with its tolerance (half its bootstrap CI, or --rtol for "
                    "deterministic numbers; counts and verdicts exact), plus the environment. "
                    "`ftstab check` compares a later sweep with it.")
    parser.add_argument("--from", dest="results_dir", type=Path, required=True, metavar="DIR",
                        help="the folder of a sweep (ftstab verify --out), holding results.sqlite")
    parser.add_argument("--out", type=Path, required=True, metavar="GOLDEN",
                        help="the golden JSON file to write")
    parser.add_argument("--rtol", type=Interval(numbers.Real, 0.0, 1.0, "left"), default=RTOL,
                        help="relative tolerance of deterministic numbers (default: %(default)g)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    with open_results_option(args.results_dir, "--from"):  # missing, damaged, foreign: one line
        pass
    if args.out.is_dir():
        raise UsageError(f"--out: {args.out} is a folder; give the golden file's path")
    if not 0 <= args.rtol < 1:
        raise UsageError(f"--rtol must be in [0, 1), got {args.rtol:g}")
    numbers = golden_numbers(args.results_dir, rtol=args.rtol)
    write_golden(args.out, numbers, source=args.results_dir, rtol=args.rtol)
    verdicts = sum(entry.kind == "verdict" for entry in numbers)
    print(f"froze {len(numbers)} numbers ({verdicts} verdicts) of {args.results_dir} in {args.out}")
    return 0
