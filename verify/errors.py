"""What a bad input is: errors the command line reports as one line (exit code 2) instead of a
traceback, the declared range of every numeric option and parameter, and the check that an output
folder can be written."""
from __future__ import annotations

import argparse
import math
import numbers
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any


class UsageError(Exception):
    """Bad input from the user: printed as one line, exit code 2, nothing written."""


@dataclass(frozen=True)
class NumberRange:
    """The declared range of a number: ``[low, high]``, either end open, integers or finite reals.

    One vocabulary for command-line options (an instance is an argparse ``type``: it parses the
    option's text and refuses it in one line naming the range) and for Python parameters
    (:meth:`check`). :meth:`violations` lists values just outside the range, from which the tests
    derive their bad inputs.
    """

    low: float
    high: float = math.inf
    low_open: bool = False
    high_open: bool = False
    integer: bool = False

    def __str__(self) -> str:
        def bound(value: float) -> str:
            return "inf" if value == math.inf else f"{value:g}" if not self.integer else str(int(value))
        return (f"{'(' if self.low_open else '['}{bound(self.low)}, {bound(self.high)}"
                f"{')' if self.high_open or self.high == math.inf else ']'}")

    @property
    def kind(self) -> str:
        return "an integer" if self.integer else "a finite number"

    def contains(self, value: Any) -> bool:
        """Whether ``value`` is a number of the right kind inside the range (bools are not numbers)."""
        if isinstance(value, bool) or not isinstance(
                value, numbers.Integral if self.integer else numbers.Real):
            return False
        if not self.integer and not math.isfinite(value):
            return False
        above_low = value > self.low if self.low_open else value >= self.low
        below_high = value < self.high if self.high_open else value <= self.high
        return above_low and below_high

    def check(self, name: str, value: Any) -> Any:
        """Return ``value`` if it lies in the range, else raise ValueError naming ``name`` and the range."""
        if not self.contains(value):
            raise ValueError(f"{name} must be {self.kind} in {self}, got {value!r}")
        return value

    def __call__(self, text: str) -> int | float:
        """Parse a command-line option's text (argparse ``type``)."""
        try:
            value: int | float = int(text) if self.integer else float(text)
        except ValueError:
            value = math.nan
        if not self.contains(value):
            raise argparse.ArgumentTypeError(f"must be {self.kind} in {self}, got {text!r}")
        return value

    def violations(self) -> list[Any]:
        """Values just outside the range, a non-finite value and a value of the wrong type."""
        values: list[Any] = []
        if self.integer:
            values.append(int(self.low) if self.low_open else int(self.low) - 1)
            if self.high != math.inf:
                values.append(int(self.high) if self.high_open else int(self.high) + 1)
            values.append(float(self.low) + 0.5 if math.isfinite(self.low) else 0.5)
        else:
            values.append(self.low if self.low_open else math.nextafter(self.low, -math.inf))
            if self.high != math.inf:
                values.append(self.high if self.high_open else math.nextafter(self.high, math.inf))
            values.append(math.inf)
            values.append(math.nan)
        values.append("many")
        return values


def check_output_folder(path: Path, option: str) -> None:
    """Refuse (UsageError) an output folder that cannot be made and written, writing nothing.

    ``path`` must be a folder, or not exist yet below a folder where this process may create
    entries. This is the cheap early check; creating the folder (:func:`make_output_folder`)
    still reports what the operating system refuses.
    """
    existing = path
    while not existing.exists():
        if existing.parent == existing:
            break
        existing = existing.parent
    if existing.exists() and not existing.is_dir():
        what = "exists and is not a folder" if existing == path else f"lies under {existing}, a file"
        raise UsageError(f"{option}: {path} {what}")
    effective = os.access in os.supports_effective_ids
    if not os.access(existing, os.W_OK | os.X_OK, effective_ids=effective):
        where = "" if existing == path else f" (its nearest existing folder {existing} is not)"
        raise UsageError(f"{option}: {path} is not writable{where}")


def make_output_folder(path: Path, option: str) -> bool:
    """Create ``path`` (and missing parents); True if it was created. One-line UsageError on failure."""
    check_output_folder(path, option)
    if path.is_dir():
        return False
    try:
        path.mkdir(parents=True)
    except FileExistsError:
        return False
    except OSError as exc:
        raise UsageError(f"{option}: cannot create {path}: {exc.strerror or exc}") from None
    return True
