"""F1 — head direction stability against the normalised margin γ/R, one line per n, with Theorem H.

Data: head-tuning runs (``setting = 'head'``) on separable datasets with stabiliser ``'none'``, at
each task's final checkpoint and at the reference training setting (:func:`figures.data.at_reference`).
Aggregation: E_i of ``head_direction_stability`` per unit (dataset, config, seed); at each (n, γ/R)
the mean over the units (seeds × datasets) with a 95% percentile-bootstrap CI; the Theorem H bound
is averaged over the units where its assumptions hold.
"""
from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np

from figures.curves import has_curve, lines
from figures.data import MEASURE_LABEL, MissingData, at_reference, describe_reference, loo_units
from figures.output import Drawn, write_panels_figure
from figures.style import ERROR_BARS, Panel, mark_trivial_direction_bound

KEY = "F1"
STEM = "f01_margin"
PRODUCED_BY = ("head-tuning configs (setting 'head', stabiliser 'none') on separable datasets with "
               "two or more margins, e.g. `ftstab verify --grid smoke`")
MEASURE = "head_direction_stability"
BOUND = "theorem_h"
HEAD_SEPARABLE = ("r.setting = 'head' AND r.kind = 'separable' AND r.stabiliser = 'none' "
                  "AND r.margin > 0 AND r.radius > 0")


def render(connection: sqlite3.Connection, out_dir: Path) -> Drawn:
    """Draw F1 into ``out_dir``."""
    units, chosen = at_reference(loo_units(connection, measure=MEASURE, bound=BOUND,
                                           where=HEAD_SEPARABLE))
    if np.unique(units["margin"] / units["radius"]).size < 2:
        raise MissingData("no head-tuning runs on separable data with two or more margins γ/R")
    series = lines(units, by="n_samples", line_label=lambda n: f"measured, n = {n:g}",
                   bound_label=lambda n: f"Theorem H bound, n = {n:g}",
                   x=lambda group: group["margin"] / group["radius"], xlog=True, panel="margin",
                   measure=MEASURE, bound=BOUND, figure_key=KEY)
    if not has_curve(series):
        raise MissingData("no head-tuning runs on separable data with two or more margins γ/R "
                          "for one n at the reference setting")
    panel = Panel(name="margin", title=describe_reference(chosen) or "head tuning, plain GD",
                  xlabel="normalised margin γ/R (certified by the generator)",
                  ylabel=f"{MEASURE_LABEL[MEASURE]}, mean over seeds × datasets", series=series,
                  xlog=True, ylog=True, decorate=mark_trivial_direction_bound)
    title = ("F1 · Head direction stability vs normalised margin γ/R, one line per n\n"
             f"solid: measured ({ERROR_BARS}) · dashed: Theorem H bound")
    return write_panels_figure(out_dir, key=KEY, stem=STEM, title=title, panels=[panel])
