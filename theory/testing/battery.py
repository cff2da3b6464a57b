"""The property battery any object satisfying the Bound protocol (``theory.bounds.Bound``) can be run
against, with hypothesis shrinking each failure to its smallest counterexample.

Properties:

* ``sound`` — measured ≤ bound (within the verdicts' round-off tolerance) on every trained pair
  whose assumptions the bound says hold;
* ``assumptions fire: NAME`` — on pairs built to violate an assumption the bound reports as
  ``NAME`` (:data:`theory.testing.strategies.VIOLATIONS`), it reports ``NAME`` every time; checked
  for the names the bound uses (found by probing those pairs), or the ``assumptions`` given;
* ``pure`` — ``value`` depends on the constants only: the same for the same constants in any order,
  after other calls, without changing its argument; ``estimate_constants`` is repeatable; a finite
  value is the sum of its ``terms``;
* ``monotone: increasing|decreasing in NAME`` — for each claim in the bound's docstring (a line
  ``Monotone: increasing in a, b; decreasing in c.``) or its ``monotone`` attribute
  (``{name: +1 | -1}``): scaling that constant up moves the value the claimed way, wherever the
  assumptions hold before and after.

Use it in three lines::

    from theory.testing import check_bound
    report = check_bound(MY_BOUND)
    assert report.ok, report.table()
"""
from __future__ import annotations

import inspect
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable

from theory.testing.strategies import VIOLATIONS, trained_pairs

# As in the verdicts: measured > value * (1 + RTOL) + ATOL is a violation, not float64 round-off.
RTOL, ATOL = 1e-9, 1e-12
PROBES = 6
_CLAIM = re.compile(r"(increasing|decreasing)\s+in\s+([A-Za-z_][\w]*(?:\s*,\s*[A-Za-z_][\w]*)*)")


@dataclass(frozen=True)
class PropertyResult:
    """One property: whether it held over ``examples`` draws, and the smallest counterexample."""

    name: str
    held: bool | None          # None: not applicable (nothing to check)
    examples: int
    detail: str = ""
    counterexample: dict | None = None


