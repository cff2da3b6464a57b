"""The look shared by every figure: panels, measured curves with error bars, bounds as dashed lines.

Figures are built on :class:`matplotlib.figure.Figure` directly (no pyplot state), so drawing never
depends on the interactive backend.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np
from matplotlib import ticker, transforms
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.legend import Legend

from figures.data import Summary

PANEL_SIZE = (6.0, 4.5)
COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2",
           "#17becf", "#7f7f7f", "#bcbd22")
ERROR_BARS = "bars: 95% bootstrap CI"
FONT_SIZE = 9
MAX_LABELLED_X = 8  # up to this many distinct x values, tick exactly at the data
PLAIN_LOG_RANGE = (1e-3, 1e4)  # log-axis tick labels in this range are written as plain numbers


def mark_trivial_direction_bound(ax: Axes) -> None:
    """Dotted line at 2: any two unit vectors are at most 2 apart, so a head bound above it is vacuous."""
    ax.axhline(2.0, color="0.4", linestyle=":", linewidth=1.0, label="trivial bound ‖u − u′‖ ≤ 2")


def colour(index: int) -> str:
    """The ``index``-th colour of the cycle (wraps around)."""
    return COLOURS[index % len(COLOURS)]


def new_figure(n_panels: int, title: str,
               size: tuple[float, float] | None = None) -> tuple[Figure, list[Axes]]:
    """A figure with ``n_panels`` axes (one row up to three, else two columns) and a suptitle.

    ``size`` (inches) overrides the default of :data:`PANEL_SIZE` per panel.
    """
    n_columns = n_panels if n_panels <= 3 else 2
    n_rows = -(-n_panels // n_columns)
    default = (PANEL_SIZE[0] * n_columns, PANEL_SIZE[1] * n_rows + 0.25 * title.count("\n"))
    figure = Figure(figsize=size or default, layout="constrained")
    grid = figure.subplots(n_rows, n_columns, squeeze=False).ravel()
    for unused in grid[n_panels:]:
        unused.remove()
    axes = grid[:n_panels]
    figure.suptitle(title, fontsize=FONT_SIZE + 1)
    for ax in axes:
        ax.tick_params(labelsize=FONT_SIZE)
        ax.grid(True, which="major", alpha=0.3)
    return figure, list(axes)


@dataclass
class Series:
    """One plotted line: what it is, where its points are, and their summaries.

    ``role`` is ``"measured"`` (solid, markers, error bars), ``"predicted"`` (a prediction with
    the measured one's statistics: dashed, open markers, error bars), ``"bound"`` (dashed, no error bars:
    a bound is drawn as the mean of its per-unit values), ``"category"`` (one bar with error
    bars, named by the panel's tick labels), ``"points"`` (a scatter of (x, mean)) or
    ``"bound_points"`` (the same with crosses).
    """

    panel: str
    label: str
    quantity: str
    role: str
    x: np.ndarray
    points: list[Summary]
    colour: str = field(default=COLOURS[0])

    def csv_rows(self, figure_key: str) -> list[dict]:
        """The rows of this series as written to the figure's CSV."""
        interval = {"measured": "bootstrap95", "predicted": "bootstrap95", "category": "bootstrap95",
                    "bound": "bootstrap95 (not drawn)"}.get(self.role, "none (one point per unit)")
        return [{"figure": figure_key, "panel": self.panel, "series": self.label,
                 "role": self.role, "quantity": self.quantity, "x": float(x), "mean": point.mean,
                 "ci_low": point.low, "ci_high": point.high, "n_units": point.n,
                 "interval": interval}
                for x, point in zip(self.x, self.points)]


def draw_series(ax: Axes, series: Series, *, horizontal: bool = False) -> None:
    """Draw ``series`` on ``ax`` in the style of its role (a ``"category"`` bar along y at
    ``series.x`` when ``horizontal``)."""
    mean = np.array([point.mean for point in series.points])
    if series.role == "bound":
        ax.plot(series.x, mean, linestyle="--", marker="x", markersize=4, linewidth=1.4,
                color=series.colour, label=series.label)
        return
    low = np.array([point.low for point in series.points])
    high = np.array([point.high for point in series.points])
    if series.role == "points":
        ax.scatter(series.x, mean, s=18, alpha=0.75, color=series.colour, label=series.label,
                   edgecolors="none")
        return
    if series.role == "bound_points":
        ax.scatter(series.x, mean, s=22, marker="x", alpha=0.75, color=series.colour,
                   label=series.label)
        return
    if series.role == "category" and horizontal:
        ax.barh(series.x, mean, xerr=np.vstack([mean - low, high - mean]), capsize=3, height=0.7,
                color=series.colour, alpha=0.85, error_kw={"elinewidth": 0.8})
        return
    if series.role == "category":
        ax.bar(series.x, mean, yerr=np.vstack([mean - low, high - mean]), capsize=4, width=0.7,
               color=series.colour, alpha=0.85)
        return
    if series.role == "predicted":
        ax.errorbar(series.x, mean, yerr=np.vstack([mean - low, high - mean]), marker="s",
                    markersize=4, markerfacecolor="white", linestyle="--", linewidth=1.4,
                    capsize=2, elinewidth=0.8, alpha=0.85, color=series.colour, label=series.label)
        return
    ax.errorbar(series.x, mean, yerr=np.vstack([mean - low, high - mean]), marker="o",
                markersize=4, linewidth=1.6, capsize=3, color=series.colour, label=series.label)


def finish_axes(ax: Axes, *, title: str, xlabel: str, ylabel: str,
                xticks: np.ndarray | None = None, legend_loc: str = "best") -> None:
    """Label ``ax``, format its log-axis ticks (ticks at ``xticks`` if given), add a legend
    (``legend_loc`` as matplotlib's, ``"outside"``: to the right of the axes, ``"below"``: under
    the x label (:func:`legend_below`), or ``"none"``: no legend, the panel draws its own)."""
    ax.set_title(title, fontsize=FONT_SIZE + 1)
    ax.set_xlabel(xlabel, fontsize=FONT_SIZE)
    ax.set_ylabel(ylabel, fontsize=FONT_SIZE)
    if ax.get_xscale() == "log":
        _plain_log_ticks(ax.xaxis, ax.get_xlim())
    if ax.get_yscale() == "log":
        _plain_log_ticks(ax.yaxis, ax.get_ylim())
    if xticks is not None:
        ax.set_xticks(xticks, [f"{value:g}" for value in xticks])
        ax.xaxis.set_minor_formatter(ticker.NullFormatter())
    if legend_loc != "none" and ax.get_legend_handles_labels()[0]:
        if legend_loc == "below":
            legend_below(ax)
        elif legend_loc == "outside":
            ax.legend(fontsize=FONT_SIZE - 1, loc="upper left", bbox_to_anchor=(1.02, 1.0))
        else:
            ax.legend(fontsize=FONT_SIZE - 1, framealpha=0.85, loc=legend_loc)  # type: ignore[call-overload]  # stub: loc is a Literal


def legend_below(ax: Axes, handles: list | None = None, labels: list[str] | None = None,
                 **options) -> Legend:
    """A legend centred under ``ax``'s x label (``handles`` and ``labels`` default to the axes'
    own; ``options`` go to :meth:`matplotlib.axes.Axes.legend`).

    It is anchored a fixed distance in points below the axes, which clears one row of tick labels
    and the x label whatever the axes' height; a constrained layout makes room for it.
    """
    if handles is None or labels is None:
        handles, labels = ax.get_legend_handles_labels()
    below = ax.transAxes + transforms.ScaledTranslation(
        0.0, -(3 * FONT_SIZE + 10) / 72, ax.figure.dpi_scale_trans)
    return ax.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, 0.0),
                     bbox_transform=below, fontsize=FONT_SIZE - 1, **options)


