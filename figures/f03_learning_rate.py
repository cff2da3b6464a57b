"""F3 — stability against the learning rate η (in units of 1/β̂), head tuning and full fine-tuning.

Data: runs with stabiliser ``'none'`` at each task's final checkpoint; every knob but the learning
rate held at its reference value (:func:`figures.data.at_reference`, per dataset kind), and only datasets run at two
or more learning rates (:func:`figures.data.swept`), so every point averages the same datasets.
One panel per setting that has two or more learning rates, one line per dataset kind. Aggregation: E_i of the setting's measure
(head: ``head_direction_stability``, full: ``parameter_stability``) per unit (dataset, config,
seed); at each η the mean over the units (seeds × datasets) with a 95% percentile-bootstrap CI;
diverged units are left out of the mean. The setting's bound (Theorem H / Theorem F) is averaged over
the units where its assumptions hold, so Theorem F stops at η·β̂ = 1 (its assumption η ≤ 1/β).
The head panel is full-batch GD at a fixed number of steps t: there the path depends on η·t, so a
larger stable step is more stable. The claim about small learning rates is about SGD at a fixed η·t:
panel "SGD at a fixed η·T" draws the seed spread of the head direction (``head_seed_spread``) of SGD
heads from random initialisations at the final checkpoint of configs with equal η·T, against η.
"""
from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np
from matplotlib.axes import Axes

from figures.curves import lines
from figures.data import (MEASURE_LABEL, SETTING_BOUND, SETTING_MEASURE, MissingData,
                          at_reference_within, describe_references, loo_units, swept)
from figures.f02_iterations import HEAD_SEPARABLE, seed_spread_series
from figures.output import Drawn, write_panels_figure
from figures.style import ERROR_BARS, Panel, mark_trivial_direction_bound

KEY = "F3"
STEM = "f03_learning_rate"
PRODUCED_BY = ("learning-rate sweeps: configs that differ only in lr_scale (e.g. head_gd_logistic_lr*, "
               "full_quadratic_gd_lr*), stabiliser 'none'")
BOUND_NAME = {"theorem_h": "Theorem H", "theorem_f": "Theorem F"}
LR_LABEL = "learning rate η·β̂ (η in units of 1/β̂, log scale)"


def mark_step_size_limits(ax: Axes) -> None:
    """Theorem F's η ≤ 1/β and the divergence threshold η = 2/β of gradient descent."""
    ax.axvline(1.0, color="0.3", linestyle=":", linewidth=1.0, label="η = 1/β (Theorem F needs ≤)")
    ax.axvline(2.0, color="0.1", linestyle="-.", linewidth=1.0, label="η = 2/β (GD diverges beyond)")


def _panel(connection: sqlite3.Connection, setting: str) -> Panel | None:
    measure, bound = SETTING_MEASURE[setting], SETTING_BOUND[setting]
    units, chosen = at_reference_within(
        loo_units(connection, measure=measure, bound=bound,
                  where="r.setting = ? AND r.stabiliser = 'none'", params=(setting,)),
        "kind", vary=("lr_key",))
    units = swept(units, "lr_key")
    if np.unique(units["lr_key"][np.isfinite(units["lr_key"])]).size < 2:
        return None
    series = lines(units, by="kind", line_label=lambda kind: f"measured, {kind}",
                   bound_label=lambda kind: f"{BOUND_NAME[bound]} bound, {kind}",
                   x=lambda group: group["lr_key"], xlog=True, panel=setting, measure=measure,
                   bound=bound, figure_key=KEY)
    reference = describe_references(chosen)
    name = "head tuning" if setting == "head" else "full fine-tuning"
    return Panel(name=setting, title=f"({name}){', ' + reference if reference else ''}",
                 xlabel=LR_LABEL, ylabel=f"{MEASURE_LABEL[measure]}, mean over seeds × datasets",
                 series=series, xlog=True, ylog=True, ticks_at_data=False,
                 decorate=mark_trivial_direction_bound if setting == "head" else mark_step_size_limits)


# SGD heads from random inits, binary and noiseless, one row per task (every seed holds the spread).
SEED_SPREAD_SGD = (f"{HEAD_SEPARABLE} AND r.init = 'random' AND r.batch_size IS NOT NULL "
                   "AND r.n_classes = 2 AND COALESCE(r.label_noise, 0) = 0 AND r.n_heads = 1 "
                   "AND r.seed = 0")


def _sgd_panel(connection: sqlite3.Connection) -> Panel | None:
    eta_t = connection.execute(
        f"SELECT ROUND(r.lr_scale * r.n_steps, 6) AS eta_t, COUNT(DISTINCT r.lr_scale) AS steps "
        f"FROM runs AS r WHERE {SEED_SPREAD_SGD} GROUP BY eta_t ORDER BY steps DESC, eta_t "
        "LIMIT 1").fetchone()
    if eta_t is None or eta_t[1] < 2:
        return None
    series = seed_spread_series(
        connection, where=f"{SEED_SPREAD_SGD} AND ROUND(r.lr_scale * r.n_steps, 6) = {eta_t[0]!r}",
        x="lr_key", xlog=True, panel="sgd_seed_spread",
        label=f"SGD from random heads, η·T = {eta_t[0]:g}/β̂", figure_key=KEY, final_only=True)
    if series is None:
        return None
    return Panel(name="sgd_seed_spread", title="(SGD at a fixed η·T) seed spread of the head direction",
                 xlabel=LR_LABEL, ylabel=r"$\frac{1}{K}\sum_k \|u_k - \bar u\|^2$, mean over datasets",
                 series=[series], xlog=True, ylog=True, ticks_at_data=False)


def render(connection: sqlite3.Connection, out_dir: Path) -> Drawn:
    """Draw F3 into ``out_dir``."""
    panels = [panel for setting in ("head", "full")
              if (panel := _panel(connection, setting)) is not None and panel.series]
    if (sgd := _sgd_panel(connection)) is not None:
        panels.append(sgd)
    if not panels:
        raise MissingData("no setting has runs at two or more learning rates")
    title = ("F3 · Stability vs learning rate (head: full-batch GD at a fixed t; SGD: at a fixed η·T)\n"
             f"solid: measured ({ERROR_BARS}) · dashed: Theorem H (head) / Theorem F (full) bound")
    return write_panels_figure(out_dir, key=KEY, stem=STEM, title=title, panels=panels)
