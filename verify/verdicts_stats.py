"""Statistics behind the verdicts: granulated Kendall tau, group bootstraps, rank correlations."""
from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

from theory.stability import Estimate, bootstrap_ci

CONFIDENCE = 0.95
N_RESAMPLES = 2000


@dataclass(frozen=True)
class GranulatedTau:
    """Granulated Kendall tau: the equal-weight mean of per-group tau, with its group CI."""

    tau: Estimate
    group_taus: np.ndarray   # (G,) tau of each group that varies the quantity
    group_sizes: np.ndarray  # (G,) rows in each of those groups


def kendall_tau(x: np.ndarray, y: np.ndarray) -> float:
    """Kendall's tau-b of ``x`` and ``y``; 0 where either is constant (no trend, not undefined)."""
    if np.unique(x).size < 2 or np.unique(y).size < 2:
        return 0.0
    return float(stats.kendalltau(x, y).statistic)


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
                      n_resamples: int = 1000) -> dict[str, Estimate] | None:
    """Kendall tau-b and Spearman rho of ``x`` and ``y`` with a cluster-bootstrap CI.

    The bootstrap resamples whole clusters (datasets) with replacement and recomputes both
    statistics on the rows of the drawn clusters; resamples where a statistic is undefined (a
    constant side) are left out of its percentiles.

    Parameters
    ----------
    x, y : ndarray of shape (n_rows,)
        Paired values, e.g. a bound's value and the measured instability per dataset/config.
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
        ``{"kendall_tau": Estimate, "spearman_rho": Estimate}``; None with fewer than 3 rows or a
        constant side, where no rank correlation is defined.
    """
    _check_bootstrap(confidence, n_resamples)
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    if len(x) < 3 or np.unique(x).size < 2 or np.unique(y).size < 2:
        return None
    cluster_rows = group_rows(clusters)
    rng = np.random.default_rng(random_state)
    resampled = np.full((n_resamples, 2), np.nan)
    for b in range(n_resamples):
        drawn = rng.integers(len(cluster_rows), size=len(cluster_rows))
        rows = np.concatenate([cluster_rows[c] for c in drawn])
        resampled[b] = _tau_rho(x[rows], y[rows])
    alpha = (1 - confidence) / 2
    point = _tau_rho(x, y)
    intervals = {}
    for column, name in enumerate(("kendall_tau", "spearman_rho")):
        finite = resampled[:, column][np.isfinite(resampled[:, column])]
        low, high = (np.quantile(finite, [alpha, 1 - alpha]) if finite.size
                     else (np.nan, np.nan))
        intervals[name] = Estimate(float(point[column]), float(low), float(high))
    return intervals


def _tau_rho(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    if np.unique(x).size < 2 or np.unique(y).size < 2:
        return np.nan, np.nan
    return float(stats.kendalltau(x, y).statistic), float(stats.spearmanr(x, y).statistic)


def _check_bootstrap(confidence: float, n_resamples: int) -> None:
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence!r}")
    if int(n_resamples) != n_resamples or n_resamples < 1:
        raise ValueError(f"n_resamples must be an integer >= 1, got {n_resamples!r}")
