"""The ``ftstab`` command line: one sub-command per job, each registered by its own package."""
from __future__ import annotations

import argparse
import importlib
import os
import sys

from verify.errors import UsageError

# (sub-command, module that defines ``register(subparsers)``). Each module adds its own parser and
# sets ``func`` (args -> exit code); imports are lazy so that ``ftstab synth`` never imports torch.
SUBCOMMANDS: tuple[tuple[str, str], ...] = (
    ("synth", "synth.cli"),
    ("verify", "verify.sweep.cli"),
    ("figures", "figures.cli"),
    ("real", "verify.real.cli"),
    ("verdicts", "verify.verdicts.cli"),
    ("freeze", "verify.golden.freeze_cli"),
    ("check", "verify.golden.check_cli"),
    ("report", "figures.report.cli"),
    ("check-bound", "theory.testing.cli"),
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ftstab",
        description="Fine-tuning stability suite: generate certified datasets, train and measure "
                    "stability at scale, check the bounds, draw the figures.")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, module in SUBCOMMANDS:
        try:
            importlib.import_module(module).register(subparsers)
        except ModuleNotFoundError as exc:
            if exc.name is None or not module.startswith(exc.name):
                raise
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (UsageError, ValueError) as exc:
        if os.environ.get("FTSTAB_DEBUG"):
            raise
        print(f"ftstab {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"ftstab {args.command}: interrupted; finished work is saved, re-run to resume",
              file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
