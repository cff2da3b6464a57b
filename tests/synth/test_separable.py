import numpy as np
import pytest
from synth_certificates import assert_certificate_matches_exact_solver, linearly_separable
from hypothesis import given, reject, settings
from hypothesis import strategies as st

from synth import make_separable

@st.composite
def separable_params(draw, *, noisy=False):
    n_classes = draw(st.sampled_from([2, 2, 3, 4]))
    n_features = draw(st.integers(1 if n_classes == 2 else n_classes, 8))
    radius = draw(st.floats(0.5, 5.0))
    ceiling = radius / np.sqrt(2) if n_classes > 2 else radius
    params = dict(
        n_samples=draw(st.integers(2 * n_classes + 2, 48)),
        n_features=n_features,
        n_classes=n_classes,
        radius=radius,
        margin=draw(st.floats(0.02, 0.95)) * ceiling,
        spectrum=draw(st.one_of(st.none(), st.floats(1.0, 100.0))),
        label_noise=draw(st.floats(0.02, 0.3)) if noisy else 0.0,
        random_state=draw(st.integers(0, 2**63 - 1)),
    )
    if draw(st.booleans()):
        params["n_support"] = draw(st.integers(n_classes, params["n_samples"] // 2))
    return params


def generate(params):
    try:
        return make_separable(**params)
    except ValueError as exc:  # drawn sizes that the class counts cannot hold
        if any(name in str(exc) for name in ("n_support", "label_noise", "class_weights")):
            reject()
        raise


@given(separable_params())
@settings(max_examples=30)
def test_certified_margin_direction_and_support_match_exact_solver(params):
    dataset = generate(params)
    assert dataset.card["margin"] == pytest.approx(params["margin"], rel=1e-12)
    assert dataset.card["separable"] and dataset.card["n_flipped"] == 0
    assert_certificate_matches_exact_solver(dataset)


@given(separable_params())
@settings(max_examples=20)
def test_radius_is_a_bound_and_attained(params):
    dataset = generate(params)
    norms = np.linalg.norm(dataset.X, axis=1)
    assert norms.max() == pytest.approx(params["radius"], rel=1e-12)
    assert dataset.card["radius"] == pytest.approx(params["radius"], rel=1e-12)
    assert np.all(norms <= params["radius"] * (1 + 1e-12))
    # Held-out points come from the non-support construction: inside the ball, beyond the margin.
    assert np.all(np.linalg.norm(dataset.X_test, axis=1) <= params["radius"] * (1 + 1e-12))


@given(separable_params(), st.lists(st.floats(0.05, 1.0), min_size=4, max_size=4))
@settings(max_examples=20)
def test_class_counts_are_exact_largest_remainder_roundings(params, raw_weights):
    weights = np.array(raw_weights[:params["n_classes"]])
    dataset = generate({**params, "class_weights": weights.tolist()})
    for labels, n in ((dataset.y, params["n_samples"]), (dataset.y_test, 256)):
        counts = np.bincount(labels, minlength=params["n_classes"])
        assert counts.sum() == n
        assert np.all(np.abs(counts - n * weights / weights.sum()) < 1)
    assert dataset.card["class_counts"] == np.bincount(dataset.y).tolist()


@given(separable_params(noisy=True))
@settings(max_examples=25)
def test_label_noise_flips_exactly_and_certifies_non_separability(params):
    dataset = generate(params)
    card, arrays = dataset.card, dataset.arrays
    expected = int(np.floor(params["label_noise"] * params["n_samples"] + 0.5))
    flipped = np.flatnonzero(dataset.y != arrays["y_clean"])
    assert card["n_flipped"] == expected == len(flipped)
    np.testing.assert_array_equal(flipped, arrays["flipped"])
    # Class counts are those requested (balanced), after flipping.
    counts = np.bincount(dataset.y, minlength=params["n_classes"])
    assert counts.max() - counts.min() <= 1
    # The clean labels keep the certificate.
    assert_certificate_matches_exact_solver(dataset)
    if expected == 0:
        assert card["separable"]
        return
    assert not card["separable"] and card["min_linear_errors"] == expected
    partners = arrays["flip_partners"]
    assert len(np.unique(partners)) == expected and not np.intersect1d(partners, flipped).size
    for i, j in zip(flipped, partners):
        scale = np.linalg.norm(dataset.X[i]) / np.linalg.norm(dataset.X[j])
        assert scale >= 1 - 1e-12
        np.testing.assert_allclose(dataset.X[i], scale * dataset.X[j], atol=1e-12)
        assert dataset.y[i] != dataset.y[j]
    # u_star misclassifies exactly the flipped points, so min_linear_errors is attained.
    u = arrays["u_star"]
    predicted = (dataset.X @ u > 0).astype(int) if params["n_classes"] == 2 \
        else np.argmax(dataset.X @ u.T, axis=1)
    np.testing.assert_array_equal(np.flatnonzero(predicted != dataset.y), flipped)
    if params["n_classes"] == 2:
        assert not linearly_separable((2.0 * dataset.y - 1.0)[:, None] * dataset.X)


def test_noisy_binary_set_is_not_separable_by_an_independent_lp():
    dataset = make_separable(60, 10, margin=0.2, label_noise=0.05, random_state=0)
    assert dataset.card["n_flipped"] == 3 and not dataset.card["separable"]
    assert not linearly_separable((2.0 * dataset.y - 1.0)[:, None] * dataset.X)
    clean = make_separable(60, 10, margin=0.2, random_state=0)
    assert linearly_separable((2.0 * clean.y - 1.0)[:, None] * clean.X)


def test_support_dual_is_the_kkt_multiplier():
    dataset = make_separable(50, 6, margin=0.25, n_support=5, random_state=3)
    support, dual = dataset.arrays["support"], dataset.arrays["support_dual"]
    Z = (2.0 * dataset.y - 1.0)[:, None] * dataset.X
    assert np.all(dual > 0)
    np.testing.assert_allclose(dual @ Z[support], dataset.arrays["u_star"] / 0.25, atol=1e-12)


def test_multiclass_support_dual_holds_for_every_pair():
    dataset = make_separable(45, 7, margin=0.2, n_classes=3, n_support=6, random_state=4)
    support, dual, y = dataset.arrays["support"], dataset.arrays["support_dual"], dataset.y
    u = dataset.arrays["class_axes"]
    for a, b in ((0, 1), (0, 2), (1, 2)):
        mask = np.isin(y[support], [a, b])
        signs = np.where(y[support][mask] == a, 1.0, -1.0)
        w = (dual[mask] * signs) @ dataset.X[support][mask]
        np.testing.assert_allclose(w, (u[a] - u[b]) / np.sqrt(2) / 0.2, atol=1e-12)


def test_same_seed_same_arrays_different_seed_different():
    first = make_separable(40, 5, margin=0.1, label_noise=0.1, spectrum=10.0, random_state=7)
    again = make_separable(40, 5, margin=0.1, label_noise=0.1, spectrum=10.0, random_state=7)
    other = make_separable(40, 5, margin=0.1, label_noise=0.1, spectrum=10.0, random_state=8)
    for name in ("X", "y", "X_test", "y_test"):
        np.testing.assert_array_equal(getattr(first, name), getattr(again, name))
    for name in first.arrays:
        np.testing.assert_array_equal(first.arrays[name], again.arrays[name])
    assert first.card == again.card
    assert not np.array_equal(first.X, other.X) and first.id != other.id


def test_card_seed_reproduces_an_unseeded_or_generator_draw():
    for state in (None, np.random.default_rng(5)):
        dataset = make_separable(30, 4, margin=0.2, random_state=state)
        replay = make_separable(30, 4, margin=0.2, random_state=dataset.card["seed"])
        np.testing.assert_array_equal(dataset.X, replay.X)
        assert dataset.id == replay.id


def test_anisotropic_spectrum_shapes_the_non_support_cloud():
    variances = np.geomspace(1.0, 1e-4, 6)
    dataset = make_separable(256, 6, margin=0.05, spectrum=variances.tolist(), random_state=0)
    u = dataset.arrays["u_star"]
    Z = (2.0 * dataset.y - 1.0)[:, None] * dataset.X
    perpendicular = Z - np.outer(Z @ u, u)
    spread = np.linalg.eigvalsh(np.cov(perpendicular.T))[1:]
    assert spread[-1] / spread[0] > 100  # isotropic data would give a ratio near 1


@pytest.mark.parametrize("overrides, name", [
    ({"margin": 0.0}, "margin"),
    ({"margin": -0.1}, "margin"),
    ({"margin": 1.0}, "margin"),
    ({"margin": 1.5}, "margin"),
    ({"margin": 0.75, "n_classes": 3, "n_features": 4}, "margin"),
    ({"radius": 0.0}, "radius"),
    ({"n_samples": 1}, "n_samples"),
    ({"n_samples": 2.5}, "n_samples"),
    ({"n_features": 0}, "n_features"),
    ({"n_classes": 3, "n_features": 2}, "n_features"),
    ({"n_classes": 1}, "n_classes"),
    ({"n_classes": 50}, "n_classes"),
    ({"n_support": 20}, "n_support"),
    ({"n_support": 0}, "n_support"),
    ({"n_support": 3, "n_features": 1}, "n_support"),
    ({"n_support": 4, "n_classes": 3, "n_features": 3}, "n_support"),
    ({"label_noise": 0.5}, "label_noise"),
    ({"label_noise": -0.1}, "label_noise"),
    ({"label_noise": 0.45, "n_support": 10}, "label_noise"),
    ({"class_weights": [1.0]}, "class_weights"),
    ({"class_weights": [1.0, -1.0]}, "class_weights"),
    ({"class_weights": [1.0, 1e-6]}, "class_weights"),
    ({"spectrum": 0.5}, "spectrum"),
    ({"spectrum": [1.0, 2.0]}, "spectrum"),
    ({"n_test": 0}, "n_test"),
    ({"random_state": -1}, "random_state"),
    ({"random_state": 2**64}, "random_state"),
    ({"random_state": "seed"}, "random_state"),
])
def test_invalid_parameter_raises_naming_it(overrides, name):
    params = {"n_samples": 20, "n_features": 4, "margin": 0.2, **overrides}
    with pytest.raises(ValueError, match=name):
        make_separable(**params)
