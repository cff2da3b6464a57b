"""Stability measures: meaning on hand-computed cases, and the confidence intervals' behaviour."""
import numpy as np
import pytest

from theory.stability import (bootstrap_ci, failed_run_rate, head_direction_spread, head_direction_stability,
                              parameter_stability, pointwise_hypothesis_stability, seed_instability)


def test_measures_on_hand_computed_cases():
    w_full = np.array([3.0, 4.0])
    w_loo = np.array([[3.0, 4.0], [6.0, 8.0], [0.0, 5.0], [-3.0, -4.0]])
    np.testing.assert_allclose(parameter_stability(w_full, w_loo), [0.0, 5.0, np.sqrt(10), 10.0])
    # Direction ignores the scale: (6, 8) has the same direction; the opposite head is at distance 2.
    np.testing.assert_allclose(head_direction_stability(w_full, w_loo),
                               [0.0, 0.0, np.linalg.norm([0.6, 0.2]), 2.0])
    np.testing.assert_allclose(pointwise_hypothesis_stability([1.0, 0.5], [0.25, 2.0]), [0.75, 1.5])


def test_seed_instability_is_the_sample_std_with_a_covering_interval():
    accuracy = np.array([0.91, 0.52, 0.88, 0.9, 0.5, 0.87, 0.93, 0.89])
    estimate = seed_instability(accuracy, random_state=0)
    assert estimate.value == pytest.approx(np.std(accuracy, ddof=1))
    assert estimate.low <= estimate.value <= estimate.high
    assert estimate == seed_instability(accuracy, random_state=0)  # reproducible
    stable = seed_instability(np.full(5, 0.8), random_state=0)
    assert stable.value == stable.low == stable.high == 0.0
    with pytest.raises(ValueError, match="at least 2"):
        seed_instability([0.9])


def test_failed_run_rate_counts_runs_at_or_below_majority():
    estimate = failed_run_rate([0.5, 0.6, 0.9, 0.95], 0.6)
    assert estimate.value == 0.5
    assert 0.0 < estimate.low < 0.5 < estimate.high < 1.0
    none_failed = failed_run_rate([0.9, 0.95, 0.97], 0.6)
    assert none_failed.value == 0.0 == none_failed.low and none_failed.high > 0.0


def test_bootstrap_ci_validates_parameters():
    with pytest.raises(ValueError, match="confidence"):
        bootstrap_ci([1.0, 2.0], np.mean, confidence=1.5)
    with pytest.raises(ValueError, match="n_resamples"):
        bootstrap_ci([1.0, 2.0], np.mean, n_resamples=0)


def test_head_direction_spread_is_the_mean_squared_distance_to_the_mean_direction():
    # Two opposite heads: ū = 0, spread 1 (its largest value); equal directions: spread 0.
    assert head_direction_spread(np.array([[2.0, 0.0], [-1.0, 0.0]])).value == pytest.approx(1.0)
    same = head_direction_spread(np.array([[1.0, 1.0], [3.0, 3.0], [0.5, 0.5]]))
    assert same == (pytest.approx(0.0), pytest.approx(0.0), pytest.approx(0.0))
    heads = np.random.default_rng(0).normal(size=(30, 3)) + np.array([2.0, 0.0, 0.0])
    units = heads / np.linalg.norm(heads, axis=1, keepdims=True)
    estimate = head_direction_spread(heads, random_state=1)
    assert estimate.value == pytest.approx(1.0 - np.sum(units.mean(axis=0) ** 2))
    assert estimate.low < estimate.value < estimate.high <= 1.0
    with pytest.raises(ValueError, match="heads"):
        head_direction_spread(np.ones((1, 3)))


def test_head_direction_spread_ci_is_the_bootstrap_of_the_per_resample_spread():
    """The statistic runs on every resample at once; its interval is the one a loop over resamples
    gives with the same random stream (BCa: resamples and jackknife)."""
    from scipy.stats import bootstrap

    heads = np.random.default_rng(3).normal(size=(7, 5)) + np.array([1.5, 0.0, 0.0, 0.0, 0.0])
    units = heads / np.linalg.norm(heads, axis=1, keepdims=True)

    def one_resample(index):
        chosen = units[np.asarray(index, dtype=np.int64)]
        return np.mean(np.sum((chosen - chosen.mean(axis=0)) ** 2, axis=1))

    looped = bootstrap((np.arange(7.0),), one_resample, vectorized=False, n_resamples=500,
                       confidence_level=0.95, method="BCa", random_state=np.random.default_rng(11))
    estimate = head_direction_spread(heads, n_resamples=500, random_state=11)
    assert estimate.value == pytest.approx(one_resample(np.arange(7)), rel=1e-12)
    np.testing.assert_allclose([estimate.low, estimate.high], looped.confidence_interval, rtol=1e-12)
