"""Lanczos extreme eigenvalues: accurate on hard spectra, the same bits at any memory alignment."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from theory.lanczos import lanczos_extreme_eigenvalues

SEEDS = st.integers(0, 2 ** 32 - 1)


def clustered_operator(seed: int, dim: int) -> np.ndarray:
    """A symmetric matrix whose smallest eigenvalue (-1e-3) sits at the edge of a dense cluster of
    half the spectrum in (-9e-4, 1e-3): the slow case of a trained network's Hessian."""
    rng = np.random.default_rng(seed)
    basis = np.linalg.qr(rng.standard_normal((dim, dim)))[0]
    spectrum = np.concatenate([[-1e-3], rng.uniform(-9e-4, 1e-3, dim // 2),
                               rng.uniform(0.0, 2.0, dim - 1 - dim // 2)])
    return (basis * spectrum) @ basis.T


def misaligned(vector: np.ndarray, offset: int) -> np.ndarray:
    """``vector`` copied into a buffer ``offset`` float64 entries past an allocation's start."""
    buffer = np.empty(vector.size + offset)
    view = buffer[offset:]
    view[:] = vector
    return view


@settings(max_examples=10)
@given(seed=SEEDS, dim=st.integers(3, 80))
def test_extremes_of_a_clustered_spectrum_match_dense_eigenvalues(seed, dim):
    A = clustered_operator(seed, dim)
    exact = np.linalg.eigvalsh(A)
    low, high = lanczos_extreme_eigenvalues(lambda v: A @ v, dim, tol=1e-10)
    # The residual rule bounds each error by tol * |theta| for an isolated end (the smallest is
    # 1e-4 from its neighbours here); 1e-8 relative to ||A|| leaves a wide margin.
    assert low == pytest.approx(exact[0], abs=1e-8 * abs(exact).max())
    assert high == pytest.approx(exact[-1], abs=1e-8 * abs(exact).max())


@settings(max_examples=5)
@given(seed=SEEDS, dim=st.integers(20, 120))
def test_the_result_is_bitwise_the_same_whatever_the_alignment_of_the_products(seed, dim):
    A = clustered_operator(seed, dim)
    results = {lanczos_extreme_eigenvalues(lambda v, o=offset: misaligned(A @ v, o), dim, tol=1e-8)
               for offset in range(8)}
    assert len(results) == 1


@pytest.mark.parametrize("scale", [0.0, 2.5, -1.0])
def test_a_multiple_of_the_identity_ends_after_one_product_with_its_eigenvalue(scale):
    calls = []

    def matvec(v):
        calls.append(1)
        return scale * v

    # Exact up to the rounding of the unit start vector's norm.
    assert lanczos_extreme_eigenvalues(matvec, 40) == pytest.approx((scale, scale), abs=1e-14)
    assert len(calls) == 1  # the Krylov space is invariant after one product


def test_a_diagonal_operator_is_exact_once_the_space_is_full():
    spectrum = np.linspace(-3.0, 5.0, 9)
    assert lanczos_extreme_eigenvalues(lambda v: spectrum * v, 9, tol=1e-14) == pytest.approx(
        (-3.0, 5.0), abs=1e-12)


def test_too_few_steps_is_an_error_not_a_guess():
    A = clustered_operator(0, 200)
    with pytest.raises(RuntimeError, match="did not converge"):
        lanczos_extreme_eigenvalues(lambda v: A @ v, 200, tol=1e-12, max_steps=8)


@pytest.mark.parametrize("kwargs, message", [
    (dict(dim=0), "dim must be >= 1"), (dict(dim=5, tol=0.0), "tol must be in"),
    (dict(dim=5, tol=1.0), "tol must be in"), (dict(dim=5, max_steps=0), "max_steps must be >= 1")])
def test_invalid_parameters_are_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        lanczos_extreme_eigenvalues(lambda v: v, **kwargs)
