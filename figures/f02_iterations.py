"""F2 — head direction stability over iterations t (log t), with Theorem H and the direction error.

Data: head-tuning runs on separable datasets with stabiliser ``'none'``, every checkpoint, at the
reference training setting (:func:`figures.data.at_reference`). Panel (a): E_i of
``head_direction_stability`` per unit (dataset, config, seed, t), then at each t the mean over the
units (seeds × datasets) with a 95% percentile-bootstrap CI; Theorem H (which contains the a priori
rate of e(t)) averaged over the units where it holds. Panel (b): the direction error
e(t) = ‖u(t) − u*‖ of the model trained on all of S, aggregated the same way; dashed beside it the
direction error of the asymptotic predictor w(t) ≈ ŵ log t + w̃ (``predicted_direction_error``,
on the models where the store records it), and every other head bound the results carry on
``direction_error``, averaged over the left-out runs where it holds. Panel (c): the predictor's
relative distance to the trained weights, ‖w(t) − w_pred(t)‖ / ‖w(t)‖
(``predictor_relative_error``), which should fall as t grows. Stores written before those two
columns existed give panel (b) without the predictor and no panel (c), with a note. Panel (d): the
seed spread of the head direction on one S, mean_k ‖u_k − ū‖² (``head_seed_spread``), of full-batch
GD heads from random initialisations on binary noiseless data (inside the seed-spread statement of
docs/theory.md §3), mean over datasets with a 95% CI: the paper's "more iterations stabilise" in the
seed-to-seed sense.
"""
from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np

from figures.curves import column_series, measured_and_bound
from figures.data import (MEASURE_LABEL, MissingData, at_reference, describe_reference, full_units,
                          loo_units, restrict)
from figures.output import Drawn, write_panels_figure
from figures.style import ERROR_BARS, Panel, colour, mark_trivial_direction_bound

KEY = "F2"
STEM = "f02_iterations"
PRODUCED_BY = ("head-tuning configs (setting 'head', stabiliser 'none') on separable datasets with "
               "several checkpoints, e.g. `ftstab verify --grid smoke`")
MEASURE = "head_direction_stability"
BOUND = "theorem_h"
PREDICTOR_COLUMNS = ("predicted_direction_error", "predictor_relative_error")
HEAD_SEPARABLE = "r.setting = 'head' AND r.kind = 'separable' AND r.stabiliser = 'none'"
# Inside the seed-spread statement: binary, noiseless, full-batch GD from random heads (one row per
# task and checkpoint: every seed's row holds the task's spread).
SEED_SPREAD_GD = (f"{HEAD_SEPARABLE} AND r.init = 'random' AND r.batch_size IS NULL "
                  "AND r.n_classes = 2 AND COALESCE(r.label_noise, 0) = 0 AND r.n_heads = 1 "
                  "AND r.seed = 0")


def seed_spread_series(connection: sqlite3.Connection, *, where: str, x: str, xlog: bool,
                       panel: str, label: str, figure_key: str, final_only: bool):
    """Mean over datasets (95% CI) of ``head_seed_spread`` against column ``x``; None without data."""
    units = full_units(connection, where=f"{where} AND r.head_seed_spread IS NOT NULL",
                       final_only=final_only, optional=("head_seed_spread",))
    if not len(units):
        return None
    return column_series(units, column="head_seed_spread", x=units[x], xlog=xlog, panel=panel,
                         label=label, role="measured", figure_key=figure_key, line_colour=colour(3))


def _other_head_bounds(connection: sqlite3.Connection) -> list[tuple[str, str]]:
    """(bound, measure) of every bound other than Theorem H recorded on these runs."""
    return connection.execute(
        f"SELECT DISTINCT b.bound, b.measure FROM bounds AS b JOIN runs AS r ON r.run_id = b.run_id "
        f"WHERE {HEAD_SEPARABLE} AND b.bound != ? ORDER BY b.bound", (BOUND,)).fetchall()


