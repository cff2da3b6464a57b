"""Least-squares fine-tuning tasks: the loss is exactly quadratic around the pre-trained weights."""
from __future__ import annotations

from numbers import Integral, Real

import numpy as np
import scipy.linalg
import scipy.stats

from synth.dataset import Dataset, base_card
from synth.distances import euclidean_distance
from synth.validation import (MAX_CONDITION, MAX_MAGNITUDE, Constraint, Derived, Interval,
                              RandomState, check_fits_in_memory, check_random_state,
                              spectrum_constraints, spectrum_variances, validate_params)

# Declared precision range. Spectra up to MAX_CONDITION are necessary but not sufficient: with
# n_samples close to n_features the sample Hessians are worse conditioned than the spectrum, so a
# sample whose beta / mu_loo exceeds MAX_CONDITION is refused (mu and mu_loo then hold to about
# 1e-16 * MAX_CONDITION relative). The card's `distance` is the exact float ||teacher - w0||: the
# requested one to 1e-6 relative plus about 1.1e-16 * w0_norm (the rounding of w0 + delta u).

PARAMETER_CONSTRAINTS: dict[str, list[Constraint]] = {
    "n_features": [Interval(Integral, 1, None)],
    "n_samples": [Interval(Integral, Derived("n_features + 2", lambda p: p["n_features"] + 2),
                           None)],
    "w0_norm": [Interval(Real, 0.0, MAX_MAGNITUDE)],
    "distance": [Interval(Real, 0.0, MAX_MAGNITUDE)],
    "noise": [Interval(Real, 0.0, MAX_MAGNITUDE)],
    "spectrum": spectrum_constraints(MAX_CONDITION),
    "n_test": [Interval(Integral, 1, None)],
    "random_state": [RandomState()],
}


def estimated_bytes(n_samples: int, n_features: int, n_test: int) -> float:
    """Peak memory of ``make_quadratic_task``: a few (n + n_test, d) arrays and d x d matrices
    (measured with tracemalloc: at most 4.6 (n + n_test) d + 5.7 d^2 float64 values)."""
    return 8.0 * (6 * (n_samples + n_test) * n_features + 8 * n_features**2)


