"""F5 — full fine-tuning parameter stability against the number of samples n, with Theorem F.

Data: full fine-tuning runs (``setting = 'full'``) with stabiliser ``'none'`` at each task's final
checkpoint and the reference training setting (:func:`figures.data.at_reference`, per dataset kind), one line per
dataset kind (quadratic: the theorem is exact; mlp: second-order surrogate). Aggregation: E_i of
``parameter_stability`` per unit (dataset, config, seed); at each n the mean over the units
(seeds × datasets, every distance δ pooled) with a 95% percentile-bootstrap CI, diverged units left
out; Theorem F averaged over the units where its assumptions hold.
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

KEY = "F5"
STEM = "f05_full_samples"
PRODUCED_BY = ("full fine-tuning configs (setting 'full', stabiliser 'none') on quadratic or mlp "
               "datasets with two or more sample sizes, e.g. full_quadratic_gd")
MEASURE = "parameter_stability"
BOUND = "theorem_f"


def render(connection: sqlite3.Connection, out_dir: Path) -> Drawn:
    """Draw F5 into ``out_dir``."""
    units, chosen = at_reference_within(loo_units(
        connection, measure=MEASURE, bound=BOUND,
        where="r.setting = 'full' AND r.stabiliser = 'none'"), "kind")
    if np.unique(units["n_samples"]).size < 2:
        raise MissingData("no full fine-tuning runs with two or more sample sizes n")
    series = lines(units, by="kind", line_label=lambda kind: f"measured, {kind}",
                   bound_label=lambda kind: f"Theorem F bound, {kind}",
                   x=lambda group: group["n_samples"], xlog=True, panel="samples",
                   measure=MEASURE, bound=BOUND, figure_key=KEY)
    if not has_curve(series):
        raise MissingData("no full fine-tuning runs with two or more sample sizes n "
                          "for one kind at the reference setting")
    panel = Panel(name="samples", title=describe_references(chosen) or "full fine-tuning, plain GD",
                  xlabel="number of training samples n (log scale)",
                  ylabel=f"{MEASURE_LABEL[MEASURE]}, mean over seeds × datasets", series=series,
                  xlog=True, ylog=True)
    title = ("F5 · Full fine-tuning parameter stability vs sample size n, one line per task kind\n"
             f"solid: measured ({ERROR_BARS}) · dashed: Theorem F bound")
    return write_panels_figure(out_dir, key=KEY, stem=STEM, title=title, panels=[panel])