def log_tick_label(value: float) -> str:
    """``0.2``, ``1``, ``1000`` as plain numbers; powers of ten from 10⁴ up (or below 10⁻³) as 10ᵏ."""
    if value <= 0 or not np.isfinite(value):
        return ""
    exponent = np.log10(value)
    if (value >= PLAIN_LOG_RANGE[1] or value < PLAIN_LOG_RANGE[0]) and np.isclose(
            exponent, round(exponent)):
        return f"$10^{{{int(round(exponent))}}}$"
    return f"{value:g}"


def _plain_log_ticks(axis, limits: tuple[float, float]) -> None:
    """Major ticks at powers of ten (:func:`log_tick_label`); on short axes (< 2 decades) label
    2× and 5× too. Never at the data, whose pooled positions are not round numbers."""
    plain = ticker.FuncFormatter(lambda value, _: log_tick_label(value))
    axis.set_major_locator(ticker.LogLocator(base=10.0))
    axis.set_major_formatter(plain)
    low, high = sorted(limits)
    if low > 0 and np.log10(high / low) < 2:
        axis.set_minor_locator(ticker.LogLocator(subs=(2.0, 5.0)))
        axis.set_minor_formatter(plain)
    else:
        axis.set_minor_formatter(ticker.NullFormatter())


