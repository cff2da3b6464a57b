import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from synth import make_quadratic_task


@st.composite
def quadratic_params(draw):
    n_features = draw(st.integers(1, 8))
    return dict(n_samples=draw(st.integers(n_features + 2, 40)), n_features=n_features,
                distance=draw(st.floats(0.0, 5.0)), noise=draw(st.sampled_from([0.0, 0.3])),
                spectrum=draw(st.one_of(st.none(), st.floats(1.0, 50.0))),
                w0_norm=draw(st.floats(0.0, 3.0)), n_test=16,
                random_state=draw(st.integers(0, 2**32 - 1)))


@given(quadratic_params())
@settings(max_examples=25)
def test_card_constants_match_an_independent_computation(params):
    dataset = make_quadratic_task(**params)
    card, arrays = dataset.card, dataset.arrays
    X, y, n = dataset.X, dataset.y, params["n_samples"]
    w_star = np.linalg.solve(X.T @ X, X.T @ y)
    singular = np.linalg.svd(X, compute_uv=False)
    np.testing.assert_allclose(arrays["w_star"], w_star, rtol=1e-6, atol=1e-9)
    assert card["D"] == pytest.approx(np.linalg.norm(arrays["w0"] - w_star), rel=1e-6, abs=1e-9)
    assert card["mu"] == pytest.approx(singular[-1] ** 2 / n, rel=1e-8)
    assert card["beta"] == pytest.approx(singular[0] ** 2 / n, rel=1e-8)
    mu_loo = min(np.linalg.svd(np.delete(X, i, 0), compute_uv=False)[-1] ** 2 / (n - 1)
                 for i in range(n))
    assert card["mu_loo"] == pytest.approx(mu_loo, rel=1e-8)
    assert card["distance"] == pytest.approx(params["distance"], rel=1e-12, abs=1e-15)
    assert np.linalg.norm(arrays["teacher"] - arrays["w0"]) == pytest.approx(
        params["distance"], rel=1e-12, abs=1e-15)
    assert np.linalg.norm(arrays["w0"]) == pytest.approx(params["w0_norm"], rel=1e-12, abs=1e-15)
    # The gradient of the mean squared loss vanishes at w_star.
    np.testing.assert_allclose(X.T @ (X @ arrays["w_star"] - y) / n, 0, atol=1e-9)


def test_noiseless_targets_come_from_the_teacher_so_D_equals_delta():
    dataset = make_quadratic_task(30, 5, distance=0.7, random_state=1)
    np.testing.assert_allclose(dataset.y, dataset.X @ dataset.arrays["teacher"], atol=1e-12)
    np.testing.assert_allclose(dataset.y_test, dataset.X_test @ dataset.arrays["teacher"],
                               atol=1e-12)
    assert dataset.card["D"] == pytest.approx(0.7, rel=1e-9)


def test_spectrum_sets_the_input_covariance():
    dataset = make_quadratic_task(1500, 3, distance=0.1, spectrum=[4.0, 1.0, 0.25], n_test=1,
                                  random_state=2)
    np.testing.assert_allclose(np.linalg.eigvalsh(np.cov(dataset.X.T)), [0.25, 1.0, 4.0],
                               rtol=0.15)


def test_same_seed_same_arrays_different_seed_different():
    first, again, other = (make_quadratic_task(20, 3, distance=1.0, noise=0.1, random_state=s)
                           for s in (0, 0, 1))
    np.testing.assert_array_equal(first.X, again.X)
    np.testing.assert_array_equal(first.y, again.y)
    assert first.card == again.card
    assert not np.array_equal(first.X, other.X) and first.id != other.id


@pytest.mark.parametrize("overrides, name", [
    ({"n_samples": 5}, "n_samples"),
    ({"n_features": 0}, "n_features"),
    ({"distance": -1.0}, "distance"),
    ({"distance": float("nan")}, "distance"),
    ({"noise": -0.1}, "noise"),
    ({"spectrum": 0.9}, "spectrum"),
    ({"w0_norm": -1.0}, "w0_norm"),
    ({"n_test": 0}, "n_test"),
])
def test_invalid_parameter_raises_naming_it(overrides, name):
    with pytest.raises(ValueError, match=name):
        make_quadratic_task(**{"n_samples": 20, "n_features": 4, "distance": 0.5, **overrides})
