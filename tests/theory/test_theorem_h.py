"""Theorem H, the midpoint lemma and the margin-gap rate against long full-batch GD on separable data."""
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from theory_helpers import certified_separable, exponential_tailed_gd

from theory.bounds import BOUNDS
from theory.context import RunContext
from theory.estimators import max_margin_solution, normalised_margin, radius
from theory.implicit_bias import (margin_gap_bound, mean_loss, measured_contraction_spread_bound,
                                  midpoint_direction_bound, seed_spread_bound)
from theory.stability import head_direction_spread, head_direction_stability

SEEDS = st.integers(0, 2 ** 32 - 1)
CHECKPOINTS = (10, 300, 3000)


@settings(max_examples=40)
@given(seed=SEEDS, d=st.integers(2, 5), gamma=st.floats(0.1, 1.0), scale=st.floats(0.0, 1.0))
def test_midpoint_lemma(seed, d, gamma, scale):
    Z, _, u_star = certified_separable(seed, n=10, d=d, gamma=gamma, n_support=3)
    rng = np.random.default_rng(seed)
    u = u_star + scale * rng.normal(size=d)
    u /= np.linalg.norm(u)
    gap = gamma - normalised_margin(Z, u)
    distance = np.linalg.norm(u - u_star)
    assert distance <= midpoint_direction_bound(gap, gamma) + 1e-12
    assert midpoint_direction_bound(gap, gamma) <= min(2.0, 2 * math.sqrt(max(gap, 0) / gamma)) + 1e-15


def test_midpoint_lemma_is_tight_within_sqrt2():
    # One support vector z = γu*: a unit u at angle φ from u* has gap ε = γ(1 − cos φ), distance
    # 2 sin(φ/2), and the lemma gives √((1 − cos φ)(3 + cos φ)): within √2, and exact at φ = π.
    gamma = 0.7
    Z = np.array([[gamma, 0.0], [2.0, 1.0]])
    for phi in (0.05, 0.5, 2.0, math.pi):
        u = np.array([math.cos(phi), math.sin(phi)])
        distance = np.linalg.norm(u - np.array([1.0, 0.0]))
        bound = midpoint_direction_bound(gamma - normalised_margin(Z, u), gamma)
        assert distance - 1e-12 <= bound <= math.sqrt(2) * distance + 1e-12
    assert bound == pytest.approx(2.0)


def _head_run(X, y, i, lr, steps, w0, w_full, w_loo, loss):
    return RunContext(setting="head", model="linear", loss=loss, X=X, y=y, left_out=i, lr=lr,
                      iteration=steps, batch_size=None, w0=w0, w_full=w_full, w_loo=w_loo)


@settings(max_examples=8)
@given(seed=SEEDS, gamma=st.floats(0.2, 0.8), loss=st.sampled_from(["exponential", "logistic"]),
       init_scale=st.sampled_from([0.0, 0.3]))
def test_long_gd_heads_never_exceed_theorem_h(seed, gamma, loss, init_scale):
    n = 6
    Z, signs, _ = certified_separable(seed, n=n, d=3, gamma=gamma, n_support=2)
    X, y = signs[:, None] * Z, (signs > 0).astype(int)
    R = radius(X)
    w0 = init_scale * np.random.default_rng(seed).normal(size=3)
    init_loss = max(mean_loss(loss, Z @ w0), max(mean_loss(loss, np.delete(Z, i, 0) @ w0) for i in range(n)))
    # The largest step the a priori theorem allows (less a rounding margin).
    lr = 0.999 * (0.5 / (R ** 2 * init_loss) if loss == "exponential" else
                  min(2.0 / (R ** 2 * init_loss), 4.0 / R ** 2))
    full = exponential_tailed_gd(Z, w0, loss=loss, lr=lr, checkpoints=CHECKPOINTS)
    for steps in CHECKPOINTS:
        gap = gamma - normalised_margin(Z, full[steps])
        assert gap <= margin_gap_bound(loss, n=n, gamma=gamma, radius=R, lr=lr, iteration=steps,
                                       init_norm=float(np.linalg.norm(w0)),
                                       init_loss=mean_loss(loss, Z @ w0)) + 1e-12
    for i in range(n):
        loo = exponential_tailed_gd(np.delete(Z, i, 0), w0, loss=loss, lr=lr, checkpoints=CHECKPOINTS)
        for steps in CHECKPOINTS:
            run = _head_run(X, y, i, lr, steps, w0, full[steps], loo[steps], loss)
            measured = head_direction_stability(run.w_full, run.w_loo[None])[0]
            for name in ("theorem_h", "theorem_h_apriori"):
                bound = BOUNDS[name]
                constants = bound.estimate_constants(run)
                assert bound.assumptions(**constants) == [], (name, bound.assumptions(**constants))
                assert measured <= bound.value(**constants) + 1e-12, (name, steps, i)


