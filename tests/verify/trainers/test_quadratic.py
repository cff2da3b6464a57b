"""Quadratic fine-tuning: batched GD equals the closed form and the per-model loop, singular
Hessians, penalties, masks and divergence."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from verify.trainers import naive, quadratic
from verify.trainers.head import BLOWUP, smoothness


def leave_one_out_masks(n):
    masks = np.ones((n + 1, n), dtype=bool)
    masks[np.arange(1, n + 1), np.arange(n)] = False
    return masks


def instance(seed, n, d):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)) * rng.uniform(0.3, 2.0, size=d)
    y = X @ rng.normal(size=d) + 0.3 * rng.normal(size=n)
    return X, y, rng.normal(size=d)


@settings(max_examples=10)
@given(seed=st.integers(0, 10_000), n=st.integers(2, 12), d=st.integers(1, 6),
       lr_scale=st.floats(0.05, 1.95), l2sp=st.sampled_from([0.0, 0.1, 1.0]),
       weight_decay=st.sampled_from([0.0, 0.05]))
def test_gd_equals_closed_form_and_naive_loop(seed, n, d, lr_scale, l2sp, weight_decay):
    X, y, w0 = instance(seed, n, d)
    masks = leave_one_out_masks(n)[: n + 1 if n > 2 else 2]
    lr = lr_scale / (smoothness(X, "squared", masks=masks).max() + l2sp + weight_decay)
    points = [0, 1, 5, 40, 200]
    arguments = dict(masks=masks, w0=w0, lr=lr, l2sp=l2sp, weight_decay=weight_decay)
    trace = quadratic.train_quadratic(X, y, n_steps=200, checkpoints=points, **arguments)
    exact = quadratic.quadratic_closed_form(X, y, iterations=points, **arguments)
    loop = naive.train_quadratic(X, y, n_steps=200, checkpoints=points, **arguments)
    scale = max(1.0, np.abs(exact).max())
    np.testing.assert_allclose(trace.weights["w"], exact, rtol=0, atol=1e-10 * scale)
    np.testing.assert_allclose(trace.weights["w"], loop.weights["w"], rtol=0, atol=1e-10 * scale)
    np.testing.assert_allclose(trace.train_loss, loop.train_loss, rtol=1e-9, atol=1e-12)
    assert (trace.diverged_at == -1).all()


def test_singular_hessian_keeps_gd_in_w0_plus_row_space_and_converges_to_min_norm_displacement():
    X, y, w0 = instance(1, 6, 5)
    masks = np.zeros((2, 6), dtype=bool)
    masks[0, :2] = True          # 2 samples in 5 dimensions: H has rank 2
    masks[1, :] = True
    lr = 1.0 / smoothness(X, "squared", masks=masks).max()
    points = [10, 200, 3000]
    trace = quadratic.train_quadratic(X, y, masks=masks, w0=w0, lr=lr, n_steps=3000,
                                      checkpoints=points)
    exact = quadratic.quadratic_closed_form(X, y, masks=masks, w0=w0, lr=lr, iterations=points)
    np.testing.assert_allclose(trace.weights["w"], exact, rtol=0, atol=1e-10)
    w_star = quadratic.quadratic_minimiser(X, y, masks=masks, w0=w0)
    rows = X[:2]
    np.testing.assert_allclose(rows @ w_star[0], y[:2], atol=1e-10)        # interpolates its data
    displacement = w_star[0] - w0
    projection = rows.T @ np.linalg.lstsq(rows.T, displacement, rcond=None)[0]
    np.testing.assert_allclose(displacement, projection, atol=1e-10)       # in the row space
    for t in range(3):
        step = trace.weights["w"][t, 0] - w0
        np.testing.assert_allclose(step, rows.T @ np.linalg.lstsq(rows.T, step, rcond=None)[0],
                                   atol=1e-10)
    np.testing.assert_allclose(trace.weights["w"][-1], w_star, atol=1e-8)


def test_penalties_move_the_minimiser_as_documented():
    X, y, w0 = instance(2, 10, 3)
    masks = np.ones((1, 10))
    for l2sp, decay in [(0.5, 0.0), (0.0, 0.5), (0.3, 0.2)]:
        w_star = quadratic.quadratic_minimiser(X, y, masks=masks, w0=w0, l2sp=l2sp,
                                               weight_decay=decay)[0]
        gradient = X.T @ (X @ w_star - y) / 10 + l2sp * (w_star - w0) + decay * w_star
        np.testing.assert_allclose(gradient, 0.0, atol=1e-12)


# d = 3 trains through each model's own Hessian, d = DOWNDATE_MIN_FEATURES through the rank-one
# downdates of the Gram matrix (module docstring).
PATHS = pytest.mark.parametrize("d", [3, quadratic.DOWNDATE_MIN_FEATURES], ids=["dense", "downdate"])


@PATHS
def test_masked_out_sample_has_no_influence(d):
    X, y, w0 = instance(3, 7, d)
    masks = leave_one_out_masks(7)
    arguments = dict(masks=masks, w0=w0, lr=0.1, n_steps=50, checkpoints=[50])
    changed_X, changed_y = X.copy(), y.copy()
    changed_X[4], changed_y[4] = np.linspace(-1.0, 2.0, d), 10.0
    before = quadratic.train_quadratic(X, y, **arguments).weights["w"][0]
    after = quadratic.train_quadratic(changed_X, changed_y, **arguments).weights["w"][0]
    excludes = ~masks[:, 4]
    np.testing.assert_allclose(after[excludes], before[excludes], rtol=0, atol=1e-14)
    assert np.abs(after[~excludes] - before[~excludes]).min() > 1e-6


@PATHS
def test_divergence_beyond_two_over_beta_at_the_step_the_closed_form_predicts(d):
    X, y, w0 = instance(4, 8, d)
    masks = leave_one_out_masks(8)
    beta = smoothness(X, "squared", masks=masks)
    lr = 2.2 / beta[0]                  # beyond 2/beta for the full set, and for most S\i
    points = np.arange(0, 401)
    trace = quadratic.train_quadratic(X, y, masks=masks, w0=w0, lr=lr, n_steps=400, checkpoints=points)
    exact = quadratic.quadratic_closed_form(X, y, masks=masks, w0=w0, lr=lr, iterations=points)
    p = masks / masks.sum(1, keepdims=True)
    objective = 0.5 * (p * (exact @ X.T - y) ** 2).sum(-1)              # (K, M)
    reference = np.maximum(objective[0], 0.5 * p @ y ** 2)
    blown = objective > BLOWUP * reference
    expected = np.where(blown.any(0), blown.argmax(0), -1)
    assert (expected >= 0).sum() >= 2 and (expected[lr * beta < 2] == -1).all()
    np.testing.assert_array_equal(trace.diverged_at, expected)
    for m, step in enumerate(expected):
        if step >= 0:
            assert np.isnan(trace.weights["w"][step:, m]).all()
            assert np.isfinite(trace.weights["w"][:step, m]).all()
    np.testing.assert_array_equal(naive.train_quadratic(X, y, masks=masks, w0=w0, lr=lr, n_steps=400,
                                                        checkpoints=points).diverged_at, expected)


@pytest.mark.parametrize("change, message", [
    (dict(lr=-1.0), "lr"),
    (dict(w0=np.zeros(4)), "w0"),
    (dict(l2sp=-0.1), "l2sp"),
    (dict(weight_decay=float("nan")), "weight_decay"),
    (dict(masks=np.ones((2, 5))), "masks"),
    (dict(checkpoints=[0, 11]), "checkpoints"),
])
def test_invalid_arguments_raise_naming_the_parameter(change, message):
    X, y, w0 = instance(0, 6, 3)
    arguments = dict(masks=np.ones((2, 6)), w0=w0, lr=0.1, n_steps=10, checkpoints=[10])
    with pytest.raises(ValueError, match=message):
        quadratic.train_quadratic(X, y, **{**arguments, **change})


@pytest.mark.parametrize("penalties", [dict(), dict(l2sp=0.3, weight_decay=0.05)], ids=["plain", "penalised"])
def test_rank_one_downdates_equal_the_per_model_hessians_to_1e_12(penalties):
    # Every left-out set of a default-grid shape (n = 40, d = 32 > DOWNDATE_MIN_FEATURES): the
    # downdated Gram matrix gives the weights of each model's own Hessian (the per-model loop,
    # and the closed form by eigendecomposition) to 1e-12 after 1000 steps at lr = 1/β̂.
    X, y, w0 = instance(5, 40, 32)
    masks = leave_one_out_masks(40)
    lr = 1.0 / (smoothness(X, "squared", masks=masks).max() + sum(penalties.values()))
    points = [0, 1, 30, 1000]
    arguments = dict(masks=masks, w0=w0, lr=lr, **penalties)
    trace = quadratic.train_quadratic(X, y, n_steps=1000, checkpoints=points, **arguments)
    exact = quadratic.quadratic_closed_form(X, y, iterations=points, **arguments)
    checked = [0, 17, 40]
    loop = naive.train_quadratic(X, y, n_steps=1000, checkpoints=points,
                                 **{**arguments, "masks": masks[checked]})
    assert np.abs(trace.weights["w"][-1] - w0).max() > 0.1
    np.testing.assert_allclose(trace.weights["w"][:, checked], loop.weights["w"], rtol=0, atol=1e-12)
    np.testing.assert_allclose(trace.weights["w"], exact, rtol=0, atol=1e-12)
    np.testing.assert_allclose(trace.train_loss[:, checked], loop.train_loss, rtol=1e-12, atol=0)
