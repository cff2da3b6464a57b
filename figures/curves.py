"""Turn units into plotted series: measurement (mean ± CI) and bound (mean) against a knob.

Aggregation shared by the curve figures: the units at one x position (and one line) are pooled —
seeds and datasets alike — and summarised by their mean with a 95% percentile-bootstrap CI
(:func:`figures.data.summarise`). The measured mean is over the units whose E_i the verdicts'
estimator rule keeps (:func:`figures.data.kept_by_estimator`: no model diverged, the left-out
estimate is not partial and every left-out model measured it);
a bound is averaged only over units where it holds (assumptions met, finite value). Units whose x
agree to four significant digits share a point; when there are more than :data:`MAX_DISTINCT_X`
such values x is binned (geometric bins on a log axis). A point sits at the median x of its
group, or at the (geometric, on a log axis) mean x of its bin.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from figures.data import Frame, kept_by_estimator, summarise
from figures.style import Series, colour

MAX_DISTINCT_X = 12
N_BINS = 8
SIGNIFICANT_DIGITS = 4


def x_positions(x: np.ndarray, *, log: bool) -> np.ndarray:
    """The plotted x of every unit: the median x of its group, or the mean x of its bin.

    Values equal to :data:`SIGNIFICANT_DIGITS` significant digits form one group (a knob stored
    with float noise, such as an exact distance δ, is still one x). With more than
    :data:`MAX_DISTINCT_X` groups, x is binned instead (geometric bins on a log axis). Non-finite
    values, and non-positive ones on a log axis, get NaN and are not plotted.
    """
    x = np.asarray(x, dtype=np.float64)
    valid = np.isfinite(x) & ((x > 0) if log else True)
    positions = np.full(x.shape, np.nan)
    if not valid.any():
        return positions
    scale, unscale = (np.log, np.exp) if log else (lambda v: v, lambda v: v)
    rounded = np.array([float(f"{value:.{SIGNIFICANT_DIGITS}g}") for value in x[valid]])
    distinct = np.unique(rounded)
    binned = distinct.size > MAX_DISTINCT_X
    if binned:
        edges = np.linspace(scale(distinct[0]), scale(distinct[-1]), N_BINS + 1)
        groups = np.clip(np.digitize(scale(x[valid]), edges[1:-1]), 0, N_BINS - 1)
    else:
        groups = np.searchsorted(distinct, rounded)
    valid_positions = np.empty(groups.shape)
    for group in np.unique(groups):
        members = x[valid][groups == group]
        valid_positions[groups == group] = (unscale(scale(members).mean()) if binned
                                            else np.median(members))
    positions[valid] = valid_positions
    return positions


def _series(frame: Frame, positions: np.ndarray, *, column: str, select: np.ndarray,
            panel: str, label: str, quantity: str, role: str, figure_key: str,
            line_colour: str) -> Series | None:
    xs, points = [], []
    for position in np.unique(positions[np.isfinite(positions)]):
        at = (positions == position) & select
        summary = summarise(frame[column][at],
                            key=(figure_key, panel, label, role, float(position)))
        if summary.n:
            xs.append(float(position))
            points.append(summary)
    if not points:
        return None
    return Series(panel=panel, label=label, quantity=quantity, role=role, x=np.array(xs),
                  points=points, colour=line_colour)


def column_series(frame: Frame, *, column: str, x: np.ndarray, xlog: bool, panel: str,
                  label: str, role: str, figure_key: str, line_colour: str) -> Series | None:
    """Mean ± CI of ``frame[column]`` against ``x`` over the units the estimator rule keeps, drawn in
    the style of ``role`` (e.g. ``"predicted"``); None when no unit has a finite value."""
    return _series(frame, x_positions(x, log=xlog), column=column,
                   select=kept_by_estimator(frame), panel=panel, label=label, quantity=column,
                   role=role, figure_key=figure_key, line_colour=line_colour)


def measured_and_bound(frame: Frame, *, x: np.ndarray, xlog: bool, panel: str, label: str,
                       measure: str, bound: str | None, bound_label: str | None,
                       figure_key: str, line_colour: str,
                       kept: np.ndarray | None = None) -> list[Series]:
    """The measured series of ``frame`` against ``x`` and, where present, its bound's series.

    The measured mean is over the units ``kept`` (a boolean mask; default: those the estimator rule
    keeps, :func:`figures.data.kept_by_estimator`)."""
    positions = x_positions(x, log=xlog)
    kept = kept_by_estimator(frame) if kept is None else kept
    series = [_series(frame, positions, column="measured", select=kept, panel=panel,
                      label=label, quantity=measure, role="measured", figure_key=figure_key,
                      line_colour=line_colour)]
    if bound is not None and "bound" in frame:
        holds = frame["bound_holds"] == 1
        series.append(_series(frame, positions, column="bound", select=holds, panel=panel,
                              label=bound_label or bound, quantity=bound, role="bound",
                              figure_key=figure_key, line_colour=line_colour))
    return [item for item in series if item is not None]


def lines(frame: Frame, *, by: str, line_label: Callable[[object], str], x: Callable[[Frame], np.ndarray],
          xlog: bool, panel: str, measure: str, bound: str | None, figure_key: str,
          bound_label: Callable[[object], str] | None = None,
          order: Callable[[object], Any] | None = None) -> list[Series]:
    """One measured line (and its bound) per distinct value of column ``by``.

    Lines come in sorted order, or sorted by ``order(value)``; the i-th line gets the i-th colour.
    """
    series: list[Series] = []
    groups = list(frame.groups(by))
    if order is not None:
        groups.sort(key=lambda item: order(item[0][0]))
    for index, ((value,), group) in enumerate(groups):
        series += measured_and_bound(
            group, x=x(group), xlog=xlog, panel=panel, label=line_label(value), measure=measure,
            bound=bound, bound_label=bound_label(value) if bound_label else None,
            figure_key=figure_key, line_colour=colour(index))
    return series



def plain_first(value: object) -> tuple[bool, str]:
    """Sort key that puts plain runs (``"none"``, ``"<setting>, none"``) first."""
    text = str(value)
    return (not (text == "none" or text.endswith(", none")), text)


def has_curve(series: list[Series]) -> bool:
    """Whether some measured series has two or more points (a trend, not isolated points)."""
    return any(item.role == "measured" and len(item.points) >= 2 for item in series)
