"""Invalid-parameter cases generated from each generator's declared constraints, chosen
extreme values, sizes that cannot fit, and the vocabulary itself."""
import math
import numbers

import numpy as np
import pytest

from synth import make_pretrained_mlp_task, make_quadratic_task, make_separable
from synth import deep_tasks, pretrained, quadratic, separable
from synth.deep_tasks import make_deep_finetuning_task
from synth.dataset import bind_params
from synth.validation import (Derived, Interval, Options, RandomState, Vector, check_float,
                              check_int, validate_params)

GENERATORS = {
    "make_separable": (make_separable, separable.PARAMETER_CONSTRAINTS,
                       {"n_samples": 20, "n_features": 4, "margin": 0.2, "n_test": 8,
                        "random_state": 0}),
    "make_quadratic_task": (make_quadratic_task, quadratic.PARAMETER_CONSTRAINTS,
                            {"n_samples": 12, "n_features": 3, "distance": 0.5, "n_test": 4,
                             "random_state": 0}),
    "make_pretrained_mlp_task": (make_pretrained_mlp_task, pretrained.PARAMETER_CONSTRAINTS,
                                 {"n_features": 5, "distance": 0.5, "random_state": 0}),
    "make_deep_finetuning_task": (make_deep_finetuning_task, deep_tasks.PARAMETER_CONSTRAINTS,
                                  {"n_per_class": 2, "n_features": 6, "random_state": 0}),
}


def invalid_cases():
    for generator_name, (generator, constraints, base) in GENERATORS.items():
        assert list(constraints) == [name for name in constraints
                                     if name in bind_params(generator, base)]
        assert set(constraints) == set(bind_params(generator, base))  # every parameter declared
        context = validate_params(constraints, bind_params(generator, base))
        for name, allowed in constraints.items():
            examples = [bad for constraint in allowed
                        for bad in constraint.invalid_examples(context)]
            for number, bad in enumerate(examples):
                if any(constraint.is_satisfied_by(bad, context) for constraint in allowed):
                    continue
                yield pytest.param(generator, base, name, bad,
                                   id=f"{generator_name}-{name}-{number}-{bad!r:.30}")


CASES = list(invalid_cases())


def test_the_battery_holds_every_registered_generator_with_its_declarations():
    import sys

    from synth.grids import GENERATORS as REGISTERED
    assert set(GENERATORS) == set(REGISTERED)
    for name, (function, constraints, _) in GENERATORS.items():
        assert function is REGISTERED[name].function
        assert constraints is sys.modules[function.__module__].PARAMETER_CONSTRAINTS


def test_the_generated_battery_covers_every_declared_parameter():
    covered = {(case.values[0].__name__, case.values[2]) for case in CASES}
    declared = {(name, parameter) for name, (_, constraints, _) in GENERATORS.items()
                for parameter in constraints}
    assert covered == declared
    assert len(CASES) >= 150


@pytest.mark.parametrize("generator, base, name, bad", CASES)
def test_every_declared_bound_is_refused_naming_the_parameter(generator, base, name, bad):
    with pytest.raises(ValueError) as error:
        generator(**{**base, name: bad})
    message = str(error.value)
    assert message.startswith(f"{name} must be ") and " (got " in message
    assert "\n" not in message


@pytest.mark.parametrize("call, name", [
    (lambda: make_separable(50, 4, margin=1e-300), "margin"),
    (lambda: make_separable(50, 4, margin=1e-12), "margin"),
    (lambda: make_separable(50, 4, margin=0.5, radius=1e300), "radius"),
    (lambda: make_quadratic_task(distance=1e300), "distance"),
    (lambda: make_quadratic_task(distance=1.0, spectrum=1e300), "spectrum"),
    (lambda: make_quadratic_task(10, 2, distance=1.0, spectrum=[1.0, 1e-300]), "spectrum"),
    (lambda: make_pretrained_mlp_task(distance=1e300), "distance"),
])
def test_values_outside_the_certified_range_are_refused(call, name):
    with pytest.raises(ValueError, match=f"^{name} must be "):
        call()


@pytest.mark.parametrize("call, what", [
    (lambda: make_separable(10**12, 4, margin=0.1), "n_samples=1000000000000"),
    (lambda: make_separable(100, 10**6, margin=0.1), "n_features=1000000"),
    (lambda: make_quadratic_task(10**6 + 2, 10**6, distance=0.1), "n_features=1000000"),
    (lambda: make_pretrained_mlp_task(distance=0.1, hidden=[100000, 100000]),
     "hidden=[100000, 100000]"),
])
def test_sizes_that_cannot_fit_are_refused_with_the_estimate(call, what):
    with pytest.raises(ValueError) as error:
        call()
    message = str(error.value)
    assert what in message and "needs about" in message and "available" in message
    assert "total" in message and "\n" not in message


def test_interval_bounds_and_examples():
    interval = Interval(numbers.Real, 0.0, Derived("2 * a", lambda p: 2 * p["a"]), "left")
    context = {"a": 1.5}
    assert interval.is_satisfied_by(0.0, context) and interval.is_satisfied_by(2.9, context)
    assert not interval.is_satisfied_by(3.0, context)
    assert not interval.is_satisfied_by(np.nextafter(0.0, -1), context)
    for bad in (math.nan, math.inf, True, "1", None):
        assert not interval.is_satisfied_by(bad, context)
    assert interval.describe(context) == "a float in [0, 2 * a = 3)"
    examples = interval.invalid_examples(context)
    assert 3.0 in examples and np.nextafter(0.0, -1) in examples
    assert not any(interval.is_satisfied_by(bad, context) for bad in examples)
    integers = Interval(numbers.Integral, 1, 5, "neither")
    assert [integers.is_satisfied_by(v, {}) for v in (1, 2, 4, 5, 2.0, np.int64(3))] == [
        False, True, True, False, False, True]
    assert integers.is_satisfied_by(10**400, {}) is False  # no OverflowError


def test_validate_params_messages_list_every_allowed_form():
    constraints = {"a": [Interval(numbers.Integral, 1, None)],
                   "b": [Options((None,)), Vector(Interval(numbers.Real, 0, None, "neither"),
                                                  length=Derived("a", lambda p: p["a"]))]}
    assert validate_params(constraints, {"a": 2, "b": None}) == {"a": 2, "b": None}
    np.testing.assert_array_equal(validate_params(constraints, {"a": 2, "b": (1, 2)})["b"],
                                  [1.0, 2.0])
    with pytest.raises(ValueError, match=r"^b must be None or a sequence of a = 2 numbers, each "
                                         r"a float in \(0, inf\) \(got \[1, -2\]\)$"):
        validate_params(constraints, {"a": 2, "b": [1, -2]})
    with pytest.raises(ValueError, match=r"^random_state must be an int in \[0, 2\*\*64\)"):
        validate_params({"random_state": [RandomState()]}, {"random_state": 2**64})
    assert check_int(3, "k", low=1) == 3 and check_float(0.5, "x", low=0.0, high=1.0) == 0.5
    with pytest.raises(ValueError, match=r"^x must be a float in \(0, 1\] \(got 0.0\)$"):
        check_float(0.0, "x", low=0.0, high=1.0, low_open=True)
