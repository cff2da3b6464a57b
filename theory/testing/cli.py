"""``ftstab check-bound MODULE:OBJECT``: run the property battery on a user's bound."""
from __future__ import annotations

import argparse
import importlib
import numbers
import os
import sys

from synth.validation import Interval


# hypothesis examples per property: 10^4 already takes minutes per bound
EXAMPLES = Interval(numbers.Integral, 1, 10_000)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``check-bound`` sub-command to the ``ftstab`` parser."""
    parser = subparsers.add_parser(
        "check-bound", help="property-check a bound (sound, assumptions, pure, monotone)",
        description="Draw certified instances (separable data, least-squares tasks, trained pairs "
                    "with their exact stability) and check that the bound holds wherever its "
                    "assumptions do, that its assumption check fires on instances built to violate "
                    "it, that its value is a pure function of the constants and monotone where its "
                    "docstring says so. Prints a table and the smallest counterexample of each "
                    "failure; exit 1 when one fails.")
    parser.add_argument("target", metavar="MODULE:OBJECT",
                        help="e.g. mybounds:MY_BOUND, or theory.bounds.theorem_f:THEOREM_F; a class "
                             "is instantiated without arguments; MODULE is imported from the "
                             "current folder too")
    parser.add_argument("--examples", type=EXAMPLES, default=60, metavar="N",
                        help="hypothesis examples per property (default: %(default)s)")
    parser.add_argument("--explore", action="store_true",
                        help="draw new random examples instead of the reproducible default ones")
    parser.set_defaults(func=run)


def load_bound(target: str):
    """The object named by ``MODULE:OBJECT`` (a class is instantiated)."""
    module_name, _, attribute = target.partition(":")
    if not module_name or not attribute:
        raise ValueError(f"MODULE:OBJECT: expected e.g. mybounds:MY_BOUND, got {target!r}")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ValueError(f"MODULE:OBJECT: cannot import {module_name!r} ({exc})") from None
    try:
        bound = getattr(module, attribute)
    except AttributeError:
        raise ValueError(f"MODULE:OBJECT: {module_name} has no {attribute!r}") from None
    return bound() if isinstance(bound, type) else bound


def run(args: argparse.Namespace) -> int:
    from theory.testing.battery import check_bound

    if args.examples < 1:
        raise ValueError(f"--examples must be >= 1, got {args.examples}")
    report = check_bound(load_bound(args.target), max_examples=args.examples,
                         derandomize=not args.explore)
    print(report.table())
    failed = sum(result.held is False for result in report.results)
    print(f"{report.bound}: {len(report.results) - failed} of {len(report.results)} properties held"
          + (f", {failed} FAILED" if failed else ""))
    return 0 if report.ok else 1
