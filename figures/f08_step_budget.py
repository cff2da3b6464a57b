"""F8 — full fine-tuning stability against the step budget ηt, with the divergence region η > 2/β.

Theorem F's second term (qᵀ + q′ᵀ)·D, q = 1 − ημ, shrinks as ηT grows while η ≤ 1/β; past η = 2/β
gradient descent diverges. Data: full fine-tuning on quadratic tasks (where the theorem is exact),
stabiliser ``'none'``, every knob but the learning rate at its reference value
(:func:`figures.data.at_reference`), only datasets run at two or more learning rates
(:func:`figures.data.swept`). The learning rate is read as η·β̂ (``lr_scale``).

Panel (a): every checkpoint t; x = η·β̂·t (the step budget ηt in units of 1/β̂), one line per η·β̂.
Panel (b): final checkpoint; x = η·β̂, the region η·β̂ > 2 shaded. Panel (c): the fraction of units
in which some model diverged, against η·β̂. Aggregation: E_i of ``parameter_stability`` per unit
(dataset, config, seed, t); the mean over the units at a point with a 95% percentile-bootstrap CI;
diverged units are left out of (a) and (b) and counted in (c); Theorem F averaged over the units
where its assumptions hold (η ≤ 1/β among them).
"""
from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np
from matplotlib.axes import Axes

from figures.curves import lines, measured_and_bound
from figures.data import (MEASURE_LABEL, MissingData, at_reference, describe_reference,
                          last_checkpoints, loo_units, swept)
from figures.output import Drawn, write_panels_figure
from figures.style import ERROR_BARS, Panel, colour

KEY = "F8"
STEM = "f08_step_budget"
PRODUCED_BY = ("full fine-tuning learning-rate sweeps on quadratic tasks that cross η = 2/β, "
               "e.g. full_quadratic_gd_lr1.9 and full_quadratic_gd_lr2.2, stabiliser 'none'")
MEASURE = "parameter_stability"
BOUND = "theorem_f"
WHERE = "r.setting = 'full' AND r.kind = 'quadratic' AND r.stabiliser = 'none'"
DIVERGENCE = 2.0


def shade_divergence(ax: Axes) -> None:
    """Shade η·β̂ > 2, where gradient descent on a β-smooth quadratic diverges."""
    low, high = ax.get_xlim()
    ax.axvspan(DIVERGENCE, max(high, DIVERGENCE * 1.5), color="0.85", zorder=0,
               label="η > 2/β: GD diverges")
    ax.axvline(1.0, color="0.3", linestyle=":", linewidth=1.0, label="η = 1/β (Theorem F needs ≤)")
    ax.set_xlim(low, max(high, DIVERGENCE * 1.5))


def render(connection: sqlite3.Connection, out_dir: Path) -> Drawn:
    """Draw F8 into ``out_dir``."""
    every, chosen = at_reference(loo_units(connection, measure=MEASURE, bound=BOUND, where=WHERE,
                                           final_only=False), vary=("lr_key",))
    every = swept(every, "lr_key")
    if np.unique(every["lr_key"]).size < 2:
        raise MissingData("no quadratic full fine-tuning runs at two or more learning rates")
    final = last_checkpoints(every)
    budget = lines(every, by="lr_key", line_label=lambda lr: f"measured, η·β̂ = {lr:g}",
                   bound_label=lambda lr: f"Theorem F, η·β̂ = {lr:g}",
                   x=lambda group: group["lr_key"] * group["iteration"], xlog=True,
                   panel="budget", measure=MEASURE, bound=BOUND, figure_key=KEY)
    at_final = measured_and_bound(final, x=final["lr_key"], xlog=True, panel="final",
                                  label="measured", measure=MEASURE, bound=BOUND,
                                  bound_label="Theorem F bound", figure_key=KEY,
                                  line_colour=colour(0))
    # every unit counts towards the divergence rate, including those the estimator rule drops
    rate = final.with_column("measured", (final["diverged"] == 1).astype(float))
    diverged = measured_and_bound(rate, x=rate["lr_key"], xlog=True, panel="diverged",
                                  label="fraction of units diverged", measure="diverged",
                                  bound=None, bound_label=None, figure_key=KEY,
                                  line_colour=colour(1), kept=np.ones(len(rate), dtype=bool))
    reference = describe_reference(chosen)
    suffix = f", {reference}" if reference else ""
    lr_label = "learning rate η·β̂ (log scale)"
    panels = [
        Panel(name="budget", title=f"(a) over training{suffix}",
              xlabel="step budget η·t in units of 1/β̂ (η·β̂ × t, log scale)",
              ylabel=f"{MEASURE_LABEL[MEASURE]}, mean over seeds × datasets", series=budget,
              xlog=True, ylog=True, ticks_at_data=False),
        Panel(name="final", title=f"(b) at the last iteration T{suffix}", xlabel=lr_label,
              ylabel=f"{MEASURE_LABEL[MEASURE]}, mean over seeds × datasets", series=at_final,
              xlog=True, ylog=True, decorate=shade_divergence, ticks_at_data=False),
        Panel(name="diverged", title="(c) divergence", xlabel=lr_label,
              ylabel="fraction of units with a diverged model", series=diverged, xlog=True,
              decorate=shade_divergence, ticks_at_data=False),
    ]
    title = ("F8 · Full fine-tuning (quadratic) stability vs step budget ηt; divergence beyond η = 2/β\n"
             f"solid: measured ({ERROR_BARS}; diverged runs left out of a, b) · dashed: Theorem F bound")
    return write_panels_figure(out_dir, key=KEY, stem=STEM, title=title,
                               panels=[panel for panel in panels if panel.series])
