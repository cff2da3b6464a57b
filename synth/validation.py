"""One vocabulary of declared parameter constraints (scikit-learn ``_param_validation`` style),
used alike by the generators, the stabilisers, the training configs and the command line.

A function or class declares, per parameter, a list of constraints; a value is valid when it
satisfies any of them. ``validate_params`` checks the parameters in declaration order and raises one
``ValueError`` in one format, ``"<name> must be <allowed form> [or <allowed form>] (got <value>)"``,
naming the parameter (never a command-line flag: the command line adds its own context). A bound may
depend on parameters declared (and checked) earlier: ``Derived("n_features + 2", lambda p: ...)``.
Each constraint also lists ``invalid_examples`` just outside its bounds, from which the tests
generate the invalid-parameter cases, so every declared bound is tested to be refused.

Vocabulary: ``Interval`` (int or real, open/closed ends, bounds numbers or ``Derived``; an
``Interval`` is also an argparse ``type``, so numeric options declare their range the same way),
``Options`` (a fixed set of values, e.g. ``None``, strings or ``BOOLEAN``), ``RandomState`` (int
seed in ``[0, 2**64)``, ``None`` or a numpy ``Generator``), ``Vector`` (a sequence of numbers with a
length, an element interval and optionally a largest max/min ratio), ``Text`` (a string matching
a pattern), ``Subset`` (distinct members of a fixed set) and ``InstanceOf``. Also: ``check_param``
(one parameter), ``check_random_state`` (one RNG from ``random_state``), ``check_fits_in_memory``
(refuse sizes that cannot fit, with the estimate and the machine's memory), and
``check_int``/``check_float`` shorthands.
"""
from __future__ import annotations

import argparse
import math
import numbers
import re
from collections import ChainMap
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

# Integer seeds in [0, 2**64) are accepted (verify.seeding.run_seed gives 63-bit ones); seeds
# drawn here for random_state=None or a Generator lie in [0, 2**63).
SEED_BOUND = 2**64
DRAWN_SEED_BOUND = 2**63
# Magnitudes (radii, distances, norms, noise, variances) are declared within [MIN, MAX]: squares
# and products of a few of them, summed over up to 10**8 entries, stay finite and normal in float64.
MIN_MAGNITUDE = 1e-50
MAX_MAGNITUDE = 1e50
# Largest condition number of a covariance spectrum: the smallest eigenvalue of X^T X / n computed
# in float64 is within about 1e-16 * condition relative of the exact one (measured against
# singular values: 3.6e-8 at 1e8, 2.0e-6 at 1e10, 4e-4 at 1e12), inside the promised 1e-6.
MAX_CONDITION = 1e8
CLOSED = ("both", "left", "right", "neither")


@dataclass(frozen=True)
class Derived:
    """A bound computed from parameters checked before: ``function(params) -> number``."""

    text: str
    function: Callable[[Mapping[str, Any]], float]

    def value(self, params: Mapping[str, Any]) -> float:
        return self.function(params)


def _bound_value(bound, params):
    return bound.value(params) if isinstance(bound, Derived) else bound


def _bound_text(bound, params) -> str:
    if isinstance(bound, Derived):
        return f"{bound.text} = {_format(bound.value(params))}"
    return _format(bound)


