"""Theorem F and the full fine-tuning reference bounds on exactly computed least-squares GD runs."""
import dataclasses
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from theory_helpers import least_squares_gd, least_squares_instance

from theory.bounds import BOUNDS
from theory.bounds.theorem_f import theorem_f_value
from theory.context import RunContext
from theory.stability import parameter_stability

SEEDS = st.integers(0, 2 ** 32 - 1)
STEPS = st.sampled_from([0, 1, 2, 5, 20, 100, 600])


def _measured_and_bound(bound_name, run):
    bound = BOUNDS[bound_name]
    constants = bound.estimate_constants(run)
    return constants, bound.value(**constants), bound.assumptions(**constants)


@settings(max_examples=40)
@given(seed=SEEDS, n=st.integers(2, 9), d=st.integers(1, 4), l2sp=st.sampled_from([0.0, 0.05, 0.5]),
       weight_decay=st.sampled_from([0.0, 0.0, 0.1]), lr_scale=st.floats(0.05, 1.0), steps=STEPS,
       left_out=st.integers(0, 8))
def test_theorem_f_never_exceeded_by_exact_gd(seed, n, d, l2sp, weight_decay, lr_scale, steps, left_out):
    run = least_squares_instance(seed, n=n, d=d, l2sp=l2sp, lr_scale=lr_scale, steps=steps,
                                 left_out=left_out % n, weight_decay=weight_decay)
    measured = parameter_stability(run.w_full, run.w_loo[None])[0]
    for name in ("theorem_f", "bousquet_elisseeff", "hardt_sgd_convex", "hardt_sgd_strongly_convex"):
        constants, value, violated = _measured_and_bound(name, run)
        if not violated:
            assert measured <= value * (1 + 1e-9) + 1e-12, (name, measured, value, constants)
    constants, value, violated = _measured_and_bound("theorem_f", run)
    assert violated == []
    # Theorem F is the sharpest of the full-batch bounds whenever the others apply.
    for name in ("bousquet_elisseeff", "hardt_sgd_convex"):
        other = _measured_and_bound(name, run)
        if not other[2]:
            assert value <= other[1] * (1 + 1e-9) + 1e-12


@settings(max_examples=30)
@given(seed=SEEDS, n=st.integers(2, 9), d=st.integers(1, 4), l2sp=st.sampled_from([0.0, 0.3]),
       lr_scale=st.floats(0.05, 1.0), steps=STEPS)
def test_theorem_f_loss_form_never_exceeded(seed, n, d, l2sp, lr_scale, steps):
    run = least_squares_instance(seed, n=n, d=d, l2sp=l2sp, lr_scale=lr_scale, steps=steps)
    x, t = run.X[0], run.y[0]
    measured = abs(0.5 * (x @ run.w_full - t) ** 2 - 0.5 * (x @ run.w_loo - t) ** 2)
    constants, value, violated = _measured_and_bound("theorem_f_loss", run)
    assert violated == []
    assert measured <= value * (1 + 1e-9) + 1e-12


@pytest.mark.parametrize("seed", range(4))
def test_theorem_f_is_attained_in_one_dimension_after_convergence(seed):
    # In 1-D the matrices commute and the initial-point term vanishes as T → ∞, so the measured
    # distance equals ρ_i/((n−1)μ'): any smaller constant in the gradient term would be violated.
    run = least_squares_instance(seed, n=6, d=1, l2sp=0.0, lr_scale=1.0, steps=3000)
    measured = parameter_stability(run.w_full, run.w_loo[None])[0]
    _, value, violated = _measured_and_bound("theorem_f", run)
    assert violated == []
    assert measured == pytest.approx(value, rel=1e-6)