def render(connection: sqlite3.Connection, out_dir: Path) -> Drawn:
    """Draw F2 into ``out_dir``."""
    loo, chosen = at_reference(loo_units(connection, measure=MEASURE, bound=BOUND,
                                         where=HEAD_SEPARABLE, final_only=False))
    if np.unique(loo["iteration"]).size < 2:
        raise MissingData("no head-tuning runs on separable data with two or more checkpoints")
    stability = measured_and_bound(loo, x=loo["iteration"], xlog=True, panel="stability",
                                   label="measured", measure=MEASURE, bound=BOUND,
                                   bound_label="Theorem H bound", figure_key=KEY,
                                   line_colour=colour(0))
    full = restrict(full_units(connection, where=HEAD_SEPARABLE, final_only=False,
                               optional=PREDICTOR_COLUMNS), chosen)
    full = full.with_column("measured", full["direction_error"])
    error = measured_and_bound(full, x=full["iteration"], xlog=True, panel="direction_error",
                               label="measured e(t), model on S", measure="direction_error",
                               bound=None, bound_label=None, figure_key=KEY, line_colour=colour(1))
    predicted = column_series(full, column="predicted_direction_error", x=full["iteration"],
                              xlog=True, panel="direction_error",
                              label=r"asymptotic predictor $\hat w \log t + \tilde w$",
                              role="predicted", figure_key=KEY, line_colour=colour(1))
    relative = column_series(full, column="predictor_relative_error", x=full["iteration"],
                             xlog=True, panel="predictor", label="predictor vs trained weights",
                             role="measured", figure_key=KEY, line_colour=colour(1))
    if error and predicted is not None:
        error.append(predicted)
    notes = []
    reference = describe_reference(chosen)
    others = _other_head_bounds(connection)
    for index, (name, measure) in enumerate(others):
        units = restrict(loo_units(connection, measure=measure, bound=name, where=HEAD_SEPARABLE,
                                   final_only=False), chosen)
        drawn = [series for series in measured_and_bound(
            units, x=units["iteration"], xlog=True, panel="direction_error" if measure ==
            "direction_error" else "stability", label=name, measure=measure, bound=name,
            bound_label=f"{name} (on {measure})", figure_key=KEY, line_colour=colour(index + 2))
            if series.role == "bound"]
        (error if measure == "direction_error" else stability).extend(drawn)
        if not drawn:
            notes.append(f"{name} not drawn: its assumptions hold on none of these runs "
                         f"({reference or 'reference setting'})")
    if not error:
        notes.append("panel (b) omitted: the results hold no direction_error for these runs")
    elif predicted is None:
        notes.append("no asymptotic predictor in these results (no predicted_direction_error on "
                     "these runs: a store from before the column, or no binary full-batch GD "
                     "runs at this setting); panel (b) shows the measured e(t) only")
    if relative is None:
        notes.append("panel (c) omitted: no predictor_relative_error on these runs")
    spread = seed_spread_series(connection, where=SEED_SPREAD_GD, x="iteration", xlog=True,
                                panel="seed_spread", label="GD from random heads, one S",
                                figure_key=KEY, final_only=False)
    if spread is None:
        notes.append("panel (d) omitted: no head_seed_spread of full-batch GD heads from random "
                     "initialisations (config head_gd_logistic_random) in these results")
    panels = [
        Panel(name="stability",
              title="(a) leave-one-out stability" + (f"\n{reference}" if reference else ""),
              xlabel="iteration t (log scale)",
              ylabel=f"{MEASURE_LABEL[MEASURE]}, mean over seeds × datasets", series=stability,
              xlog=True, ylog=True, decorate=mark_trivial_direction_bound, ticks_at_data=False),
        Panel(name="direction_error", title="(b) direction error to the max-margin u*",
              xlabel="iteration t (log scale)",
              ylabel=r"$e(t) = \|u(t) - u^*\|$, mean over seeds × datasets", series=error,
              xlog=True, ylog=True, ticks_at_data=False),
        Panel(name="predictor", title="(c) asymptotic predictor: distance to the trained weights",
              xlabel="iteration t (log scale)",
              ylabel=r"$\|w(t) - w_{pred}(t)\| \,/\, \|w(t)\|$, mean over seeds × datasets",
              series=[relative] if relative is not None else [], xlog=True, ylog=True,
              ticks_at_data=False),
        Panel(name="seed_spread", title="(d) seed spread of the head direction on one S",
              xlabel="iteration t (log scale)",
              ylabel=r"$\frac{1}{K}\sum_k \|u_k - \bar u\|^2$, mean over datasets",
              series=[spread] if spread is not None else [], xlog=True, ylog=True,
              ticks_at_data=False),
    ]
    title = ("F2 · Head tuning over iterations: stability and direction error vs log t\n"
             f"solid: measured ({ERROR_BARS}) · dashed: Theorem H bound and the asymptotic "
             "predictor")
    return write_panels_figure(out_dir, key=KEY, stem=STEM, title=title,
                               panels=[panel for panel in panels if panel.series],
                               notes=tuple(notes))