def make_quadratic_task(n_samples: int = 100, n_features: int = 10, *, distance: float,
                        noise: float = 0.0, spectrum=None, w0_norm: float = 1.0,
                        n_test: int = 256, random_state=None) -> Dataset:
    """Generate a least-squares task fine-tuned from pre-trained weights ``w0``.

    Loss ``l(w; x, y) = (x . w - y)^2 / 2``, averaged over samples. The teacher sits at distance
    exactly ``distance`` from ``w0`` in a uniformly random direction; targets are
    ``y = x . teacher + noise * N(0, 1)``. The card gives the exact empirical minimiser's
    distance ``D = ||w0 - w*_S||`` and the extreme eigenvalues ``mu``, ``beta`` of
    ``H_S = X^T X / n`` (and ``mu_loo``, the smallest over i of the smallest eigenvalue of
    ``H_{S\\i} = X_{-i}^T X_{-i} / (n - 1)``), so Theorem F's constants are known, not estimated.

    Parameters
    ----------
    n_samples : int, default=100
        At least ``n_features + 2``, so that H_S and every H_{S\\i} are positive definite.
    n_features : int, default=10
        Dimension, at least 1.
    distance : float
        delta = ||teacher - w0||, in ``[0, 1e50]``; the card's ``distance`` is the exact float
        distance of the stored arrays (``distance_requested`` this parameter).
    noise : float, default=0.0
        Standard deviation of the target noise, in ``[0, 1e50]``.
    spectrum : float or sequence of float, default=None
        Input covariance eigenvalues along random orthonormal axes: ``None`` isotropic (all 1),
        a condition number in ``[1, 1e8]`` (geometric decay from 1), or ``n_features`` values
        in ``[1e-50, 1e50]`` with max/min at most 1e8 (so ``mu`` is exact to 1e-6 relative).
    w0_norm : float, default=1.0
        ||w0||, in ``[0, 1e50]``; its direction is uniformly random.
    n_test : int, default=256
        Number of held-out points, at least 1.
    random_state : int, numpy.random.Generator or None, default=None

    Returns
    -------
    Dataset
        Kind ``"quadratic"`` with float64 targets and arrays ``w0``, ``teacher``, ``w_star``.

    Raises
    ------
    ValueError
        If a parameter is outside its allowed range (the message names it), if the arrays
        would not fit in the memory available (the message gives the estimate), or if the
        sampled Hessians are too ill-conditioned (beta / mu_loo > 1e8) for mu_loo to hold to
        1e-6.
    """
    params = dict(n_samples=n_samples, n_features=n_features, distance=distance, noise=noise,
                  spectrum=spectrum, w0_norm=w0_norm, n_test=n_test, random_state=random_state)
    checked = validate_params(PARAMETER_CONSTRAINTS, params)
    n_features, n_samples, distance, noise, w0_norm, n_test = (
        checked[name] for name in ("n_features", "n_samples", "distance", "noise", "w0_norm",
                                   "n_test"))
    variances = spectrum_variances(checked["spectrum"], n_features)
    check_fits_in_memory(estimated_bytes(n_samples, n_features, n_test),
                         f"make_quadratic_task with n_samples={n_samples}, "
                         f"n_features={n_features}, n_test={n_test}")
    seed, rng = check_random_state(random_state)
    params["random_state"] = seed

    axes = scipy.stats.ortho_group.rvs(n_features, random_state=rng) if n_features > 1 \
        else np.ones((1, 1))
    w0 = w0_norm * _unit_vector(rng, n_features)
    teacher = w0 + distance * _unit_vector(rng, n_features)

    def draw(size):
        inputs = (rng.standard_normal((size, n_features)) * np.sqrt(variances)) @ axes.T
        return inputs, inputs @ teacher + noise * rng.standard_normal(size)

    X, y = draw(n_samples)
    X_test, y_test = draw(n_test)
    w_star = scipy.linalg.lstsq(X, y)[0]
    hessian_eigenvalues = scipy.linalg.eigvalsh(X.T @ X / n_samples)
    loo_smallest = min(
        scipy.linalg.eigvalsh(np.delete(X, i, axis=0).T @ np.delete(X, i, axis=0)
                              / (n_samples - 1), subset_by_index=[0, 0])[0]
        for i in range(n_samples))

    sample_condition = hessian_eigenvalues[-1] / loo_smallest if loo_smallest > 0 else np.inf
    if not sample_condition <= MAX_CONDITION:
        raise ValueError(f"n_samples={n_samples}, n_features={n_features}: the sampled Hessians "
                         f"are too ill-conditioned to certify mu_loo to 1e-6 (beta / mu_loo = "
                         f"{sample_condition:.3g} > {MAX_CONDITION:g}); use more samples or a "
                         f"smaller spectrum condition number")
    card = base_card(kind="quadratic", generator=make_quadratic_task, params=params, seed=seed,
                     X=X, y=y, X_test=X_test, n_classes=0)
    card.update({
        "loss": "squared: (x . w - y)^2 / 2, mean over samples",
        "distance_requested": distance,
        "distance": euclidean_distance(teacher, w0),
        "D": float(np.linalg.norm(w0 - w_star)),
        "mu": float(hessian_eigenvalues[0]),
        "beta": float(hessian_eigenvalues[-1]),
        "mu_loo": float(loo_smallest),
        "noise": noise,
    })
    arrays = {"w0": w0, "teacher": teacher, "w_star": w_star}
    return Dataset(X=X, y=y, X_test=X_test, y_test=y_test, card=card, arrays=arrays)


def _unit_vector(rng: np.random.Generator, dimension: int) -> np.ndarray:
    direction = rng.standard_normal(dimension)
    return direction / np.linalg.norm(direction)
