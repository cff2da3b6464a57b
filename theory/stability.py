"""Stability measures as functions of trained weights (vectorised over left-out indices) and seeds."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np
from scipy.stats import bootstrap


class Estimate(NamedTuple):
    """A point estimate with a bootstrap confidence interval ``[low, high]``."""

    value: float
    low: float
    high: float


def parameter_stability(w_full: np.ndarray, w_loo: np.ndarray) -> np.ndarray:
    """‖w_S − w_{S\\i}‖ for each left-out index.

    Parameters
    ----------
    w_full : ndarray of shape (p,) or (m, p)
        Weights trained on S (broadcast against ``w_loo``).
    w_loo : ndarray of shape (m, p)
        Weights trained on each S\\i.

    Returns
    -------
    ndarray of shape (m,)
    """
    return np.linalg.norm(np.asarray(w_loo, float) - np.asarray(w_full, float), axis=-1)


def _unit(w: np.ndarray) -> np.ndarray:
    w = np.asarray(w, dtype=np.float64)
    norm = np.linalg.norm(w, axis=-1, keepdims=True)
    return np.divide(w, norm, out=np.zeros_like(w), where=norm > 0)


def head_direction_stability(w_full: np.ndarray, w_loo: np.ndarray) -> np.ndarray:
    """‖w_S/‖w_S‖ − w_{S\\i}/‖w_{S\\i}‖‖ for each left-out index (a zero head has direction 0)."""
    return np.linalg.norm(_unit(w_loo) - _unit(w_full), axis=-1)


def pointwise_hypothesis_stability(loss_full_at_i: np.ndarray, loss_loo_at_i: np.ndarray) -> np.ndarray:
    """|ℓ(A(S); z_i) − ℓ(A(S\\i); z_i)| for each left-out index i."""
    return np.abs(np.asarray(loss_full_at_i, float) - np.asarray(loss_loo_at_i, float))


def bootstrap_ci(values: np.ndarray, statistic: Callable[..., Any], *,
                 confidence: float = 0.95, n_resamples: int = 2000,
                 random_state: int | np.random.Generator | None = None) -> Estimate:
    """``statistic(values)`` with a BCa bootstrap confidence interval (percentile if BCa fails).

    Parameters
    ----------
    values : array-like of shape (k,)
        One value per independent run (e.g. per seed).
    statistic : callable
        Maps a 1-D array to a float; must accept an ``axis`` keyword (numpy reductions do).
    confidence : float in (0, 1)
    n_resamples : int >= 1
    random_state : int, Generator or None

    Returns
    -------
    Estimate
        With ``low == high == value`` when fewer than two values or all values are equal.
    """
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence!r}")
    if int(n_resamples) < 1:
        raise ValueError(f"n_resamples must be >= 1, got {n_resamples!r}")
    values = np.asarray(values, dtype=np.float64).ravel()
    if values.size == 0:
        raise ValueError("values must hold at least one value, got an empty array")
    value = float(statistic(values))
    if values.size < 2 or np.ptp(values) == 0.0:
        return Estimate(value, value, value)
    rng = np.random.default_rng(random_state)
    for method in ("BCa", "percentile"):
        result = bootstrap((values,), statistic, confidence_level=confidence,
                           n_resamples=int(n_resamples), method=method, random_state=rng)
        low, high = result.confidence_interval
        if np.isfinite(low) and np.isfinite(high):
            return Estimate(value, float(low), float(high))
    return Estimate(value, float("nan"), float("nan"))


def _std(values: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.std(values, axis=axis, ddof=1)


def seed_instability(test_accuracy: np.ndarray, *, confidence: float = 0.95, n_resamples: int = 2000,
                     random_state: int | np.random.Generator | None = None) -> Estimate:
    """Standard deviation (ddof=1) over seeds of the test accuracy, with a bootstrap CI."""
    test_accuracy = np.asarray(test_accuracy, dtype=np.float64).ravel()
    if test_accuracy.size < 2:
        raise ValueError(f"test_accuracy must hold at least 2 seeds, got {test_accuracy.size}")
    return bootstrap_ci(test_accuracy, _std, confidence=confidence, n_resamples=n_resamples,
                        random_state=random_state)


def head_direction_spread(heads: np.ndarray, *, confidence: float = 0.95, n_resamples: int = 2000,
                          random_state: int | np.random.Generator | None = None) -> Estimate:
    """Seed spread of head directions on one training set, mean_k ‖u_k − ū‖², with a bootstrap CI.

    Parameters
    ----------
    heads : ndarray of shape (K, d)
        One trained head per seed (K >= 2), all on the same training set; u_k = w_k/‖w_k‖ and ū is
        their mean. The value lies in [0, 1] (it is 1 − ‖ū‖²).
    confidence, n_resamples, random_state
        As in :func:`bootstrap_ci`; seeds are resampled with replacement.

    Returns
    -------
    Estimate
    """
    heads = np.asarray(heads, dtype=np.float64)
    if heads.ndim != 2 or len(heads) < 2:
        raise ValueError(f"heads must have shape (K, d) with K >= 2 seeds, got {heads.shape}")
    units = _unit(heads)
    seeds = np.arange(len(units), dtype=np.float64)

    def statistic(index: np.ndarray, axis: int = -1) -> np.ndarray | np.float64:
        # Every resample at once: (..., K) seed indices -> (..., K, d) unit heads.
        chosen = units[np.moveaxis(np.asarray(index, dtype=np.int64), axis, -1)]
        centred = chosen - chosen.mean(axis=-2, keepdims=True)
        return np.mean(np.sum(centred ** 2, axis=-1), axis=-1)

    return bootstrap_ci(seeds, statistic, confidence=confidence, n_resamples=n_resamples,
                        random_state=random_state)


def failed_run_rate(test_accuracy: np.ndarray, majority_accuracy: float | np.ndarray, *,
                    confidence: float = 0.95) -> Estimate:
    """Fraction of seeds whose test accuracy is at or below the majority-class accuracy, with a CI.

    The interval is the Wilson score interval, not a bootstrap: a bootstrap of a proportion over a
    handful of seeds degenerates to a point whenever every run fails or none does.
    """
    from scipy.stats import binomtest

    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence!r}")
    test_accuracy = np.asarray(test_accuracy, dtype=np.float64).ravel()
    if test_accuracy.size == 0:
        raise ValueError("test_accuracy must hold at least one seed, got an empty array")
    failed = test_accuracy <= np.asarray(majority_accuracy, dtype=np.float64) + 1e-12
    k, m = int(failed.sum()), failed.size
    interval = binomtest(k, m).proportion_ci(confidence_level=confidence, method="wilson")
    return Estimate(k / m, float(interval.low), float(interval.high))
