"""Statistics behind the verdicts: granulated Kendall tau, group bootstraps, rank correlations."""
from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

from theory.stability import Estimate, bootstrap_ci

CONFIDENCE = 0.95
N_RESAMPLES = 2000
N_RANK_RESAMPLES = 1000


@dataclass(frozen=True)
class GranulatedTau:
    """Granulated Kendall tau: the equal-weight mean of per-group tau, with its group CI."""

    tau: Estimate
    group_taus: np.ndarray   # (G,) tau of each group that varies the quantity
    group_sizes: np.ndarray  # (G,) rows in each of those groups


def kendall_tau(x: np.ndarray, y: np.ndarray) -> float:
    """Kendall's tau-b of ``x`` and ``y`` (as scipy.stats.kendalltau, without its p-value, which
    dominates the cost on the thousands of small groups of a sweep); 0 where either is constant
    (no trend, rather than undefined)."""
    if np.unique(x).size < 2 or np.unique(y).size < 2:
        return 0.0
    return float(weighted_kendall_tau_b(x, y, np.ones((1, len(x))))[0])


def group_rows(keys: Sequence[Hashable]) -> list[np.ndarray]:
    """Indices of the rows sharing each distinct key, in order of first appearance."""
    groups: dict[Hashable, list[int]] = {}
    for index, key in enumerate(keys):
        groups.setdefault(key, []).append(index)
    return [np.asarray(rows) for rows in groups.values()]


def granulated_kendall_tau(quantity: np.ndarray, measure: np.ndarray, keys: Sequence[Hashable], *,
                           random_state: int, confidence: float = CONFIDENCE,
                           n_resamples: int = N_RESAMPLES) -> GranulatedTau | None:
    """Granulated Kendall tau between a varied quantity and a measure (Jiang et al., 2019).

    Rows are grouped by ``keys`` (every coordinate except the varied one); within each group that
    holds at least two distinct values of ``quantity`` the tau-b of ``(quantity, measure)`` is
    computed, and the groups are averaged with **equal weights**, so that a large group cannot hide
    the others. The confidence interval resamples groups with replacement
    (``theory.stability.bootstrap_ci``); with a single group it collapses to that group's tau.

    Parameters
    ----------
    quantity, measure : ndarray of shape (n_rows,)
        The varied quantity and the measure of each row.
    keys : sequence of hashable, length n_rows
        The coordinates each row shares with the rows it is compared with.
    random_state : int
        Seed of the bootstrap.
    confidence : float, default=0.95
        Confidence level of the interval, in (0, 1).
    n_resamples : int, default=2000
        Bootstrap resamples, at least 1.

    Returns
    -------
    GranulatedTau or None
        None when no group varies the quantity.
    """
    quantity = np.asarray(quantity, dtype=float)
    measure = np.asarray(measure, dtype=float)
    if not len(quantity) == len(measure) == len(keys):
        raise ValueError(f"quantity, measure and keys must have the same length, got "
                         f"{len(quantity)}, {len(measure)} and {len(keys)}")
    taus, sizes = [], []
    for rows in group_rows(keys):
        if np.unique(quantity[rows]).size >= 2:
            taus.append(kendall_tau(quantity[rows], measure[rows]))
            sizes.append(rows.size)
    if not taus:
        return None
    group_taus = np.asarray(taus)
    interval = bootstrap_ci(group_taus, np.mean, random_state=random_state,
                            confidence=confidence, n_resamples=n_resamples)
    return GranulatedTau(tau=interval, group_taus=group_taus, group_sizes=np.asarray(sizes))


def trend_verdict(interval: Estimate | None, predicted_sign: int) -> str:
    """``pass`` if the CI lies strictly on the predicted side of 0, ``fail`` if strictly on the
    other, ``inconclusive`` otherwise, ``no data`` without an interval."""
    if predicted_sign not in (-1, 1):
        raise ValueError(f"predicted_sign must be -1 or 1, got {predicted_sign!r}")
    if interval is None:
        return "no data"
    low, high = predicted_sign * interval.low, predicted_sign * interval.high
    if min(low, high) > 0:
        return "pass"
    if max(low, high) < 0:
        return "fail"
    return "inconclusive"


