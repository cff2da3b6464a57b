"""F6 — full fine-tuning parameter stability against the teacher's distance δ from w0, with Theorem F.

Theorem F grows with D = ‖w0 − w*_S‖; the generators control δ = ‖teacher − w0‖, which sets D up to
noise, so δ is the x axis (the card's exact D is in Theorem F's constants). Data: full fine-tuning
runs with stabiliser ``'none'`` at each task's final checkpoint and the reference training setting
(:func:`figures.data.at_reference`, per dataset kind), one line per dataset kind. Aggregation: E_i of
``parameter_stability`` per unit (dataset, config, seed); at each δ the mean over the units
(seeds × datasets, every n pooled) with a 95% percentile-bootstrap CI, diverged units left out;
Theorem F averaged over the units where its assumptions hold.
"""
from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np

from figures.curves import has_curve, lines
from figures.data import (MEASURE_LABEL, MissingData, at_reference_within, describe_references,
                          loo_units)
from figures.output import Drawn, write_panels_figure
from figures.style import ERROR_BARS, Panel

KEY = "F6"
STEM = "f06_distance"
PRODUCED_BY = ("full fine-tuning configs (stabiliser 'none') on quadratic or mlp datasets with two "
               "or more teacher distances δ, e.g. full_quadratic_gd")
MEASURE = "parameter_stability"
BOUND = "theorem_f"


def render(connection: sqlite3.Connection, out_dir: Path) -> Drawn:
    """Draw F6 into ``out_dir``."""
    units, chosen = at_reference_within(loo_units(
        connection, measure=MEASURE, bound=BOUND,
        where="r.setting = 'full' AND r.stabiliser = 'none' AND r.distance IS NOT NULL"), "kind")
    distance = units["distance"]
    if np.unique(distance).size < 2:
        raise MissingData("no full fine-tuning runs with two or more teacher distances δ")
    xlog = bool(np.all(distance > 0))
    series = lines(units, by="kind", line_label=lambda kind: f"measured, {kind}",
                   bound_label=lambda kind: f"Theorem F bound, {kind}",
                   x=lambda group: group["distance"], xlog=xlog, panel="distance",
                   measure=MEASURE, bound=BOUND, figure_key=KEY)
    if not has_curve(series):
        raise MissingData("no full fine-tuning runs with two or more teacher distances δ "
                          "for one kind at the reference setting")
    panel = Panel(name="distance", title=describe_references(chosen) or "full fine-tuning, plain GD",
                  xlabel="teacher distance δ = ‖teacher − w0‖" + (" (log scale)" if xlog else ""),
                  ylabel=f"{MEASURE_LABEL[MEASURE]}, mean over seeds × datasets", series=series,
                  xlog=xlog, ylog=True)
    title = ("F6 · Full fine-tuning parameter stability vs distance from the pre-trained weights\n"
             f"solid: measured ({ERROR_BARS}) · dashed: Theorem F bound (grows with D)")
    return write_panels_figure(out_dir, key=KEY, stem=STEM, title=title, panels=[panel])
