"""F10 — every bound against what it bounds, over all datasets, log-log with y = x and Kendall τ.

Data: every run at its task's final checkpoint, every bound in the ``bounds`` table (one colour per
bound). A point is one (dataset, config, stabiliser, parameters): x = the mean over seeds of E_i of
the bound's measure, y = the mean over seeds of E_i of the bound's value, using only units where the
bound holds (assumptions met, finite value) and whose E_i the verdicts' estimator rule keeps
(:func:`figures.data.kept_by_estimator`: not partial, no model diverged; the index counts the
others), and only positive values (log
axes). Points whose measured stability is below :data:`NUMERICAL_ZERO` are left out too: there
A(S) = A(S\\i) up to rounding (e.g. noise-free least squares, where both reach the teacher), and
their rounding noise would set the axes and the ranking; the index notes how many. Points above y = x are satisfied bounds; the legend gives each bound's Kendall τ between
measured and bound over its points (``scipy.stats.kendalltau``, τ-b): does the bound rank the
datasets by instability?
"""
from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np
from matplotlib.axes import Axes
from scipy import stats

from figures.data import (FULL_RUN_COLUMNS, LOO_MEASURES, NUMERICAL_ZERO, MissingData, Summary,
                          kept_by_estimator, loo_units)
from figures.output import Drawn, write_panels_figure
from figures.style import Panel, Series, colour

KEY = "F10"
STEM = "f10_bound_vs_measured"
PRODUCED_BY = "any sweep whose runs have bound rows (`ftstab verify` computes them for every run)"
POINT_KEYS = ("dataset_id", "config", "stabiliser", "stabiliser_params")
FIGURE_SIZE = (10.5, 6.0)  # a square-ish log-log axes plus the legend to its right


def bound_points(connection: sqlite3.Connection, bound: str,
                 measure: str) -> tuple[list[dict], int, int]:
    """The plotted points of ``bound`` (keys, measured, bound value, seed count), how many points
    were left out as numerically zero, and how many units where the bound holds the estimator rule
    dropped."""
    units = loo_units(connection, measure=measure, bound=bound)
    holds = (units["bound_holds"] == 1) & (units["bound"] > 0) & np.isfinite(units["bound"])
    kept = kept_by_estimator(units)
    usable = holds & kept & (units["measured"] >= 0)
    points, zeros, dropped = [], 0, int((holds & ~kept).sum())
    for key, group in units.filter(usable).groups(*POINT_KEYS):
        measured = float(group["measured"].mean())
        if measured < NUMERICAL_ZERO:
            zeros += 1
            continue
        points.append({"bound": bound, "measure": measure, **dict(zip(POINT_KEYS, key)),
                       "measured": measured, "bound_value": float(group["bound"].mean()),
                       "n_seeds": len(group)})
    return points, zeros, dropped


def render(connection: sqlite3.Connection, out_dir: Path) -> Drawn:
    """Draw F10 into ``out_dir``."""
    pairs = connection.execute("SELECT DISTINCT bound, measure FROM bounds ORDER BY bound, measure")
    series, rows, notes = [], [], []
    for index, (bound, measure) in enumerate(pairs.fetchall()):
        if measure not in LOO_MEASURES + FULL_RUN_COLUMNS:
            continue
        points, zeros, dropped = bound_points(connection, bound, measure)
        if dropped:
            notes.append(f"{bound}: {dropped} unit(s) left out by the estimator rule (a left-out "
                         f"estimate partial, or a model diverged or lacks {measure})")
        if zeros:
            notes.append(f"{bound}: {zeros} point(s) with measured {measure} < {NUMERICAL_ZERO:g} "
                         f"(numerically zero) left out")
        if not points:
            continue
        measured = np.array([point["measured"] for point in points])
        value = np.array([point["bound_value"] for point in points])
        tau = float(stats.kendalltau(measured, value).statistic) if len(points) >= 2 else np.nan
        rows += [{**point, "kendall_tau": tau, "n_points": len(points)} for point in points]
        series.append(Series(
            panel="all", label=f"{bound} on {measure}: τ = {tau:.2f} ({len(points)} points)",
            quantity=bound, role="points", x=measured,
            points=[Summary(v, v, v, point["n_seeds"]) for v, point in zip(value, points)],
            colour=colour(index)))
    if not series:
        raise MissingData("no run has a bound row whose assumptions hold with positive values")

    def identity(ax: Axes) -> None:
        values = np.concatenate([np.concatenate([item.x, [p.mean for p in item.points]])
                                 for item in series])
        low, high = values.min() / 1.5, values.max() * 1.5
        ax.plot([low, high], [low, high], color="0.2", linewidth=1.0, label="y = x (bound = measured)")
        ax.fill_between([low, high], [low, low], [low, high], color="#d62728", alpha=0.06,
                        label="below y = x: bound violated")
        ax.set_xlim(low, high)
        ax.set_ylim(low, high)

    panel = Panel(name="all", title="one point per dataset × config × stabiliser (mean over seeds)",
                  xlabel="measured stability (the bound's measure, E_i, log scale)",
                  ylabel="bound value (E_i, log scale)", series=series, xlog=True, ylog=True,
                  decorate=identity, ticks_at_data=False, legend_loc="outside")
    title = ("F10 · Bound vs measured stability over all datasets, one colour per bound\n"
             "above y = x: bound holds · legend: Kendall τ between bound and measured")
    return write_panels_figure(out_dir, key=KEY, stem=STEM, title=title, panels=[panel],
                               csv_rows=rows, notes=tuple(notes), size=FIGURE_SIZE)