def test_a_posteriori_bound_is_informative_after_long_training():
    Z, signs, _ = certified_separable(7, n=6, d=3, gamma=0.5, n_support=2)
    X, y = signs[:, None] * Z, (signs > 0).astype(int)
    lr = 0.5 / radius(X) ** 2
    w0 = np.zeros(3)
    full = exponential_tailed_gd(Z, w0, loss="exponential", lr=lr, checkpoints=(20000,))[20000]
    loo = exponential_tailed_gd(np.delete(Z, 5, 0), w0, loss="exponential", lr=lr,
                                checkpoints=(20000,))[20000]
    run = _head_run(X, y, 5, lr, 20000, w0, full, loo, "exponential")
    bound = BOUNDS["theorem_h"]
    value = bound.value(**bound.estimate_constants(run))
    assert value < 1.0  # non-vacuous: the trivial bound is 2


MARGIN = dict(n=20, gamma=0.3, radius=1.0, lr=0.5, iteration=10 ** 5, init_norm=0.0, init_loss=1.0)


@pytest.mark.parametrize("loss", ["exponential", "logistic"])
def test_margin_gap_rate_moves_as_claimed(loss):
    base = {**MARGIN, "lr": 0.5 if loss == "exponential" else 2.0,
            "init_loss": 1.0 if loss == "exponential" else math.log(2)}
    over_t = [margin_gap_bound(loss, **{**base, "iteration": t}) for t in (10 ** 5, 10 ** 6, 10 ** 8)]
    assert over_t[0] > over_t[1] > over_t[2]
    relative = [margin_gap_bound(loss, **{**base, "gamma": g, "iteration": 10 ** 8}) / g
                for g in (0.2, 0.3, 0.5)]
    assert relative[0] > relative[1] > relative[2]
    assert margin_gap_bound(loss, **{**base, "iteration": 10}) == math.inf


def test_head_assumptions_name_violations():
    Z, signs, _ = certified_separable(3, n=6, d=3, gamma=0.5, n_support=2)
    X, y = signs[:, None] * Z, (signs > 0).astype(int)
    w = max_margin_solution(Z).direction
    run = _head_run(X, y, 0, 100.0, 10, np.zeros(3), w, w, "exponential")
    apriori = BOUNDS["theorem_h_apriori"]
    assert apriori.assumptions(**apriori.estimate_constants(run)) == ["eta_small"]
    multiclass = _head_run(X, np.arange(6) % 3, 0, 0.1, 10, np.zeros(3), w, w, "softmax")
    violated = apriori.assumptions(**apriori.estimate_constants(multiclass))
    assert "binary" in violated and "exponential_tailed_loss" in violated
    assert math.isinf(BOUNDS["theorem_h"].value(**BOUNDS["theorem_h"].estimate_constants(multiclass)))


def _long_run(n_heads=1):
    Z, signs, _ = certified_separable(7, n=6, d=3, gamma=0.5, n_support=2)
    X, y = signs[:, None] * Z, (signs > 0).astype(int)
    lr = 0.5 / radius(X) ** 2
    full = exponential_tailed_gd(Z, np.zeros(3), loss="exponential", lr=lr, checkpoints=(300,))[300]
    loo = exponential_tailed_gd(np.delete(Z, 0, 0), np.zeros(3), loss="exponential", lr=lr,
                                checkpoints=(300,))[300]
    return RunContext(setting="head", model="linear", loss="exponential", X=X, y=y, left_out=0, lr=lr,
                      iteration=300, batch_size=None, w0=np.zeros(3), w_full=full, w_loo=loo,
                      n_heads=n_heads)


