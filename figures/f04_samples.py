"""F4 — head direction stability against the number of samples n, with Theorem H.

Data: head-tuning runs on separable datasets with stabiliser ``'none'`` at each task's final
checkpoint and the reference training setting (:func:`figures.data.at_reference`). One line per
normalised margin γ/R when there are at most :data:`MAX_LINES` of them, else one line pooling all
margins. Aggregation: E_i of ``head_direction_stability`` per unit (dataset, config, seed); at each n
the mean over the units (seeds × datasets) with a 95% percentile-bootstrap CI; Theorem H averaged
over the units where it holds.
"""
from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np

from figures.curves import has_curve, lines
from figures.data import MEASURE_LABEL, MissingData, at_reference, describe_reference, loo_units
from figures.output import Drawn, write_panels_figure
from figures.style import ERROR_BARS, Panel, mark_trivial_direction_bound

KEY = "F4"
STEM = "f04_samples"
PRODUCED_BY = ("head-tuning configs (setting 'head', stabiliser 'none') on separable datasets with "
               "two or more sample sizes n, e.g. `ftstab verify --grid smoke`")
MEASURE = "head_direction_stability"
BOUND = "theorem_h"
HEAD_SEPARABLE = ("r.setting = 'head' AND r.kind = 'separable' AND r.stabiliser = 'none' "
                  "AND r.margin > 0 AND r.radius > 0")
MAX_LINES = 5


def render(connection: sqlite3.Connection, out_dir: Path) -> Drawn:
    """Draw F4 into ``out_dir``."""
    units, chosen = at_reference(loo_units(connection, measure=MEASURE, bound=BOUND,
                                           where=HEAD_SEPARABLE))
    if np.unique(units["n_samples"]).size < 2:
        raise MissingData("no head-tuning runs on separable data with two or more sample sizes n")
    ratio = np.array([float(f"{value:.3g}") for value in units["margin"] / units["radius"]])
    if np.unique(ratio).size > MAX_LINES:
        ratio = np.full(len(units), np.nan)
    units = units.with_column("margin_ratio", ratio)
    series = lines(units, by="margin_ratio",
                   line_label=lambda r: "measured, all margins" if r is None else f"measured, γ/R = {r:g}",
                   bound_label=lambda r: "Theorem H, all margins" if r is None else f"Theorem H, γ/R = {r:g}",
                   x=lambda group: group["n_samples"], xlog=True, panel="samples",
                   measure=MEASURE, bound=BOUND, figure_key=KEY)
    if not has_curve(series):
        raise MissingData("no head-tuning runs on separable data with two or more sample sizes n "
                          "for one margin at the reference setting")
    panel = Panel(name="samples", title=describe_reference(chosen) or "head tuning, plain GD",
                  xlabel="number of training samples n (log scale)",
                  ylabel=f"{MEASURE_LABEL[MEASURE]}, mean over seeds × datasets", series=series,
                  xlog=True, ylog=True, decorate=mark_trivial_direction_bound)
    title = ("F4 · Head direction stability vs sample size n, one line per margin γ/R\n"
             f"solid: measured ({ERROR_BARS}) · dashed: Theorem H bound")
    return write_panels_figure(out_dir, key=KEY, stem=STEM, title=title, panels=[panel])
