"""F7 — full fine-tuning stability against the curvature μ (L2-SP strength) and the Lipschitz proxy ρ.

Theorem F's first term is ρ_i / ((n−1) μ'): a larger smallest Hessian eigenvalue μ (what L2-SP and
weight decay add: μ_eff = μ + λ) and a smaller gradient norm ρ at the optimum (what noise-stability
/ Lipschitz regularisers aim for) both stabilise. Panel (a): x = μ, lines for plain runs and for
each curvature stabiliser (:data:`CURVATURE_STABILISERS`). Panel (b): x = ρ = E_i ρ_i, lines for
plain runs and each Lipschitz stabiliser (:data:`LIPSCHITZ_STABILISERS`). Where a panel's
stabilisers were run, it shows only their datasets (plain runs included), so the lines compare the
same datasets; otherwise it shows the plain runs of every dataset. μ and ρ are the constants
Theorem F estimated for the run (keys ``mu`` and ``rho`` of the bounds table's ``constants``).

Data: full fine-tuning runs at each task's final checkpoint and the reference training setting
(:func:`figures.data.at_reference`). Aggregation: E_i of ``parameter_stability`` and of the constant
per unit (dataset, config, stabiliser, parameters, seed); units binned on x (exact values when there
are few), mean over the units in a bin with a 95% percentile-bootstrap CI, diverged units left out;
Theorem F averaged over the units where its assumptions hold.
"""
from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np

from figures.curves import lines, plain_first
from figures.data import (MEASURE_LABEL, Frame, MissingData, at_reference, describe_reference,
                          loo_units)
from figures.output import Drawn, write_panels_figure
from figures.style import ERROR_BARS, Panel

KEY = "F7"
STEM = "f07_curvature_lipschitz"
PRODUCED_BY = ("full fine-tuning runs with Theorem F's constants mu and rho, plain and with the "
               "l2sp / weight_decay (panel a) or lnsr (panel b) stabilisers")
MEASURE = "parameter_stability"
BOUND = "theorem_f"
CURVATURE_STABILISERS = ("l2sp", "weight_decay")
LIPSCHITZ_STABILISERS = ("lnsr",)


def _panel(units: Frame, *, name: str, constant: str, stabilisers: tuple[str, ...], title: str,
           xlabel: str) -> Panel | None:
    names = units["stabiliser"].astype(str)
    keep = np.isin(names, ("none", *stabilisers)) & np.isfinite(units[f"constant_{constant}"])
    stabilised = np.isin(names, stabilisers) & keep
    if stabilised.any():
        keep &= np.isin(units["dataset_id"], np.unique(units["dataset_id"][stabilised]))
    units = units.filter(keep)
    if np.unique(units[f"constant_{constant}"]).size < 2:
        return None
    series = lines(units, by="stabiliser", line_label=lambda stabiliser: f"measured, {stabiliser}",
                   bound_label=lambda stabiliser: f"Theorem F bound, {stabiliser}",
                   x=lambda group: group[f"constant_{constant}"], xlog=True, panel=name,
                   measure=MEASURE, bound=BOUND, figure_key=KEY, order=plain_first)
    return Panel(name=name, title=title, xlabel=xlabel,
                 ylabel=f"{MEASURE_LABEL[MEASURE]}, mean over units in bin", series=series,
                 xlog=True, ylog=True)


def render(connection: sqlite3.Connection, out_dir: Path) -> Drawn:
    """Draw F7 into ``out_dir``."""
    units, chosen = at_reference(loo_units(connection, measure=MEASURE, bound=BOUND,
                                           constants=("mu", "rho"), where="r.setting = 'full'"))
    reference = describe_reference(chosen)
    suffix = f", {reference}" if reference else ""
    panels = [
        _panel(units, name="curvature", constant="mu", stabilisers=CURVATURE_STABILISERS,
               title=f"(a) vs curvature μ{suffix}",
               xlabel="smallest Hessian eigenvalue μ (incl. L2-SP / decay strength, log scale)"),
        _panel(units, name="lipschitz", constant="rho", stabilisers=LIPSCHITZ_STABILISERS,
               title=f"(b) vs Lipschitz proxy ρ{suffix}",
               xlabel="ρ = E_i ‖∇ℓ_i(w*_S)‖, gradient norm at the optimum (log scale)"),
    ]
    panels = [panel for panel in panels if panel is not None and panel.series]
    if not panels:
        raise MissingData("no full fine-tuning runs with Theorem F constants mu or rho taking two "
                          "or more values")
    title = ("F7 · Full fine-tuning parameter stability vs curvature μ and Lipschitz proxy ρ\n"
             f"solid: measured ({ERROR_BARS}) · dashed: Theorem F bound ∝ ρ/(nμ) + (qᵀ + q′ᵀ)·D")
    return write_panels_figure(out_dir, key=KEY, stem=STEM, title=title, panels=panels)