@dataclass
class BatteryReport:
    """What :func:`check_bound` found, property by property."""

    bound: str
    results: list[PropertyResult] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when no property failed."""
        return all(result.held is not False for result in self.results)

    def table(self) -> str:
        """A fixed-width table: property, outcome, examples, and the counterexample of each failure."""
        header = ("property", "outcome", "examples", "detail")
        lines = [header] + [(r.name, {True: "held", False: "FAILED", None: "n/a"}[r.held],
                             str(r.examples), r.detail) for r in self.results]
        widths = [max(len(line[j]) for line in lines) for j in range(3)]
        text = [f"bound {self.bound}"] + ["  ".join([*(v.ljust(w) for v, w in zip(line[:3], widths)),
                                                     line[3]]).rstrip() for line in lines]
        for r in self.results:
            if r.counterexample is not None:
                text.append(f"smallest counterexample of '{r.name}':")
                text += [f"  {key} = {value!r}" for key, value in r.counterexample.items()]
        return "\n".join(text)


def monotone_claims(bound) -> dict[str, int]:
    """``{constant: +1 (increasing) | -1 (decreasing)}`` claimed by the bound's ``monotone``
    attribute or a ``Monotone:`` line of its docstring (only constants the bound declares)."""
    claims = dict(getattr(bound, "monotone", None) or {})
    for line in (inspect.getdoc(bound) or "").splitlines():
        if line.strip().lower().startswith("monotone:"):
            for direction, names in _CLAIM.findall(line):
                for name in (part.strip() for part in names.split(",")):
                    claims[name] = 1 if direction == "increasing" else -1
    unknown = [name for name in claims if name not in bound.constants]
    if unknown:
        raise ValueError(f"monotone: {', '.join(unknown)} not among the constants of {bound.name} "
                         f"({', '.join(bound.constants)})")
    return claims


def check_bound(bound, *, max_examples: int = 60, derandomize: bool = True,
                assumptions: tuple[str, ...] | None = None) -> BatteryReport:
    """Run the property battery on ``bound``.

    Parameters
    ----------
    bound : object
        Anything with the Bound protocol's ``name``, ``setting`` (``"full"`` or ``"head"``),
        ``measure``, ``constants``, ``estimate_constants``, ``value`` and ``assumptions``
        (``terms`` is used when present).
    max_examples : int, default=60
        Hypothesis examples per property, at least 1.
    derandomize : bool, default=True
        Draw the same examples on every call (a reproducible report); False explores new ones.
    assumptions : tuple of str, optional
        The names in :data:`theory.testing.strategies.VIOLATIONS` whose violating pairs the
        bound's assumption check must catch; by default those the bound is seen to use.

    Returns
    -------
    BatteryReport
    """
    for attribute in ("name", "setting", "measure", "constants", "estimate_constants", "value",
                      "assumptions"):
        if not hasattr(bound, attribute):
            raise ValueError(f"bound: {bound!r} lacks {attribute!r} (the Bound protocol of "
                             "theory.bounds.base)")
    if bound.setting not in VIOLATIONS:
        raise ValueError(f"bound: setting must be one of {tuple(VIOLATIONS)}, got {bound.setting!r}")
    if max_examples < 1:
        raise ValueError(f"max_examples must be >= 1, got {max_examples}")
    options = settings(max_examples=max_examples, derandomize=derandomize, database=None,
                       deadline=None, print_blob=False,
                       suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
    report = BatteryReport(bound.name)
    report.results.append(_sound(bound, options))
    report.results += _assumptions(bound, options, assumptions)
    report.results.append(_pure(bound, options))
    report.results += [_monotone(bound, options, name, sign)
                       for name, sign in monotone_claims(bound).items()]
    return report


def _run_property(name: str, strategy, check, options) -> PropertyResult:
    """Run ``check(example) -> str | None`` (a failure message, or None) under hypothesis; the last
    failing example hypothesis replays is the shrunk one."""
    state: dict[str, Any] = {"examples": 0, "checked": 0, "failure": None}

    @options
    @given(strategy)
    def property_test(example):
        state["examples"] += 1
        try:
            outcome = check(example)
        except Exception as exc:  # a bound that raises on a valid instance fails the property
            outcome = f"raised {type(exc).__name__}: {exc}"
        if outcome == "skip":
            return
        state["checked"] += 1
        if outcome != "ok":
            state["failure"] = (outcome, example)
            raise AssertionError(outcome)

    try:
        property_test()
    except Exception:
        if state["failure"] is None:
            raise
        message, example = state["failure"]
        return PropertyResult(name, False, state["examples"], message, _describe(example))
    except Unsatisfiable:
        return PropertyResult(name, None, state["examples"], "no example could be drawn")
    if state["checked"] == 0:
        return PropertyResult(name, None, state["examples"], "no draw where it applies")
    return PropertyResult(name, True, state["examples"], f"checked on {state['checked']} draws")


def _describe(example) -> dict:
    """The parameters of a drawn example: a pair's description, with any extra draws (a monotone
    check's scaling factor; the second pair of the purity check, prefixed ``other_``)."""
    parts = example if isinstance(example, tuple) else (example,)
    described = dict(getattr(parts[0], "description", {}))
    for extra in parts[1:]:
        if isinstance(extra, dict):
            described.update(extra)
        else:
            described.update({f"other_{key}": value
                              for key, value in getattr(extra, "description", {}).items()})
    return described


def _constants(bound, pair) -> dict[str, float]:
    return dict(bound.estimate_constants(pair.run))


def _sound(bound, options) -> PropertyResult:
    def check(pair):
        constants = _constants(bound, pair)
        if bound.assumptions(**constants):
            return "skip"
        measured, value = pair.measured.get(bound.measure), bound.value(**constants)
        if measured is None or not math.isfinite(measured):
            return "skip"
        if measured > value * (1 + RTOL) + ATOL:
            return f"measured {bound.measure} {measured:.6g} > bound {value:.6g}"
        return "ok"

    # Half the draws inside the project's assumptions, half outside one of them: a bound must
    # hold on the first and, on the second, hold or say that an assumption fails.
    strategy = st.one_of(trained_pairs(bound.setting), st.one_of(
        *[trained_pairs(bound.setting, violate=name) for name in VIOLATIONS[bound.setting]]))
    return _run_property("sound", strategy, check, options)