@dataclass
class Panel:
    """One axes of a figure: its series, labels and scales; ``decorate`` adds extra artists.

    With ``ticks_at_data`` (and few distinct x values) the x ticks sit exactly at the data. With
    ``xlinthresh`` the x axis is symmetric-log, linear within ±``xlinthresh`` (so 0 sits a decade's
    width below ``xlinthresh``, e.g. a strength 0 beside strengths 0.01 … 1). With
    ``horizontal_bars`` its ``"category"`` series are bars along y (the decoration names them).
    """

    name: str
    title: str
    xlabel: str
    ylabel: str
    series: list[Series]
    xlog: bool = False
    ylog: bool = False
    decorate: Callable[[Axes], None] | None = None
    ticks_at_data: bool = True
    legend_loc: str = "best"
    xlinthresh: float | None = None
    horizontal_bars: bool = False


def draw_panels(title: str, panels: list[Panel],
                size: tuple[float, float] | None = None) -> Figure:
    """A figure with one axes per panel, each drawn and labelled (``size`` as in new_figure)."""
    figure, axes = new_figure(len(panels), title, size)
    for ax, panel in zip(axes, panels):
        # Scales first, so that decorations computing limits see the final axes.
        if panel.xlog:
            ax.set_xscale("log")
        elif panel.xlinthresh is not None:
            ax.set_xscale("symlog", linthresh=panel.xlinthresh)
        if panel.ylog:
            ax.set_yscale("log")
        for series in panel.series:
            if panel.ylog and all(not point.mean > 0 for point in series.points):
                series = replace(series, label=f"{series.label} (≤ 0: off the log axis)")
            draw_series(ax, series, horizontal=panel.horizontal_bars)
        if panel.decorate is not None:
            panel.decorate(ax)
        xs = np.unique(np.concatenate([series.x for series in panel.series]))
        if panel.ylog:
            _raise_log_floor(ax, panel.series)
        finish_axes(ax, title=panel.title, xlabel=panel.xlabel, ylabel=panel.ylabel,
                    xticks=xs if panel.ticks_at_data and xs.size <= MAX_LABELLED_X else None,
                    legend_loc=panel.legend_loc)
    return figure


def _raise_log_floor(ax: Axes, series: list[Series]) -> None:
    """Keep a log axis on the plotted means: a CI reaching towards 0 is cut at the floor.

    The floor sits a factor 1.5 below the smallest positive mean, or below the smallest interval end
    within a decade of it, so that one near-zero unit cannot stretch the axis over many decades.
    """
    means = np.array([point.mean for item in series for point in item.points])
    positive = means[means > 0]
    if not positive.size:
        return
    lows = np.array([point.low for item in series for point in item.points])
    reachable = lows[(lows > 0) & (lows >= positive.min() / 10)]
    floor = min(positive.min(), reachable.min() if reachable.size else np.inf) / 1.5
    ax.set_ylim(bottom=max(ax.get_ylim()[0], floor))


def non_positive_points(panels: list[Panel]) -> list[str]:
    """Notes for log-axis panels whose plotted values include some ≤ 0 (not drawable)."""
    notes = []
    for panel in panels:
        count = sum(not point.mean > 0 for series in panel.series for point in series.points)
        if panel.ylog and count:
            notes.append(f"panel {panel.name}: {count} plotted value(s) ≤ 0 cannot appear on the "
                         f"log axis (they are in the CSV)")
    return notes