def rank_correlations(x: np.ndarray, y: np.ndarray, clusters: Sequence[Hashable], *,
                      random_state: int, confidence: float = CONFIDENCE,
                      n_resamples: int = N_RANK_RESAMPLES) -> dict[str, Estimate] | None:
    """Kendall tau-b and Spearman rho of ``x`` and ``y`` with a cluster-bootstrap CI.

    The bootstrap resamples whole clusters (datasets) with replacement. A resample that draws a
    cluster k times holds its rows k times, so it is the original rows with integer weights; both
    statistics are computed from those weights for all resamples at once (exactly what scipy gives on
    the duplicated rows). Resamples where a statistic is undefined (a constant side) are left out of
    its percentiles.

    Parameters
    ----------
    x, y : ndarray of shape (n_rows,)
        Paired values, e.g. a bound's value and the measured instability per dataset/config;
        +inf is allowed (a vacuous bound ranks last).
    clusters : sequence of hashable, length n_rows
        The unit that is resampled (the dataset of each row).
    random_state : int
        Seed of the bootstrap.
    confidence : float, default=0.95
        Confidence level of the intervals, in (0, 1).
    n_resamples : int, default=1000
        Bootstrap resamples, at least 1.

    Returns
    -------
    dict or None
        ``{"kendall_tau": Estimate, "spearman_rho": Estimate}`` (points from scipy); None with fewer
        than 3 rows or a constant side, where no rank correlation is defined.
    """
    _check_bootstrap(confidence, n_resamples)
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    if len(x) < 3 or np.unique(x).size < 2 or np.unique(y).size < 2:
        return None
    _, cluster_of_row = np.unique(np.asarray(clusters, dtype=object).astype(str),
                                  return_inverse=True)
    n_clusters = cluster_of_row.max() + 1
    rng = np.random.default_rng(random_state)
    draws = rng.multinomial(n_clusters, np.full(n_clusters, 1 / n_clusters), size=n_resamples)
    weights = draws[:, cluster_of_row].astype(float)
    alpha = (1 - confidence) / 2
    points = {"kendall_tau": stats.kendalltau(x, y).statistic,
              "spearman_rho": stats.spearmanr(x, y).statistic}
    resampled = {"kendall_tau": weighted_kendall_tau_b(x, y, weights),
                 "spearman_rho": weighted_spearman_rho(x, y, weights)}
    intervals = {}
    for name, values in resampled.items():
        finite = values[np.isfinite(values)]
        low, high = (np.quantile(finite, [alpha, 1 - alpha]) if finite.size
                     else (np.nan, np.nan))
        intervals[name] = Estimate(float(points[name]), float(low), float(high))
    return intervals


def weighted_kendall_tau_b(x: np.ndarray, y: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Kendall tau-b of the rows of ``(x, y)`` repeated ``weights`` times, one per weight row.

    Copies of one row tie in both x and y, so with W = sum(w) and T the total weight of each group
    of tied values, tau_b = sum_ij w_i w_j sign(x_i - x_j) sign(y_i - y_j) /
    sqrt((W^2 - sum T_x^2)(W^2 - sum T_y^2)) (NaN where a side is constant).

    Parameters
    ----------
    x, y : ndarray of shape (n,)
    weights : ndarray of shape (B, n)
        Non-negative integer weights (counts) for B weighted samples.

    Returns
    -------
    ndarray of shape (B,)
    """
    x_rank, y_rank = _dense_ranks(x), _dense_ranks(y)
    numerator = np.zeros(len(weights))
    block = max(1, 2**22 // len(x))  # columns of the sign matrix held at once
    for start in range(0, len(x), block):
        columns = slice(start, start + block)
        signs = (np.sign(x_rank[:, None] - x_rank[columns])
                 * np.sign(y_rank[:, None] - y_rank[columns]))
        numerator += np.einsum("bj,bj->b", weights @ signs, weights[:, columns])
    total = weights.sum(axis=1) ** 2
    untied_x = total - (_tie_totals(x_rank, weights) ** 2).sum(axis=1)
    untied_y = total - (_tie_totals(y_rank, weights) ** 2).sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return numerator / np.sqrt(untied_x * untied_y)


def weighted_spearman_rho(x: np.ndarray, y: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Spearman rho of the rows of ``(x, y)`` repeated ``weights`` times, one per weight row.

    The average rank of a row among the repeated rows is (weight of smaller values) +
    (weight of its tie group + 1) / 2; rho is the weighted Pearson correlation of those ranks.

    Parameters
    ----------
    x, y : ndarray of shape (n,)
    weights : ndarray of shape (B, n)
        Non-negative integer weights (counts) for B weighted samples.

    Returns
    -------
    ndarray of shape (B,)
        NaN where a side is constant.
    """
    ranks = [_average_ranks(_dense_ranks(values), weights) for values in (x, y)]
    total = weights.sum(axis=1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        centred = [r - (weights * r).sum(axis=1, keepdims=True) / total for r in ranks]
        covariance = (weights * centred[0] * centred[1]).sum(axis=1)
        variances = [(weights * c**2).sum(axis=1) for c in centred]
        return covariance / np.sqrt(variances[0] * variances[1])


def _dense_ranks(values: np.ndarray) -> np.ndarray:
    """0, 1, 2, ... by distinct value (ties share one), so +inf compares like any other value."""
    return np.unique(values, return_inverse=True)[1].astype(float)


def _tie_totals(dense: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """(B, n_distinct) total weight of each distinct value, in increasing order."""
    order = np.argsort(dense, kind="stable")
    starts = np.flatnonzero(np.r_[True, np.diff(dense[order]) != 0])
    return np.add.reduceat(weights[:, order], starts, axis=1)


def _average_ranks(dense: np.ndarray, weights: np.ndarray) -> np.ndarray:
    totals = _tie_totals(dense, weights)
    smaller = np.cumsum(totals, axis=1) - totals
    return (smaller + (totals + 1) / 2)[:, dense.astype(int)]


def _check_bootstrap(confidence: float, n_resamples: int) -> None:
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence!r}")
    if int(n_resamples) != n_resamples or n_resamples < 1:
        raise ValueError(f"n_resamples must be an integer >= 1, got {n_resamples!r}")