def test_theorem_f_early_phase_is_attained_at_one_step():
    # From w0 = w*_S, one step gives w_1(S) − w_1(S\i) = η ∇F_{S\i}(w*_S) = −η ∇ℓ_i(w*_S)/(n−1):
    # the distance is exactly ηρ_i/(n−1), the bound's value at T = 1.
    rng = np.random.default_rng(3)
    X, y = rng.normal(size=(5, 2)), rng.normal(size=5)
    w_star = np.linalg.lstsq(X, y, rcond=None)[0]
    lr = 0.5 / max(np.linalg.eigvalsh(X.T @ X / 5)[-1], np.linalg.eigvalsh(X[1:].T @ X[1:] / 4)[-1])
    w_loo = w_star - lr * X[1:].T @ (X[1:] @ w_star - y[1:]) / 4
    run = RunContext(setting="full", model="linear", loss="squared", X=X, y=y, left_out=0, lr=lr,
                     iteration=1, batch_size=None, w0=w_star, w_full=w_star, w_loo=w_loo)
    _, value, violated = _measured_and_bound("theorem_f", run)
    assert violated == []
    assert value == pytest.approx(np.linalg.norm(w_loo - w_star), rel=1e-9)


BASE = dict(n=20.0, mu=0.2, mu_loo=0.15, beta=2.0, lr=0.4, iteration=50.0, rho=1.0, D=2.0, delta_H=0.01)


@pytest.mark.parametrize("name, larger_is_smaller", [("n", True), ("mu", True), ("mu_loo", True),
                                                     ("rho", False), ("D", False), ("delta_H", False)])
def test_theorem_f_moves_as_its_corollaries_claim(name, larger_is_smaller):
    values = [theorem_f_value(**{**BASE, name: BASE[name] * factor}) for factor in (0.5, 1.0, 1.5)]
    expected = sorted(values, reverse=larger_is_smaller)
    assert values == expected and values[0] != values[-1]


def test_theorem_f_in_eta_t():
    # Zero at T = 0 (nothing has moved), at most linear in ηT early, and tends to ρ/((n−1)μ') as T → ∞.
    assert theorem_f_value(**{**BASE, "iteration": 0.0}) == 0.0
    for steps in (1.0, 3.0, 10.0):
        value = theorem_f_value(**{**BASE, "iteration": steps})
        assert value <= BASE["lr"] * steps * (BASE["rho"] / (BASE["n"] - 1) + BASE["delta_H"] * BASE["D"])
    limit = BASE["rho"] / ((BASE["n"] - 1) * BASE["mu_loo"])
    assert theorem_f_value(**{**BASE, "iteration": 1e5}) == pytest.approx(limit, rel=1e-9)
    assert math.isinf(theorem_f_value(**{**BASE, "lr": 0.6}))  # η > 1/β: no bound


def test_assumptions_name_each_violation():
    run = least_squares_instance(1, n=6, d=2, l2sp=0.0, lr_scale=1.5, steps=10)
    bound = BOUNDS["theorem_f"]
    constants = bound.estimate_constants(run)
    assert bound.assumptions(**constants) == ["eta_le_1_over_beta"]
    assert math.isinf(bound.value(**constants))
    assert "full_batch" in bound.assumptions(**{**constants, "full_batch": 0.0})
    # the same weights reached by AdamW (or momentum, or a schedule) are outside every bound
    adaptive = dataclasses.replace(run, lr=run.lr / 1.5, plain_steps=False)
    assert adaptive.batch_size is None and not adaptive.gradient_descent
    for name in ("theorem_f", "bousquet_elisseeff", "hardt_sgd_convex"):
        plain_constants = BOUNDS[name].estimate_constants(dataclasses.replace(adaptive,
                                                                              plain_steps=True))
        other = BOUNDS[name].estimate_constants(adaptive)
        assert plain_constants["full_batch"] == 1.0 and other["full_batch"] == 0.0
        assert BOUNDS[name].assumptions(**other) != []
    hardt = BOUNDS["hardt_sgd_convex"]
    assert "plain_gradient_steps" in hardt.assumptions(**hardt.estimate_constants(adaptive))
    assert BOUNDS["theorem_f"].assumptions(**BOUNDS["theorem_f"].estimate_constants(
        dataclasses.replace(adaptive, plain_steps=True))) == []
    small = least_squares_instance(1, n=3, d=4, l2sp=0.0, lr_scale=0.5, steps=10)
    be = BOUNDS["bousquet_elisseeff"]
    assert "mu_loo_positive" in be.assumptions(**be.estimate_constants(small))
    # Theorem F itself needs no μ' > 0: it holds with n − 1 < d.
    assert bound.assumptions(**bound.estimate_constants(small)) == []


