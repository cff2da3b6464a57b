"""The Bound protocol (docs/internals.md §2) and the run facts that several bounds share."""
from __future__ import annotations

import math
from typing import Protocol, runtime_checkable

from theory.context import RunContext

# Assumption tolerance: η·β ≤ 1 is judged with this relative slack, so a step size set to exactly
# 1/β from a float64 eigenvalue estimate is not reported as violating it.
RTOL = 1e-9

# The trivial bound of each measure (docs/theory.md §1): a value at or above it says nothing. The
# distance of two unit vectors is at most 2; parameter distances and loss differences have no
# scale-free trivial value (a diverging run has none at all), so they have None.
TRIVIAL = {"head_direction_stability": 2.0, "parameter_stability": None,
           "pointwise_hypothesis_stability": None}


@runtime_checkable
class Bound(Protocol):
    """A stability bound: a function of named constants, their estimators and its assumptions.

    ``value`` is the sum of ``terms`` (+inf where an assumption other than ``quadratic_objective``
    fails); ``trivial`` is the trivial bound of ``measure`` (None if it has none), and
    ``is_vacuous(value)`` says whether a value is at or above it. ``a_posteriori`` bounds are computed
    from the trained weights themselves and hold for any weights, so they are consistency checks of
    the solvers and measurements, not evidence that training behaves as a theorem predicts.
    """

    name: str
    setting: str
    measure: str
    a_posteriori: bool

    @property
    def constants(self) -> tuple[str, ...]: ...

    @property
    def trivial(self) -> float | None: ...

    def estimate_constants(self, run: RunContext) -> dict[str, float]: ...

    def value(self, **constants: float) -> float: ...

    def terms(self, **constants: float) -> dict[str, float]: ...

    def assumptions(self, **constants: float) -> list[str]: ...

    def is_vacuous(self, value: float) -> bool: ...


class BoundTerms:
    """Shared behaviour of the bounds: the value is the sum of the terms, vacuity against ``trivial``.

    Subclasses define ``measure``, ``terms(**c)`` and ``_inapplicable(c)`` (whether the value is +inf).
    """

    measure: str
    a_posteriori = False

    def terms(self, **c: float) -> dict[str, float]:
        raise NotImplementedError

    def _inapplicable(self, c: dict[str, float]) -> bool:
        raise NotImplementedError

    @property
    def trivial(self) -> float | None:
        return TRIVIAL[self.measure]

    def value(self, **c: float) -> float:
        if self._inapplicable(c):
            return math.inf
        return math.fsum(self.terms(**c).values())

    def is_vacuous(self, value: float) -> bool:
        """True when ``value`` says nothing: not finite, or at or above the trivial bound."""
        if not math.isfinite(value):
            return True
        return self.trivial is not None and value >= self.trivial


def flag(condition: bool) -> float:
    """Indicator constants travel as floats (constants are a dict of floats)."""
    return 1.0 if condition else 0.0