def test_head_bounds_declare_their_terms_trivial_value_and_kind():
    run = _long_run()
    for name in ("theorem_h", "theorem_h_apriori"):
        bound = BOUNDS[name]
        constants = bound.estimate_constants(run)
        terms = bound.terms(**constants)
        assert set(terms) == {"margin_full", "margin_loo", "support_vectors"}
        assert bound.value(**constants) == pytest.approx(sum(terms.values()), rel=1e-15)
        assert bound.trivial == 2.0
        assert bound.is_vacuous(2.0) and bound.is_vacuous(math.inf) and not bound.is_vacuous(1.999)
    assert BOUNDS["theorem_h"].a_posteriori and not BOUNDS["theorem_h_apriori"].a_posteriori
    # At t = 300 the a priori margin-gap rate is still +inf: each margin term is the trivial 2, so the
    # value is exactly 4 + the support-vector term, and it is vacuous.
    apriori = BOUNDS["theorem_h_apriori"]
    terms = apriori.terms(**apriori.estimate_constants(run))
    assert terms["margin_full"] == terms["margin_loo"] == 2.0
    assert apriori.is_vacuous(apriori.value(**apriori.estimate_constants(run)))


def test_a_priori_theorem_h_does_not_apply_to_a_mean_of_heads():
    # An MHLoss model's mean head is not a GD iterate of one head with the model's step (H.5).
    apriori, posteriori = BOUNDS["theorem_h_apriori"], BOUNDS["theorem_h"]
    single, averaged = _long_run(), _long_run(n_heads=4)
    assert "single_head" not in apriori.assumptions(**apriori.estimate_constants(single))
    assert apriori.assumptions(**apriori.estimate_constants(averaged)) == ["single_head"]
    assert math.isinf(apriori.value(**apriori.estimate_constants(averaged)))
    # The a posteriori bound holds for any unit vectors, so it still applies.
    assert posteriori.assumptions(**posteriori.estimate_constants(averaged)) == []


@settings(max_examples=8)
@given(seed=SEEDS, loss=st.sampled_from(["exponential", "logistic"]), sigma=st.sampled_from([0.1, 0.5]))
def test_seed_spread_of_gd_heads_is_within_theorem_s(seed, loss, sigma):
    # K randomly initialised heads on one S: their pairwise distances never grow (GD is non-expansive,
    # Lemma S.1), and the direction spread is below both a priori bounds, which fall with t.
    Z, _, _ = certified_separable(seed, n=8, d=3, gamma=0.5, n_support=2)
    inits = sigma * np.random.default_rng(seed).normal(size=(12, 3))
    R = radius(Z)
    init_loss = max(mean_loss(loss, Z @ w) for w in inits)
    lr = 0.999 * (0.5 / (R ** 2 * init_loss) if loss == "exponential" else
                  min(2.0 / (R ** 2 * init_loss), 4.0 / R ** 2))
    checkpoints = (10, 300, 3000)
    heads, step, previous, bounds = inits.copy(), 0, np.linalg.norm(inits[:, None] - inits[None], axis=-1), []
    for t in checkpoints:
        while step < t:  # full-batch GD on the mean loss, all heads at once
            margins = heads @ Z.T
            slope = np.exp(-margins) if loss == "exponential" else np.exp(-np.logaddexp(0.0, margins))
            heads, step = heads + lr * slope @ Z / len(Z), step + 1
        distances = np.linalg.norm(heads[:, None] - heads[None], axis=-1)
        assert np.all(distances <= previous * (1 + 1e-9) + 1e-12)
        previous = distances
        spread = head_direction_spread(heads, n_resamples=10).value
        bound = seed_spread_bound(Z, inits, loss=loss, lr=lr, iteration=t)
        assert spread <= min(bound) + 1e-12, (t, spread, bound)
        assert spread <= measured_contraction_spread_bound(inits, heads) * (1 + 1e-9) + 1e-12
        bounds.append(bound)
    bounds.append(seed_spread_bound(Z, inits, loss=loss, lr=lr, iteration=10 ** 7))
    for earlier, later in zip(bounds, bounds[1:]):
        assert later.midpoint <= earlier.midpoint and later.contraction <= earlier.contraction
    assert math.isfinite(bounds[-1].contraction)
