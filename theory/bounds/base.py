"""The Bound protocol (docs/internals.md §2) and the run facts that several bounds share."""
from __future__ import annotations

from typing import Protocol, runtime_checkable

from theory.context import RunContext

# Assumption tolerance: η·β ≤ 1 is judged with this relative slack, so a step size set to exactly
# 1/β from a float64 eigenvalue estimate is not reported as violating it.
RTOL = 1e-9


@runtime_checkable
class Bound(Protocol):
    """A stability bound: a function of named constants, their estimators and its assumptions."""

    name: str
    setting: str
    measure: str
    constants: tuple[str, ...]

    def estimate_constants(self, run: RunContext) -> dict[str, float]: ...

    def value(self, **constants: float) -> float: ...

    def assumptions(self, **constants: float) -> list[str]: ...


def flag(condition: bool) -> float:
    """Indicator constants travel as floats (constants are a dict of floats)."""
    return 1.0 if condition else 0.0