def _assumptions(bound, options, names: tuple[str, ...] | None) -> list[PropertyResult]:
    if names is None:
        names = tuple(name for name in VIOLATIONS[bound.setting] if _uses(bound, name))
    unknown = [name for name in names if name not in VIOLATIONS[bound.setting]]
    if unknown:
        raise ValueError(f"assumptions: no violating instances for {', '.join(unknown)} in setting "
                         f"{bound.setting!r}; known: {', '.join(VIOLATIONS[bound.setting])}")
    results = []
    for name in names:
        def check(pair, name=name):
            violated = bound.assumptions(**_constants(bound, pair))
            return "ok" if name in violated else f"assumptions() = {violated}, lacks {name!r}"
        results.append(_run_property(f"assumptions fire: {name}",
                                     trained_pairs(bound.setting, violate=name), check, options))
    return results


def _uses(bound, name: str) -> bool:
    """Whether the bound reports ``name`` on some of a few violating pairs (fixed seeds)."""
    strategy = trained_pairs(bound.setting, violate=name)
    found = []

    @settings(max_examples=PROBES, derandomize=True, database=None, deadline=None,
              suppress_health_check=[HealthCheck.too_slow])
    @given(strategy)
    def probe(pair):
        if name in bound.assumptions(**_constants(bound, pair)):
            found.append(True)

    probe()
    return bool(found)


def _pure(bound, options) -> PropertyResult:
    pairs = st.tuples(trained_pairs(bound.setting), trained_pairs(bound.setting))

    def check(example):
        first, other = example
        constants = _constants(bound, first)
        if constants != _constants(bound, first) and not _same(constants, _constants(bound, first)):
            return "estimate_constants gave two different answers for one run"
        frozen = dict(constants)
        value = bound.value(**constants)
        bound.value(**_constants(bound, other))
        again = bound.value(**dict(reversed(list(constants.items()))))
        if constants != frozen and not _same(constants, frozen):
            return "value() changed the constants it was given"
        if not _same_number(value, again):
            return f"value {value!r} then {again!r} for the same constants"
        if hasattr(bound, "terms") and math.isfinite(value):
            total = math.fsum(bound.terms(**constants).values())
            if not math.isclose(total, value, rel_tol=1e-12, abs_tol=1e-300):
                return f"finite value {value!r} is not the sum of its terms {total!r}"
        return "ok"

    return _run_property("pure", pairs, check, options)


def _monotone(bound, options, name: str, sign: int) -> PropertyResult:
    strategy = st.tuples(trained_pairs(bound.setting),
                         st.fixed_dictionaries({"factor": st.floats(1.01, 4.0)}))

    def check(example):
        pair, step = example
        constants = _constants(bound, pair)
        base = constants[name]
        if not math.isfinite(base):
            return "skip"
        # Up by the factor (a zero constant, e.g. a support-vector term, moves up by factor - 1).
        up = base * step["factor"] if base > 0 else base / step["factor"] if base < 0 else step["factor"] - 1
        moved = {**constants, name: up}
        if bound.assumptions(**constants) or bound.assumptions(**moved):
            return "skip"
        before, after = bound.value(**constants), bound.value(**moved)
        slack = RTOL * max(abs(before), abs(after)) + ATOL
        wrong = after < before - slack if sign > 0 else after > before + slack
        if wrong:
            return (f"{name} {base:.6g} -> {moved[name]:.6g} moved the value {before:.6g} -> "
                    f"{after:.6g}, claimed {'increasing' if sign > 0 else 'decreasing'}")
        return "ok"

    return _run_property(f"monotone: {'increasing' if sign > 0 else 'decreasing'} in {name}",
                         strategy, check, options)


def _same_number(a: float, b: float) -> bool:
    return a == b or (math.isnan(a) and math.isnan(b))


def _same(a: Mapping[str, float], b: Mapping[str, float]) -> bool:
    return a.keys() == b.keys() and all(_same_number(float(a[k]), float(b[k])) for k in a)