def test_weight_decay_is_part_of_the_least_squares_constants():
    # Decay toward 0 moves the minimiser: without it in the constants, D and rho_i are those of
    # another objective and Theorem F can be exceeded (seen on the default grid before this test).
    plain = least_squares_instance(3, n=8, d=3, l2sp=0.0, lr_scale=1.0, steps=4000, left_out=2)
    decayed = least_squares_instance(3, n=8, d=3, l2sp=0.0, lr_scale=1.0, steps=4000, left_out=2,
                                     weight_decay=0.5)
    c_plain, _, _ = _measured_and_bound("theorem_f", plain)
    c_decayed, value, violated = _measured_and_bound("theorem_f", decayed)
    assert c_decayed["mu"] == pytest.approx(c_plain["mu"] + 0.5)
    # at convergence w_T(S) is the regularised minimiser, so D = ||w0 - w*|| is ||w0 - w_T||
    assert c_decayed["D"] == pytest.approx(np.linalg.norm(decayed.w0 - decayed.w_full), rel=1e-6)
    assert not violated
    assert parameter_stability(decayed.w_full, decayed.w_loo[None])[0] <= value * (1 + 1e-9)


def test_mu_positive_alone_does_not_give_the_t_to_infinity_limit():
    # Corollaries F.4.2/F.4.4 need mu' > 0. With n = d = 3 and X invertible, mu > 0 but mu' = 0:
    # w* interpolates (rho_i = 0), delta_H >= mu (v in the null space of H' has v^T(H - H')v >= mu),
    # so the D-term tends to D, not to 0, and the S\i run converges to another interpolant.
    rng = np.random.default_rng(11)
    X = np.linalg.qr(rng.normal(size=(3, 3)))[0] * np.sqrt(3.0) * np.array([1.0, 1.3, 1.7])
    y, w0 = rng.normal(size=3), rng.normal(size=3)
    lr = 0.9 / max(np.linalg.eigvalsh(X.T @ X / 3)[-1], np.linalg.eigvalsh(X[1:].T @ X[1:] / 2)[-1])
    w_star = np.linalg.solve(X, y)
    # GD on S\i from w0 converges to the interpolant of S\i nearest to w0.
    w_loo_star = w0 + np.linalg.pinv(X[1:]) @ (y[1:] - X[1:] @ w0)
    bound = BOUNDS["theorem_f"]
    for steps in (10 ** 3, 10 ** 5):
        w_full = least_squares_gd(X, y, w0, l2sp=0.0, lr=lr, steps=steps)
        w_loo = least_squares_gd(X[1:], y[1:], w0, l2sp=0.0, lr=lr, steps=steps)
        run = RunContext(setting="full", model="linear", loss="squared", X=X, y=y, left_out=0, lr=lr,
                         iteration=steps, batch_size=None, w0=w0, w_full=w_full, w_loo=w_loo)
        c = bound.estimate_constants(run)
        assert c["mu"] >= 0.9 and c["mu_loo"] <= 1e-12 and c["rho"] <= 1e-12
        assert c["delta_H"] >= c["mu"] - 1e-12
        assert bound.assumptions(**c) == []
        value = bound.value(**c)
        assert value == pytest.approx(c["D"], rel=1e-9)
        assert parameter_stability(w_full, w_loo[None])[0] <= value * (1 + 1e-9)
    # After 10^5 steps both runs have converged: the distance is that of two different interpolants.
    assert np.linalg.norm(w_full - w_star) <= 1e-9
    assert np.linalg.norm(w_loo - w_loo_star) <= 1e-9
    assert parameter_stability(w_full, w_loo[None])[0] == pytest.approx(np.linalg.norm(w_star - w_loo_star),
                                                                        rel=1e-6)
    assert np.linalg.norm(w_star - w_loo_star) >= 0.1 * c["D"]


