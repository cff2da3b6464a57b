"""The certificates hold to their stated precision everywhere inside the declared ranges.

Separable data: a rigorous interval for the exact max margin of the stored float64 points,
computed in exact rational arithmetic: the certified direction gives a lower bound
(min_i z_i . u / |u|), the certified dual weights an upper bound (|sum_j l_j z_j| / sum_j l_j, weak
duality: for unit w, min_i z_i . w <= the l-weighted mean of z_j . w <= |mean of z_j|). The card's
margin must lie in it and the interval must be narrower than 1e-6 relative. Least squares: the
card's mu, beta, mu_loo against singular values (error ~ eps sqrt(k), not eps k), distance
exact and against the request, D against a refined least-squares solution.
"""
from fractions import Fraction

import numpy as np
import pytest
import scipy.linalg
from hypothesis import given, reject, settings
from hypothesis import strategies as st

from synth import make_quadratic_task, make_separable
from synth.distances import euclidean_distance
from synth.separable import MAX_MARGIN_FRACTION, MIN_MARGIN_RATIO
from synth.validation import MAX_CONDITION, MAX_MAGNITUDE, MIN_MAGNITUDE

PRECISION = 1e-6  # what the cards promise


def log_uniform(low, high):
    return st.floats(np.log10(low), np.log10(high)).map(lambda e: 10.0**e)


def exact_norm2(vector):
    return sum(value * value for value in vector)


def margin_interval(Z, direction, support_weights, support_points):
    """Exact [lower, upper] of the max margin of the signed points Z (rows), as floats."""
    u = [Fraction(value) for value in direction]
    lower = min(sum(Fraction(a) * b for a, b in zip(z, u)) for z in Z)
    weights = [Fraction(value) for value in support_weights]
    mean = [sum(w * Fraction(z[k]) for w, z in zip(weights, support_points)) / sum(weights)
            for k in range(Z.shape[1])]
    lower2 = lower * lower / exact_norm2(u)
    return float(lower2) ** 0.5, float(exact_norm2(mean)) ** 0.5


def pair_intervals(dataset):
    X, y, arrays = dataset.X, dataset.arrays["y_clean"], dataset.arrays
    support, dual = arrays["support"], arrays["support_dual"]
    if dataset.card["n_classes"] == 2:
        Z = (2.0 * y - 1.0)[:, None] * X
        yield margin_interval(Z, arrays["u_star"], dual, Z[support])
        return
    axes = arrays["class_axes"]
    for a in range(dataset.card["n_classes"]):
        for b in range(a + 1, dataset.card["n_classes"]):
            mask = (y == a) | (y == b)
            Z = np.where(y == a, 1.0, -1.0)[:, None] * X
            in_pair = np.isin(y[support], [a, b])
            yield margin_interval(Z[mask], (axes[a] - axes[b]) / np.sqrt(2.0), dual[in_pair],
                                  Z[support[in_pair]])


@given(n_classes=st.sampled_from([2, 2, 3]), n_features=st.integers(1, 24),
       n_samples=st.integers(8, 40),
       radius=log_uniform(MIN_MAGNITUDE, MAX_MAGNITUDE),
       ratio=st.one_of(log_uniform(MIN_MARGIN_RATIO, 1e-6), log_uniform(MIN_MARGIN_RATIO, 0.5),
                       st.floats(0.5, MAX_MARGIN_FRACTION)),
       seed=st.integers(0, 2**32 - 1))
@settings(max_examples=40, deadline=None)
def test_margin_certificate_holds_to_1e_6_in_the_declared_range(n_classes, n_features, n_samples,
                                                                 radius, ratio, seed):
    n_features = max(n_features, n_classes)
    ceiling = radius / np.sqrt(2.0) if n_classes > 2 else radius
    margin = max(ratio * ceiling, MIN_MARGIN_RATIO * radius)
    dataset = make_separable(n_samples, n_features, margin=margin, radius=radius,
                             n_classes=n_classes, n_test=4, random_state=seed)
    card = dataset.card
    assert card["margin"] == pytest.approx(margin, rel=PRECISION)
    assert card["radius"] == pytest.approx(radius, rel=1e-12)
    assert np.all(np.isfinite(dataset.arrays["support_dual"]))
    for lower, upper in pair_intervals(dataset):
        assert lower <= upper * (1 + 1e-15)
        assert (upper - lower) <= PRECISION * card["margin"]
        assert lower * (1 - PRECISION) <= card["margin"] <= upper * (1 + PRECISION)
    # The support set is unambiguous at the promised precision.
    assert card["non_support_margin"] > card["margin"] * (1 + PRECISION)


