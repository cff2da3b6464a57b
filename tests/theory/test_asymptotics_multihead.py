"""The asymptotic predictor of GD on separable data, and the multi-head (MHLoss) predictions."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from theory_helpers import certified_separable, exponential_tailed_gd

from theory.asymptotics import asymptotic_weights
from theory.multihead import (encoder_gradient_scale, mean_head_direction_variance,
                              mean_head_null_variance, per_head_lr)

CHECKPOINTS = (100, 1000, 10000)


@settings(max_examples=6)
@given(seed=st.integers(0, 2 ** 32 - 1), loss=st.sampled_from(["exponential", "logistic"]))
def test_predictor_error_relative_to_gd_shrinks_with_t(seed, loss):
    # Soudry et al. (2018, Thm. 3): w(t) = ŵ log t + w̃ + r(t) with r(t) bounded, so the relative
    # error ‖r(t)‖/‖w(t)‖ falls like 1/log t; how fast r itself decays (t^(−min(λ_min(A), θ))) has no
    # computable constant, so no absolute threshold at a finite t is a theorem (the former "< 0.15 at
    # t = 10^4" failed on 2 % of draws, e.g. seed 296961: 0.1997). Asserted: the relative error falls
    # by at least the stated margin per decade, and the residual stays bounded by a stated factor of
    # its value at t = 10^2. Measured on 23,000 draws per loss of this strategy: the largest ratio of
    # consecutive relative errors is 0.74 (asserted < 0.9), the largest ‖r(10^4)‖/‖r(10^2)‖ is 1.14
    # (asserted <= 2).
    Z, signs, _ = certified_separable(seed, n=7, d=2, gamma=0.5, n_support=2)
    X, y = signs[:, None] * Z, (signs > 0).astype(int)
    lr = 0.5 / np.max(np.sum(Z ** 2, axis=1))
    gd = exponential_tailed_gd(Z, np.zeros(2), loss=loss, lr=lr, checkpoints=CHECKPOINTS)
    predicted = asymptotic_weights(X, y, lr=lr, iteration=np.array(CHECKPOINTS))
    residuals = [np.linalg.norm(gd[t] - p) for t, p in zip(CHECKPOINTS, predicted)]
    errors = [r / np.linalg.norm(gd[t]) for r, t in zip(residuals, CHECKPOINTS)]
    assert errors[1] < 0.9 * errors[0] and errors[2] < 0.9 * errors[1]
    assert max(residuals[1:]) <= 2.0 * residuals[0]


def test_mean_and_sum_losses_differ_by_the_step_size():
    Z, signs, _ = certified_separable(0, n=6, d=3, gamma=0.4, n_support=2)
    X, y = signs[:, None] * Z, (signs > 0).astype(int)
    np.testing.assert_allclose(asymptotic_weights(X, y, lr=0.3, iteration=50),
                               asymptotic_weights(X, y, lr=0.3 / 6, iteration=50, reduction="sum"))
    # ŵ log(ηt/n): multiplying η by k is the same as multiplying t by k.
    np.testing.assert_allclose(asymptotic_weights(X, y, lr=0.6, iteration=50),
                               asymptotic_weights(X, y, lr=0.3, iteration=100))


def _multihead_gd(Z, inits, *, n_heads, lr, steps, reduction):
    """GD on (1/H)Σ_h L(w_h) (or the sum); rows of ``inits`` are the heads of one or more models."""
    heads = inits.copy()
    scale = 1.0 / n_heads if reduction == "mean" else 1.0
    for _ in range(steps):
        slope = np.exp(-heads @ Z.T)
        heads = heads + lr * scale * slope @ Z / len(Z)
    return heads


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_heads_train_independently_with_the_per_head_step(reduction):
    Z, _, _ = certified_separable(1, n=5, d=3, gamma=0.5, n_support=2)
    inits = np.random.default_rng(0).normal(size=(3, 3))
    joint = _multihead_gd(Z, inits, n_heads=3, lr=0.3, steps=200, reduction=reduction)
    step = per_head_lr(0.3, n_heads=3, reduction=reduction)
    for h in range(3):
        alone = exponential_tailed_gd(Z, inits[h], loss="exponential", lr=step, checkpoints=(200,))[200]
        np.testing.assert_allclose(joint[h], alone, rtol=1e-12, atol=1e-12)
    assert encoder_gradient_scale(n_heads=3, reduction=reduction) == (3.0 if reduction == "sum" else 1.0)


def test_null_space_part_of_the_mean_head_has_variance_over_h():
    # Features of rank 2 in R^4: the 2-dimensional null space keeps the initial values forever.
    rng = np.random.default_rng(5)
    Z2, signs, _ = certified_separable(2, n=6, d=2, gamma=0.5, n_support=2)
    basis = np.linalg.qr(rng.normal(size=(4, 4)))[0]
    Z = Z2 @ basis[:, :2].T
    X, y = signs[:, None] * Z, (signs > 0).astype(int)
    null = basis[:, 2:]
    sigma, seeds = 0.3, 400
    for n_heads in (1, 4):
        inits = sigma * rng.normal(size=(seeds * n_heads, 4))
        heads = _multihead_gd(Z, inits, n_heads=n_heads, lr=0.2 * n_heads, steps=3000, reduction="mean")
        np.testing.assert_allclose(heads @ null, inits @ null, atol=1e-12)
        mean_heads = heads.reshape(seeds, n_heads, 4).mean(axis=1)
        empirical = np.mean(np.sum((mean_heads @ null) ** 2, axis=1))
        expected = mean_head_null_variance(X, init_std=sigma, n_heads=n_heads)
        assert expected == pytest.approx(2 * sigma ** 2 / n_heads)
        assert empirical == pytest.approx(expected, rel=0.2)
        directions = mean_heads / np.linalg.norm(mean_heads, axis=1, keepdims=True)
        spread = np.sum(np.var(directions, axis=0))
        low, high = mean_head_direction_variance(X, y, lr=0.2 * n_heads, iteration=3000, init_std=sigma,
                                                 n_heads=n_heads)
        # Here the two support vectors span the row space, so the null-space part carries the
        # variance and the spread sits near the low end: measured spread/low = 0.74 (H = 1) and
        # 0.75 (H = 4), below 1 because ‖w̄(t)‖ still exceeds the predictor's ‖c(t)‖ at t = 3000 and
        # ‖w̄‖² includes ‖ν̄‖². Asserted with a margin: spread >= low / 2.
        assert high == pytest.approx(2 * low)  # d / (d - rank X) = 4 / 2
        assert 0.5 * low <= spread <= high


def test_full_rank_features_keep_an_init_dependent_direction_variance():
    # Proposition M.3 as first stated predicted zero seed variance for full-rank X. With d = 3 and two
    # support vectors, the component in span(X) ⊖ span(SV) moves only through non-support gradients
    # and keeps an init-dependent limit (measured here: 61 % of its initial variance at t = 3000).
    from scipy.linalg import orth
    Z, signs, _ = certified_separable(1, n=8, d=3, gamma=0.5, n_support=2)
    X, y = signs[:, None] * Z, (signs > 0).astype(int)
    assert np.linalg.matrix_rank(X) == 3
    support = orth(Z[:2].T)
    off_support = np.eye(3) - support @ support.T
    rng = np.random.default_rng(5)
    sigma, seeds, n_heads = 0.3, 400, 2
    inits = sigma * rng.normal(size=(seeds * n_heads, 3))
    heads = _multihead_gd(Z, inits, n_heads=n_heads, lr=0.2 * n_heads, steps=3000, reduction="mean")
    mean_heads = heads.reshape(seeds, n_heads, 3).mean(axis=1)
    mean_inits = inits.reshape(seeds, n_heads, 3).mean(axis=1)
    kept = np.sum(np.var(mean_heads @ off_support, axis=0)) / np.sum(np.var(mean_inits @ off_support, axis=0))
    assert 0.1 < kept <= 1.0 + 0.2  # non-expansive GD: at most its initial variance (sampling margin)
    # Non-expansive GD: the row-space variance is at most its initial value sigma^2 rank X / H.
    assert np.sum(np.var(mean_heads, axis=0)) <= 1.2 * 3 * sigma ** 2 / n_heads
    directions = mean_heads / np.linalg.norm(mean_heads, axis=1, keepdims=True)
    spread = np.sum(np.var(directions, axis=0))
    low, high = mean_head_direction_variance(X, y, lr=0.2 * n_heads, iteration=3000, init_std=sigma,
                                             n_heads=n_heads)
    assert low == 0.0
    assert 1e-4 < spread <= high


def test_invalid_parameters_are_rejected():
    with pytest.raises(ValueError, match="n_heads"):
        per_head_lr(0.1, n_heads=0)
    with pytest.raises(ValueError, match="reduction"):
        encoder_gradient_scale(n_heads=2, reduction="max")
