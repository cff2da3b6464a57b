"""The ``ftstab`` command line: one sub-command per job, each registered by its own package."""
from __future__ import annotations

import argparse
import importlib
import os
import sys
from typing import NoReturn

from verify.errors import UsageError
from verify.plugins import LoadPlugins, load_plugins

# (sub-command, module that defines ``register(subparsers)``). Each module adds its own parser and
# sets ``func`` (args -> exit code); imports are lazy so that ``ftstab synth`` never imports torch.
SUBCOMMANDS: tuple[tuple[str, str], ...] = (
    ("synth", "synth.cli"),
    ("verify", "verify.sweep.cli"),
    ("bounds", "verify.bounds.cli"),
    ("export", "verify.store.cli"),
    ("figures", "figures.cli"),
    ("real", "verify.real.cli"),
    ("verdicts", "verify.verdicts.cli"),
    ("freeze", "verify.golden.freeze_cli"),
    ("check", "verify.golden.check_cli"),
    ("report", "figures.report.cli"),
    ("check-bound", "theory.testing.cli"),
    ("list", "verify.listing"),
)


class OneLineParser(argparse.ArgumentParser):
    """argparse whose errors are one line on stderr (exit status 2), naming the option and the rule."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {one_line(message)} (see `{self.prog} --help`)\n")


def one_line(message: object) -> str:
    """``message`` as one line (a multi-line message's lines joined by '; ')."""
    return "; ".join(line.strip() for line in str(message).splitlines() if line.strip())


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="ftstab",
        description="Fine-tuning stability suite: generate certified datasets, train and measure "
                    "stability at scale, check the bounds, draw the figures.")
    parser.add_argument("--plugins", metavar="MODULE[,MODULE]", action=LoadPlugins,
                        help="import these plug-in modules (bounds, stabilisers, generators, "
                             "figures) before the command runs; installed entry points are always loaded")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, module in SUBCOMMANDS:
        try:
            importlib.import_module(module).register(subparsers)
        except ModuleNotFoundError as exc:
            if exc.name is None or not module.startswith(exc.name):
                raise
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run ``ftstab``; returns the exit status.

    Bad input (UsageError, ValueError, an option argparse refuses) is one line on stderr and exit
    status 2; a file-system error (OSError) or running out of memory is one line and 1; any other
    error is one line naming its type and 1. ``FTSTAB_DEBUG=1`` lets every error raise with its
    traceback instead.
    """
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        if exc.code:  # argparse has printed its one line
            return 2
        raise  # --help
    debug = bool(os.environ.get("FTSTAB_DEBUG"))
    prefix = f"ftstab {args.command}: error:"
    try:
        load_plugins(args.plugins)
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print(f"ftstab {args.command}: interrupted; finished work is saved, re-run to resume",
              file=sys.stderr)
        return 130
    except (UsageError, ValueError) as exc:
        if debug:
            raise
        print(f"{prefix} {one_line(exc)}", file=sys.stderr)
        return 2
    except OSError as exc:
        if debug:
            raise
        where = f": {exc.filename}" if exc.filename else ""
        print(f"{prefix} {exc.strerror or one_line(exc)}{where}", file=sys.stderr)
        return 1
    except MemoryError:
        if debug:
            raise
        print(f"{prefix} out of memory (the machine has {_memory_text()}); use smaller sizes",
              file=sys.stderr)
        return 1
    except Exception as exc:  # a bug: one line here, the traceback with FTSTAB_DEBUG=1
        if debug:
            raise
        print(f"{prefix} internal error {type(exc).__name__}: {one_line(exc)} "
              f"(FTSTAB_DEBUG=1 shows the traceback)", file=sys.stderr)
        return 1


def _memory_text() -> str:
    from verify.resources import machine_memory, format_bytes
    return f"{format_bytes(machine_memory())} of memory"


if __name__ == "__main__":
    sys.exit(main())
