"""Estimators recover known constants on constructed instances."""
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from theory_helpers import certified_separable, least_squares_instance

from theory.bounds.full_constants import full_constants
from theory.context import RunContext
from theory.estimators import (hessian_extreme_eigenvalues, least_squares_constants, max_margin,
                               max_margin_solution, normalised_margin, support_vector_term)

SEEDS = st.integers(0, 2 ** 32 - 1)


@settings(max_examples=15)
@given(seed=SEEDS, dim=st.integers(1, 12))
def test_lanczos_matches_dense_eigenvalues(seed, dim):
    rng = np.random.default_rng(seed)
    A = rng.normal(size=(dim, dim))
    A = A + A.T
    low, high = hessian_extreme_eigenvalues(lambda v: A @ v, dim)
    exact = np.linalg.eigvalsh(A)
    assert low == pytest.approx(exact[0], abs=1e-8 * (1 + abs(exact).max()))
    assert high == pytest.approx(exact[-1], abs=1e-8 * (1 + abs(exact).max()))


def _torch_least_squares(X, y):
    X_t, y_t = torch.as_tensor(X), torch.as_tensor(y)

    def objective(w, sample_weights):
        return (sample_weights * 0.5 * (X_t @ w - y_t) ** 2).sum() / sample_weights.sum()

    return objective


@settings(max_examples=4)
@given(seed=SEEDS, l2sp=st.sampled_from([0.0, 0.2]))
def test_hvp_surrogate_constants_equal_the_exact_quadratic_ones(seed, l2sp):
    # An MLP-style run whose objective is least squares, evaluated at w*: Lanczos on torch.func HVPs
    # must give the exact μ, μ', β, δ_H, ρ_i and D of the quadratic path.
    run = least_squares_instance(seed, n=7, d=4, l2sp=l2sp, lr_scale=0.5, steps=1, left_out=2)
    exact = full_constants(run)
    w_star = least_squares_constants(run.X, run.y, run.w0, l2sp).w_star
    surrogate = full_constants(RunContext(
        setting="full", model="mlp", loss="squared", X=run.X, y=run.y, left_out=2, lr=run.lr,
        iteration=1, batch_size=None, w0=run.w0, w_full=w_star, w_loo=w_star, l2sp=l2sp,
        objective=_torch_least_squares(run.X, run.y)))
    for key in ("mu", "mu_loo", "beta", "delta_H", "rho", "D"):
        assert surrogate[key] == pytest.approx(exact[key], rel=1e-7, abs=1e-9), key
    assert surrogate["quadratic"] == 0.0


def test_least_squares_constants_closed_form():
    rng = np.random.default_rng(0)
    X, y, w0 = rng.normal(size=(8, 3)), rng.normal(size=8), rng.normal(size=3)
    lam = 0.3
    c = least_squares_constants(X, y, w0, lam)
    w_star = np.linalg.solve(X.T @ X / 8 + lam * np.eye(3), X.T @ y / 8 + lam * w0)
    np.testing.assert_allclose(c.w_star, w_star, rtol=1e-10)
    residual = X @ w_star - y
    rho = np.linalg.norm(X * residual[:, None] + lam * (w_star - w0), axis=1)
    np.testing.assert_allclose(c.rho, rho, rtol=1e-10)
    # The per-sample gradients of the regularised losses sum to n∇F(w*) = 0.
    np.testing.assert_allclose((X * residual[:, None] + lam * (w_star - w0)).sum(0), 0, atol=1e-12)
    assert c.D == pytest.approx(np.linalg.norm(w0 - w_star))


def test_underdetermined_least_squares_uses_the_minimiser_nearest_w0():
    rng = np.random.default_rng(1)
    X, y, w0 = rng.normal(size=(3, 6)), rng.normal(size=3), rng.normal(size=6)
    c = least_squares_constants(X, y, w0)
    np.testing.assert_allclose(X @ c.w_star, y, atol=1e-10)
    np.testing.assert_allclose(c.w_star, w0 + np.linalg.pinv(X) @ (y - X @ w0), atol=1e-10)
    assert c.mu == 0.0


@settings(max_examples=25)
@given(seed=SEEDS, n=st.integers(4, 30), d=st.integers(2, 6), gamma=st.floats(0.05, 2.0),
       n_support=st.integers(2, 4))
def test_qp_recovers_the_certified_margin_and_direction(seed, n, d, gamma, n_support):
    Z, signs, u = certified_separable(seed, n=n, d=d, gamma=gamma, n_support=min(n_support, n))
    X, y = signs[:, None] * Z, (signs > 0).astype(int)
    found_gamma, found_u, support = max_margin(X, y)
    assert found_gamma == pytest.approx(gamma, rel=1e-9)
    np.testing.assert_allclose(found_u, u, atol=1e-8)
    assert set(support) <= set(range(min(n_support, n)))
    solution = max_margin_solution(Z)
    assert solution.kkt_residual < 1e-9


@settings(max_examples=15)
@given(seed=SEEDS)
def test_support_vector_term_is_zero_off_the_support_and_exact_on_it(seed):
    Z, _, _ = certified_separable(seed, n=12, d=3, gamma=0.5, n_support=3)
    support = set(max_margin_solution(Z).support)
    for i in range(len(Z)):
        term = support_vector_term(Z, i)
        if i not in support:
            assert term == 0.0
        else:
            direct = max_margin_solution(np.delete(Z, i, axis=0)).direction
            assert term == pytest.approx(np.linalg.norm(direct - max_margin_solution(Z).direction), abs=1e-12)
            assert normalised_margin(np.delete(Z, i, axis=0), direct) >= 0.5 - 1e-12


def test_non_separable_data_is_reported():
    X = np.array([[1.0, 0.0], [-1.0, 0.0], [1.0, 1.0]])
    y = np.array([1, 1, 0])
    gamma, u, support = max_margin(X, y)
    assert gamma == 0.0 and not max_margin_solution(X * np.array([1, 1, -1.0])[:, None]).separable
    with pytest.raises(ValueError, match="y must"):
        max_margin(X, np.array([0, 1, 2]))