def _format(value) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _is_real(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _is_int(value) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


@dataclass(frozen=True)
class Interval:
    """Numbers of ``type`` (``numbers.Integral`` or ``numbers.Real``) between ``low`` and ``high``.

    ``None`` is an unbounded end; ``closed`` is ``"both"``, ``"left"``, ``"right"`` or
    ``"neither"``. Real intervals admit finite values only; ints are never bools.
    """

    type: type
    low: float | int | Derived | None
    high: float | int | Derived | None
    closed: str = "both"

    def __post_init__(self):
        if self.type not in (numbers.Integral, numbers.Real) or self.closed not in CLOSED:
            raise TypeError(f"Interval needs type Integral or Real and closed in {CLOSED}")

    def is_satisfied_by(self, value, params: Mapping[str, Any]) -> bool:
        if not (_is_int(value) if self.type is numbers.Integral else _is_real(value)):
            return False
        if not _is_int(value) and not math.isfinite(value):
            return False
        low, high = _bound_value(self.low, params), _bound_value(self.high, params)
        if low is not None and (value < low or (value == low and self.closed in ("right",
                                                                                  "neither"))):
            return False
        if high is not None and (value > high or (value == high and self.closed in ("left",
                                                                                     "neither"))):
            return False
        return True

    def convert(self, value):
        return int(value) if self.type is numbers.Integral else float(value)

    def describe(self, params: Mapping[str, Any]) -> str:
        noun = "an int" if self.type is numbers.Integral else "a float"
        return f"{noun} in {self.range_text(params)}"

    def range_text(self, params: Mapping[str, Any]) -> str:
        """The interval itself, e.g. ``[0, 100]`` or ``(0, inf)``."""
        left = "[" if self.closed in ("both", "left") and self.low is not None else "("
        right = "]" if self.closed in ("both", "right") and self.high is not None else ")"
        low = "-inf" if self.low is None else _bound_text(self.low, params)
        high = "inf" if self.high is None else _bound_text(self.high, params)
        return f"{left}{low}, {high}{right}"

    def __str__(self) -> str:
        return self.range_text({})

    def __call__(self, text: str) -> int | float:
        """Parse a command-line option's text: an instance is an argparse ``type``, whose refusal
        is argparse's one line ``argument --opt: must be ... (got '...')``."""
        try:
            value: int | float = int(text) if self.type is numbers.Integral else float(text)
        except ValueError:
            value = math.nan
        if not self.is_satisfied_by(value, {}):
            raise argparse.ArgumentTypeError(f"must be {self.describe({})} (got {text!r})")
        return value

    def invalid_examples(self, params: Mapping[str, Any]) -> list:
        """Values just outside each finite end, a wrong type and (real) non-finite values."""
        examples: list[Any] = ["1", True, None]
        integral = self.type is numbers.Integral
        for bound, side, is_closed in ((self.low, -1, self.closed in ("both", "left")),
                                       (self.high, 1, self.closed in ("both", "right"))):
            value = _bound_value(bound, params)
            if value is None or not math.isfinite(value):
                continue
            if integral:
                edge = math.floor(value) + 1 if side > 0 else math.ceil(value) - 1
                examples.append(edge if is_closed or edge != value else int(value))
                if not is_closed and float(value).is_integer():
                    examples.append(int(value))
            else:
                examples.append(float(np.nextafter(value, side * np.inf)) if is_closed
                                else float(value))
        if integral:
            examples.append(2.5)
        else:
            examples += [math.nan, math.inf, -math.inf]
        return examples


@dataclass(frozen=True)
class Options:
    """Exactly one of ``values`` (compared with ``==``, same type; e.g. ``None``, strings, 0.0)."""

    values: tuple

    def is_satisfied_by(self, value, params: Mapping[str, Any]) -> bool:
        return any(value is option or (type(value) is type(option) and value == option)
                   or (_is_real(value) and _is_real(option) and value == option)
                   for option in self.values)

    def convert(self, value):
        return value

    def describe(self, params: Mapping[str, Any]) -> str:
        shown = ", ".join(repr(option) for option in self.values)
        return shown if len(self.values) == 1 else f"one of {{{shown}}}"

    def invalid_examples(self, params: Mapping[str, Any]) -> list:
        return ["not an option"]


@dataclass(frozen=True)
class RandomState:
    """An int seed in ``[0, 2**64)``, ``None`` (fresh entropy) or a ``numpy.random.Generator``."""

    def is_satisfied_by(self, value, params: Mapping[str, Any]) -> bool:
        return (value is None or isinstance(value, np.random.Generator)
                or (_is_int(value) and 0 <= value < SEED_BOUND))

    def convert(self, value):
        return value

    def describe(self, params: Mapping[str, Any]) -> str:
        return "an int in [0, 2**64), None or a numpy Generator"

    def invalid_examples(self, params: Mapping[str, Any]) -> list:
        return [-1, SEED_BOUND, "seed", 1.5, True]


@dataclass(frozen=True)
class Vector:
    """A sequence (not a string) of numbers, each in ``element``, converted to a numpy array.

    ``length`` fixes the length (a number or ``Derived``); otherwise it is at least
    ``min_length``. ``max_ratio`` bounds max/min of the elements.
    """

    element: Interval
    length: int | Derived | None = None
    min_length: int = 1
    max_ratio: float | None = None

    def is_satisfied_by(self, value, params: Mapping[str, Any]) -> bool:
        if isinstance(value, (str, bytes)) or not isinstance(value, (Sequence, np.ndarray)):
            return False
        items = list(np.asarray(value).ravel()) if isinstance(value, np.ndarray) else list(value)
        if isinstance(value, np.ndarray) and value.ndim != 1:
            return False
        length = _bound_value(self.length, params)
        if (len(items) != length) if length is not None else len(items) < self.min_length:
            return False
        items = [item.item() if isinstance(item, np.generic) else item for item in items]
        if not all(self.element.is_satisfied_by(item, params) for item in items):
            return False
        return self.max_ratio is None or not items or max(items) <= self.max_ratio * min(items)

    def convert(self, value):
        dtype = np.int64 if self.element.type is numbers.Integral else np.float64
        return np.asarray(value, dtype=dtype).reshape(-1)

    def describe(self, params: Mapping[str, Any]) -> str:
        length = _bound_value(self.length, params)
        size = (f"{_bound_text(self.length, params)}" if length is not None
                else f"at least {self.min_length}")
        ratio = "" if self.max_ratio is None else f" with max/min <= {self.max_ratio:g}"
        return f"a sequence of {size} numbers, each {self.element.describe(params)}{ratio}"

    def invalid_examples(self, params: Mapping[str, Any]) -> list:
        length = _bound_value(self.length, params)
        size = length if length is not None else self.min_length
        valid = next((x for x in _probe_values(self.element, params)
                      if self.element.is_satisfied_by(x, params)), None)
        examples: list[Any] = ["1", 3.0, [valid] * (size + 1)]
        if size > 0:
            examples.append([valid] * (size - 1) if length is not None or size > 1 else [])
            examples += [[bad] + [valid] * (size - 1)
                         for bad in self.element.invalid_examples(params)
                         if not isinstance(bad, str)]
        if self.max_ratio is not None and valid is not None and size >= 2:
            examples.append([valid] + [valid * self.max_ratio * 2] * (size - 1))
        return examples


@dataclass(frozen=True)
class Text:
    """A string matching the regular expression ``pattern`` in full (``what`` says it in words)."""

    pattern: str
    what: str

    def is_satisfied_by(self, value, params: Mapping[str, Any]) -> bool:
        return isinstance(value, str) and re.fullmatch(self.pattern, value) is not None

    def convert(self, value):
        return value

    def describe(self, params: Mapping[str, Any]) -> str:
        return self.what

    def invalid_examples(self, params: Mapping[str, Any]) -> list:
        return [value for value in ("", " ", "a|b", "a\nb", 1, None)
                if not self.is_satisfied_by(value, params)]


@dataclass(frozen=True)
class Subset:
    """A non-empty sequence (not a string) of distinct members of ``values``, converted to a tuple."""

    values: tuple

    def is_satisfied_by(self, value, params: Mapping[str, Any]) -> bool:
        if isinstance(value, (str, bytes)) or not isinstance(value, (Sequence, np.ndarray)):
            return False
        items = list(value)
        return (bool(items) and all(item in self.values for item in items)
                and len(set(items)) == len(items))

    def convert(self, value):
        return tuple(value)

    def describe(self, params: Mapping[str, Any]) -> str:
        return f"a non-empty list of distinct values from {{{', '.join(map(repr, self.values))}}}"

    def invalid_examples(self, params: Mapping[str, Any]) -> list:
        return [[], ["not an option"], [self.values[0], self.values[0]], self.values[0], None]


@dataclass(frozen=True)
class InstanceOf:
    """An instance of ``type``."""

    type: type

    def is_satisfied_by(self, value, params: Mapping[str, Any]) -> bool:
        return isinstance(value, self.type)

    def convert(self, value):
        return value

    def describe(self, params: Mapping[str, Any]) -> str:
        return f"an instance of {self.type.__name__}"

    def invalid_examples(self, params: Mapping[str, Any]) -> list:
        return ["not an instance", None]


def _probe_values(interval: Interval, params):
    """A few candidate valid values of an interval (its ends and midpoint-like values)."""
    low, high = _bound_value(interval.low, params), _bound_value(interval.high, params)
    candidates = [value for value in (low, high) if value is not None]
    if low is not None and high is not None:
        candidates.append(math.sqrt(low * high) if low > 0 else (low + high) / 2)
    candidates += [1, 1.0, 2]
    return [int(v) if interval.type is numbers.Integral and float(v).is_integer() else v
            for v in candidates]


Constraint = Interval | Options | RandomState | Vector | Text | Subset | InstanceOf


def validate_params(constraints: Mapping[str, Sequence[Constraint]], values: Mapping[str, Any],
                    *, context: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Check ``values`` against the declared ``constraints`` in declaration order.

    ``context`` holds values validated before (``Derived`` bounds may use them).

    Returns
    -------
    dict
        The validated values (ints as ``int``, reals as ``float``, vectors as arrays), in
        declaration order; ``Derived`` bounds see the values validated before them.

    Raises
    ------
    ValueError
        ``"<name> must be <allowed form> [or <allowed form>] (got <value>)"``.
    """
    validated: dict[str, Any] = {}
    known = ChainMap(validated, dict(context or {}))
    for name, allowed in constraints.items():
        value = values[name]
        for constraint in allowed:
            if constraint.is_satisfied_by(value, known):
                validated[name] = constraint.convert(value)
                break
        else:
            forms = " or ".join(constraint.describe(known) for constraint in allowed)
            raise ValueError(f"{name} must be {forms} (got {value!r})")
    return validated


def check_param(name: str, value, constraints: Sequence[Constraint],
                params: Mapping[str, Any] | None = None):
    """``value`` converted, if it satisfies one of ``constraints``, else ValueError
    ``"<name> must be <form> (got <value>)"`` (``params``: values ``Derived`` bounds may use)."""
    return validate_params({name: constraints}, {name: value}, context=params)[name]


BOOLEAN = Options((True, False))


def check_int(value, name: str, *, low: int, high: int | None = None) -> int:
    """Check that ``value`` is an int in ``[low, high]`` (``high=None``: no upper bound)."""
    return validate_params({name: [Interval(numbers.Integral, low, high)]}, {name: value})[name]


def check_float(value, name: str, *, low: float, high: float | None = None,
                low_open: bool = False, high_open: bool = False) -> float:
    """Check that ``value`` is a finite real number in the given interval."""
    closed = {(False, False): "both", (False, True): "left", (True, False): "right",
              (True, True): "neither"}[(low_open, high_open)]
    high = None if high is not None and high == np.inf else high
    return validate_params({name: [Interval(numbers.Real, low, high, closed)]},
                           {name: value})[name]


def resolve_seed(random_state: int | np.random.Generator | None) -> int:
    """Turn ``random_state`` into the integer seed that the card records.

    An int is used as is; ``None`` draws a fresh seed from the operating system and a
    ``Generator`` draws one from itself, so that every dataset's card reproduces it.

    Parameters
    ----------
    random_state : int, numpy.random.Generator or None

    Returns
    -------
    int
        A seed in ``[0, 2**64)``.
    """
    random_state = validate_params({"random_state": [RandomState()]},
                                   {"random_state": random_state})["random_state"]
    if random_state is None:
        return int(np.random.default_rng().integers(DRAWN_SEED_BOUND))
    if isinstance(random_state, np.random.Generator):
        return int(random_state.integers(DRAWN_SEED_BOUND))
    return int(random_state)


def check_random_state(random_state: int | np.random.Generator | None
                       ) -> tuple[int, np.random.Generator]:
    """Return ``(seed, rng)``: the recorded seed and the one generator built from it."""
    seed = resolve_seed(random_state)
    return seed, np.random.default_rng(seed)


def check_fits_in_memory(n_bytes: float, what: str) -> None:
    """Refuse work whose estimated peak memory exceeds the memory available now.

    Raises
    ------
    ValueError
        ``"<what>: needs about <estimate> of memory; this machine has <available> available
        (<total> total)"``.
    """
    import psutil

    memory = psutil.virtual_memory()
    if n_bytes > memory.available:
        raise ValueError(f"{what}: needs about {_bytes(n_bytes)} of memory; this machine has "
                         f"{_bytes(memory.available)} available ({_bytes(memory.total)} total)")


def _bytes(n_bytes: float) -> str:
    for unit in ("B", "kB", "MB", "GB", "TB", "PB"):
        if n_bytes < 1000 or unit == "PB":
            return f"{n_bytes:.3g} {unit}"
        n_bytes /= 1000
    raise AssertionError("unreachable")


def spectrum_variances(spectrum, n_features: int) -> np.ndarray:
    """Feature variances along the principal axes from a validated ``spectrum`` (see
    ``spectrum_constraints``): ``None`` is isotropic, a number ``k`` a condition number
    (variances decay geometrically from 1 to ``1/k``), a sequence the variances themselves."""
    if spectrum is None:
        return np.ones(n_features)
    if isinstance(spectrum, float):
        return np.geomspace(1.0, 1.0 / spectrum, n_features) if n_features > 1 else np.ones(1)
    return np.asarray(spectrum, dtype=float)


def check_spectrum(spectrum, n_features: int) -> np.ndarray:
    """Validate ``spectrum`` (``spectrum_constraints(MAX_CONDITION)``) and return its variances."""
    checked = validate_params({"n_features": [Interval(numbers.Integral, 1, None)],
                               "spectrum": spectrum_constraints(MAX_CONDITION)},
                              {"n_features": n_features, "spectrum": spectrum})
    return spectrum_variances(checked["spectrum"], n_features)


def check_positive_vector(value, name: str, *, length: int) -> np.ndarray:
    """Check a sequence of ``length`` finite positive numbers and return it as float64."""
    constraint = Vector(Interval(numbers.Real, 0.0, None, "neither"), length=length)
    return validate_params({name: [constraint]}, {name: value})[name]


def spectrum_constraints(max_condition: float = MAX_CONDITION) -> list[Constraint]:
    """``spectrum``: ``None``, a condition number in ``[1, max_condition]``, or ``n_features``
    variances in ``[MIN_MAGNITUDE, MAX_MAGNITUDE]`` with max/min at most ``max_condition``."""
    return [Options((None,)), Interval(numbers.Real, 1.0, max_condition),
            Vector(Interval(numbers.Real, MIN_MAGNITUDE, MAX_MAGNITUDE),
                   length=Derived("n_features", lambda p: p["n_features"]),
                   max_ratio=max_condition)]


def split_counts(total: int, weights: np.ndarray) -> np.ndarray:
    """Split ``total`` into integer parts proportional to ``weights`` (largest remainder).

    The parts sum to ``total`` exactly; ties in the remainders go to the lower index.
    """
    shares = total * np.asarray(weights, dtype=float) / np.sum(weights)
    counts = np.floor(shares).astype(np.int64)
    remainder = total - int(counts.sum())
    order = np.argsort(-(shares - counts), kind="stable")
    counts[order[:remainder]] += 1
    return counts