def _indefinite_quadratic(seed, n, d, curvature):
    """Per-sample quadratics f_j(w) = ½(w − w*)ᵀA_j(w − w*) + g_j·(w − w*) with Σ g_j = 0, so w* is a
    stationary point of F_S; A_j = x_j x_jᵀ − curvature·v_j v_jᵀ is indefinite for curvature > 0."""
    rng = np.random.default_rng(seed)
    x, v = rng.normal(size=(n, d)), rng.normal(size=(n, d))
    A = np.einsum("ja,jb->jab", x, x) - curvature * np.einsum("ja,jb->jab", v, v)
    g = rng.normal(size=(n, d))
    g -= g.mean(axis=0)
    return A, g, rng.normal(size=d), rng.normal(size=d)


@settings(max_examples=30)
@given(seed=SEEDS, n=st.integers(3, 8), d=st.integers(1, 4), curvature=st.floats(0.0, 0.3),
       lr_scale=st.floats(0.05, 1.0), steps=st.sampled_from([0, 1, 5, 30, 200]), left_out=st.integers(0, 7))
def test_theorem_f_holds_on_indefinite_quadratics(seed, n, d, curvature, lr_scale, steps, left_out):
    # The proof needs a quadratic with a stationary point and ηβ ≤ 1, not convexity: with μ' < 0 the
    # bound grows like (1 + η|μ'|)^T but stays finite, and exact GD never exceeds it.
    A, g, w_star, w0 = _indefinite_quadratic(seed, n, d, curvature)
    i = left_out % n
    keep = np.delete(np.arange(n), i)
    H, H_loo = A.mean(axis=0), A[keep].mean(axis=0)
    spectrum, spectrum_loo = np.linalg.eigvalsh(H), np.linalg.eigvalsh(H_loo)
    beta = max(spectrum[-1], spectrum_loo[-1])
    if beta <= 0:
        return
    lr = lr_scale / beta

    def gd(members):
        w = w0.copy()
        for _ in range(steps):
            w = w - lr * np.mean([A[j] @ (w - w_star) + g[j] for j in members], axis=0)
        return w

    measured = np.linalg.norm(gd(range(n)) - gd(keep))
    constants = dict(n=n, mu=spectrum[0], mu_loo=spectrum_loo[0], beta=beta, lr=lr, iteration=steps,
                     rho=np.linalg.norm(g[i]), D=np.linalg.norm(w0 - w_star),
                     delta_H=np.max(np.abs(np.linalg.eigvalsh(H - H_loo))))
    value = theorem_f_value(**constants)
    assert math.isfinite(value)
    assert measured <= value * (1 + 1e-9) + 1e-12


def test_full_bounds_are_the_sum_of_their_terms():
    run = least_squares_instance(4, n=8, d=3, l2sp=0.1, lr_scale=0.05, steps=50, left_out=1)
    expected_terms = {"theorem_f": {"gradient", "init"}, "theorem_f_loss": {"gradient", "init"},
                      "bousquet_elisseeff": {"erm_gap", "init"}, "hardt_sgd_convex": {"gradient"},
                      "hardt_sgd_strongly_convex": {"gradient"}}
    for name, names in expected_terms.items():
        bound = BOUNDS[name]
        constants = bound.estimate_constants(run)
        assert bound.assumptions(**constants) == []
        terms = bound.terms(**constants)
        assert set(terms) == names
        assert bound.value(**constants) == pytest.approx(sum(terms.values()), rel=1e-15)
        # Parameter distances and loss differences have no scale-free trivial bound.
        assert bound.trivial is None and not bound.a_posteriori
        assert not bound.is_vacuous(bound.value(**constants)) and bound.is_vacuous(math.inf)
