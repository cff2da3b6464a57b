"""theory.testing: certified strategies, the property battery and `ftstab check-bound`."""
from __future__ import annotations

import math
import textwrap

import numpy as np
import pytest
from hypothesis import given

from theory.bounds import BOUNDS
from theory.bounds.theorem_f import TheoremF
from theory.estimators import least_squares_constants, max_margin, signed_points
from theory.testing import check_bound, monotone_claims
from theory.testing.strategies import quadratic_tasks, separable_data, trained_pairs
from verify.cli import main


class HalvedTheoremF(TheoremF):
    """Theorem F with its gradient term halved: wrong (on d = 1 from w*_S the measured stability
    equals the true gradient term)."""

    name = "theorem_f_halved"

    def terms(self, **c):
        terms = super().terms(**c)
        return {**terms, "gradient": terms["gradient"] / 2}


class LateStepCheck(TheoremF):
    """Reports eta_le_1_over_beta only beyond eta * beta = 1.5 (a wrong threshold)."""

    name = "theorem_f_late_step_check"

    def assumptions(self, **c):
        violated = [name for name in super().assumptions(**c) if name != "eta_le_1_over_beta"]
        return violated + (["eta_le_1_over_beta"] if c["lr"] * c["beta"] > 1.5 else [])


class WrongMonotonicity(TheoremF):
    """Theorem F with a false claim.

    Monotone: decreasing in rho.
    """

    name = "theorem_f_wrong_claim"


class Drifting(TheoremF):
    """A value that depends on how often it was asked for (not a pure function)."""

    name = "theorem_f_drifting"
    calls = 0

    def value(self, **c):
        type(self).calls += 1
        return super().value(**c) * (1 + type(self).calls)


@pytest.mark.parametrize("name", sorted(BOUNDS))
def test_every_bound_of_the_project_passes_the_battery(name):
    report = check_bound(BOUNDS[name], max_examples=10)
    assert report.ok, report.table()
    sound = report.results[0]
    assert sound.name == "sound" and sound.held is True


def test_the_battery_checks_the_assumptions_and_claims_of_theorem_f():
    report = check_bound(BOUNDS["theorem_f"], max_examples=10)
    held = {result.name for result in report.results if result.held}
    assert {"assumptions fire: eta_le_1_over_beta", "assumptions fire: full_batch", "pure",
            "monotone: increasing in rho", "monotone: decreasing in n"} <= held


def test_a_halved_constant_is_caught_with_a_shrunk_counterexample():
    report = check_bound(HalvedTheoremF(), max_examples=60)
    sound = report.results[0]
    assert not report.ok and sound.held is False
    # Shrinking reaches the simplest failing draw: one feature, started at the minimiser (D = 0).
    assert sound.counterexample["n_features"] == 1 and sound.counterexample["start"] == "w_star"
    assert "smallest counterexample of 'sound'" in report.table()


def test_an_assumption_check_with_a_wrong_threshold_is_caught():
    report = check_bound(LateStepCheck(), max_examples=60)
    fired = next(r for r in report.results if r.name == "assumptions fire: eta_le_1_over_beta")
    assert fired.held is False and fired.counterexample["lr_scale"] <= 1.5


def test_a_false_monotonicity_claim_and_an_impure_value_are_caught():
    assert monotone_claims(WrongMonotonicity()) == {"rho": -1}
    claim = next(r for r in check_bound(WrongMonotonicity(), max_examples=30).results
                 if r.name == "monotone: decreasing in rho")
    assert claim.held is False
    pure = next(r for r in check_bound(Drifting(), max_examples=10).results if r.name == "pure")
    assert pure.held is False


def test_monotone_claims_must_name_constants_of_the_bound():
    class Claims(TheoremF):
        """Monotone: increasing in rho, D; decreasing in n, gamma."""

    with pytest.raises(ValueError, match="gamma"):
        monotone_claims(Claims())
    assert monotone_claims(BOUNDS["theorem_h"]) == {"support_term": 1, "margin_full": -1,
                                                   "margin_loo": -1}


@given(separable_data())
def test_separable_data_has_its_certified_margin_and_direction(data):
    gamma, u, _ = max_margin(data.X, data.y)
    assert gamma == pytest.approx(data.card["margin"], rel=1e-6)
    assert np.linalg.norm(u - data.arrays["u_star"]) < 1e-5
    Z = signed_points(data.X, data.y)
    assert np.min(Z @ data.arrays["u_star"]) == pytest.approx(data.card["margin"], rel=1e-9)


@given(quadratic_tasks())
def test_quadratic_tasks_have_their_exact_constants(task):
    exact = least_squares_constants(task.X, task.y, task.arrays["w0"])
    assert exact.mu == pytest.approx(task.card["mu"], rel=1e-9)
    assert exact.beta == pytest.approx(task.card["beta"], rel=1e-9)
    assert exact.D == pytest.approx(task.card["D"], rel=1e-9, abs=1e-12)


@given(trained_pairs("full"))
def test_full_batch_pairs_are_gradient_descent_from_w0(pair):
    run = pair.run
    # From w*_S, GD on S never moves: the full-set model is still at its start.
    if pair.description["start"] == "w_star":
        assert np.linalg.norm(run.w_full - run.w0) <= 1e-9 * max(1.0, np.linalg.norm(run.w0))
    measured = np.linalg.norm(run.w_full - run.w_loo)
    assert pair.measured["parameter_stability"] == measured


@given(trained_pairs("head"))
def test_head_pairs_measure_the_distance_of_unit_directions(pair):
    run = pair.run
    u, v = run.w_full / np.linalg.norm(run.w_full), run.w_loo / np.linalg.norm(run.w_loo)
    assert math.isclose(pair.measured["head_direction_stability"], np.linalg.norm(u - v), rel_tol=1e-12)
    assert 0 <= pair.measured["head_direction_stability"] <= 2


def test_cli_prints_the_table_and_exits_1_on_a_wrong_bound(tmp_path, monkeypatch, capsys):
    (tmp_path / "my_bounds.py").write_text(textwrap.dedent('''
        from theory.bounds.theorem_f import TheoremF

        class Halved(TheoremF):
            name = "halved"

            def terms(self, **c):
                terms = super().terms(**c)
                return {**terms, "gradient": terms["gradient"] / 2}
    '''))
    monkeypatch.chdir(tmp_path)
    assert main(["check-bound", "my_bounds:Halved", "--examples", "40"]) == 1
    out = capsys.readouterr().out
    assert "sound" in out and "FAILED" in out and "smallest counterexample" in out
    assert "n_features = 1" in out
    assert main(["check-bound", "theory.bounds.theorem_f:THEOREM_F", "--examples", "8"]) == 0
    assert "FAILED" not in capsys.readouterr().out


def test_cli_rejects_a_target_that_is_not_a_bound_in_one_line(capsys):
    assert main(["check-bound", "theory.bounds"]) == 2
    assert "MODULE:OBJECT" in capsys.readouterr().err
    assert main(["check-bound", "theory.bounds:NOT_THERE"]) == 2
    assert "has no 'NOT_THERE'" in capsys.readouterr().err
    assert main(["check-bound", "math:pi"]) == 2
    assert "lacks 'name'" in capsys.readouterr().err