@st.composite
def quadratic_extremes(draw):
    n_features = draw(st.integers(1, 12))
    scale = draw(log_uniform(1e-40, 1e40))  # the vector's magnitude: variances within 1e+-50
    # Mostly near the declared limit, where the precision is worst.
    condition = draw(st.one_of(st.just(MAX_CONDITION), log_uniform(MAX_CONDITION / 10,
                                                                   MAX_CONDITION),
                               log_uniform(1.0, MAX_CONDITION)))
    inner = draw(st.lists(st.floats(0.0, 1.0), min_size=n_features, max_size=n_features))
    exponents = [0.0, *inner[2:], 1.0][-n_features:]  # both ends of the allowed ratio
    spectrum = draw(st.sampled_from([condition,
                                     [scale * condition ** -value for value in exponents]]))
    w0_norm = draw(st.one_of(st.just(0.0), log_uniform(MIN_MAGNITUDE, MAX_MAGNITUDE)))
    distance = draw(st.one_of(st.just(0.0), log_uniform(MIN_MAGNITUDE, MAX_MAGNITUDE),
                              st.floats(0.0, MAX_MAGNITUDE)))
    return dict(n_samples=draw(st.integers(n_features + 2, 40)), n_features=n_features,
                distance=distance, noise=draw(st.one_of(st.just(0.0), log_uniform(1e-30, 1e30))),
                spectrum=spectrum, w0_norm=w0_norm, n_test=4,
                random_state=draw(st.integers(0, 2**32 - 1)))


@given(quadratic_extremes())
@settings(max_examples=40, deadline=None)
def test_least_squares_constants_hold_to_1e_6_in_the_declared_range(params):
    try:
        dataset = make_quadratic_task(**params)
    except ValueError as exc:  # a sample too ill-conditioned to certify: refused by design
        if "too ill-conditioned" not in str(exc):
            raise
        reject()
    assert dataset.card["beta"] / dataset.card["mu_loo"] <= MAX_CONDITION
    card, X, n = dataset.card, dataset.X, params["n_samples"]
    assert all(np.isfinite(card[key]) for key in ("mu", "beta", "mu_loo", "D", "distance"))
    singular = scipy.linalg.svdvals(X)
    assert card["mu"] == pytest.approx(singular[-1] ** 2 / n, rel=PRECISION)
    assert card["beta"] == pytest.approx(singular[0] ** 2 / n, rel=PRECISION)
    loo = min(scipy.linalg.svdvals(np.delete(X, i, axis=0))[-1] ** 2 for i in range(n)) / (n - 1)
    assert card["mu_loo"] == pytest.approx(loo, rel=PRECISION)
    assert card["distance"] == euclidean_distance(dataset.arrays["teacher"], dataset.arrays["w0"])
    assert abs(card["distance"] - params["distance"]) <= (PRECISION * params["distance"]
                                                         + 1e-15 * params["w0_norm"])
    w_star = dataset.arrays["w_star"]
    refined = w_star + scipy.linalg.lstsq(X, dataset.y - X @ w_star)[0]
    exact_D = np.linalg.norm(dataset.arrays["w0"] - refined)
    # D is exact up to the least-squares solve: 1e-6 relative, or 1e-10 of |w*| when D is tiny.
    assert abs(card["D"] - exact_D) <= PRECISION * exact_D + 1e-10 * np.linalg.norm(refined)


@pytest.mark.parametrize("distance", [1.83e-259, 1e-300, 3e-200])
def test_a_tiny_distance_is_certified_although_its_square_underflows(distance):
    # ||teacher - w0||^2 underflows to 0 below about 1e-154: the card must still hold delta itself.
    dataset = make_quadratic_task(12, 3, distance=distance, w0_norm=0.0, random_state=0)
    assert dataset.card["distance"] == pytest.approx(distance, rel=PRECISION)
    assert euclidean_distance(dataset.arrays["teacher"], dataset.arrays["w0"]) == dataset.card["distance"]


def test_the_distance_is_numpys_norm_in_the_normal_range():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=7), rng.normal(size=7)
    assert euclidean_distance(a, b) == np.linalg.norm(a - b)
    assert euclidean_distance(a * 1e200, b * 1e200) == pytest.approx(np.linalg.norm(a - b) * 1e200, rel=1e-15)
