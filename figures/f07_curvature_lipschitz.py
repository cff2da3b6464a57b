"""F7 — full fine-tuning stability against the curvature μ (L2-SP strength) and the Lipschitz proxy ρ.

Theorem F's first term is ρ_i / ((n−1) μ'): a larger smallest Hessian eigenvalue μ (what L2-SP and
weight decay add: μ_eff = μ + λ) and a smaller gradient norm ρ at the optimum (what noise-stability
/ Lipschitz regularisers aim for) both stabilise. μ and ρ are the constants Theorem F estimated for
each run (keys ``mu`` and ``rho`` of the bounds table's ``constants``), so they are not design
knobs: each point is one (dataset, config, stabiliser, parameters), a scatter, not a curve.
One colour per dataset kind and stabiliser.
Panel (a): x = μ, plain runs and each curvature stabiliser (:data:`CURVATURE_STABILISERS`).
Panel (b): x = ρ = E_i ρ_i, plain runs and each Lipschitz stabiliser (:data:`LIPSCHITZ_STABILISERS`).
Where a panel's stabilisers were run it shows only their datasets (plain runs included);
otherwise the plain runs of every dataset.

Data: full fine-tuning runs at each task's final checkpoint, at the reference training setting
per dataset kind (:func:`figures.data.at_reference_within`). Aggregation: E_i of
``parameter_stability``, of the bound and of the constant per unit (dataset, config, stabiliser,
parameters, seed); a point is the mean over seeds (units the estimator rule drops left out:
:func:`figures.data.kept_by_estimator`; the bound over units
where it holds). Points whose measured stability is numerically zero (< ``NUMERICAL_ZERO``) are
left out and counted in the index. The legend gives Kendall τ between x and the measured stability
per stabiliser (negative for μ and positive for ρ is what Theorem F predicts).
"""
from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np

from scipy import stats

from figures.curves import plain_first
from figures.data import (MEASURE_LABEL, NUMERICAL_ZERO, Frame, MissingData, Summary,
                          at_reference_within, describe_references, kept_by_estimator, loo_units)
from figures.output import Drawn, write_panels_figure
from figures.style import Panel, Series, colour

KEY = "F7"
STEM = "f07_curvature_lipschitz"
PRODUCED_BY = ("full fine-tuning runs with Theorem F's constants mu and rho, plain and with the "
               "l2sp / weight_decay (panel a) or lnsr (panel b) stabilisers")
MEASURE = "parameter_stability"
BOUND = "theorem_f"
CURVATURE_STABILISERS = ("l2sp", "weight_decay")
LIPSCHITZ_STABILISERS = ("lnsr",)


def _scatter(units: Frame, *, panel: str, constant: str) -> tuple[list[Series], int]:
    """Per kind and stabiliser: measured and bound points against the constant, and the number
    of points left out as numerically zero."""
    series: list[Series] = []
    zeros = 0
    groups = sorted(units.groups("kind", "stabiliser"),
                    key=lambda item: (plain_first(item[0][1]), item[0][0]))
    for index, ((kind, stabiliser), group) in enumerate(groups):
        name = f"{kind}, {stabiliser}"
        xs, measured, bound, counts = [], [], [], []
        for _, point in group.groups("dataset_id", "config", "stabiliser_params"):
            converged = point.filter(kept_by_estimator(point))
            value = float(np.mean(converged["measured"])) if len(converged) else np.nan
            if not value >= NUMERICAL_ZERO:
                zeros += int(np.isfinite(value))
                continue
            holds = point["bound_holds"] == 1
            xs.append(float(np.mean(point[f"constant_{constant}"])))
            measured.append(value)
            bound.append(float(np.mean(point["bound"][holds])) if holds.any() else np.nan)
            counts.append(len(converged))
        if not xs:
            continue
        tau = stats.kendalltau(xs, measured).statistic if len(xs) >= 2 else np.nan
        x = np.array(xs)
        series.append(Series(panel=panel, label=f"measured, {name}: τ(x, stability) = {tau:.2f}",
                             quantity=MEASURE, role="points", x=x, colour=colour(index),
                             points=[Summary(v, v, v, n) for v, n in zip(measured, counts)]))
        bounded = np.isfinite(bound)
        if bounded.any():
            series.append(Series(panel=panel, label=f"Theorem F bound, {name}", quantity=BOUND,
                                 role="bound_points", x=x[bounded], colour=colour(index),
                                 points=[Summary(v, v, v, n) for v, n, keep
                                         in zip(bound, counts, bounded) if keep]))
    return series, zeros


def _panel(units: Frame, *, name: str, constant: str, stabilisers: tuple[str, ...], title: str,
           xlabel: str) -> tuple[Panel | None, int]:
    names = units["stabiliser"].astype(str)
    keep = np.isin(names, ("none", *stabilisers)) & np.isfinite(units[f"constant_{constant}"])
    stabilised = np.isin(names, stabilisers) & keep
    if stabilised.any():
        keep &= np.isin(units["dataset_id"], np.unique(units["dataset_id"][stabilised]))
    series, zeros = _scatter(units.filter(keep), panel=name, constant=constant)
    xs = np.concatenate([item.x for item in series] or [np.empty(0)])
    if np.unique(xs).size < 2:
        return None, zeros
    # Log x only where it is possible (an MLP surrogate's μ can be ≤ 0) and spans a decade.
    xlog = bool(xs.min() > 0 and xs.max() / xs.min() > 10)
    return Panel(name=name, title=title, xlabel=xlabel + (" (log scale)" if xlog else ""),
                 ylabel=f"{MEASURE_LABEL[MEASURE]}, mean over seeds", series=series,
                 xlog=xlog, ylog=True, ticks_at_data=False), zeros


def render(connection: sqlite3.Connection, out_dir: Path) -> Drawn:
    """Draw F7 into ``out_dir``."""
    units, chosen = at_reference_within(
        loo_units(connection, measure=MEASURE, bound=BOUND, constants=("mu", "rho"),
                  where="r.setting = 'full'"), "kind")
    reference = describe_references(chosen)
    suffix = f"\n{reference}" if reference else ""
    curvature, curvature_zeros = _panel(
        units, name="curvature", constant="mu", stabilisers=CURVATURE_STABILISERS,
        title=f"(a) vs curvature μ{suffix}",
        xlabel="smallest Hessian eigenvalue μ (incl. L2-SP / decay strength)")
    lipschitz, lipschitz_zeros = _panel(
        units, name="lipschitz", constant="rho", stabilisers=LIPSCHITZ_STABILISERS,
        title=f"(b) vs Lipschitz proxy ρ{suffix}",
        xlabel="ρ = E_i ‖∇ℓ_i(w*_S)‖, gradient norm at the optimum")
    panels = [panel for panel in (curvature, lipschitz) if panel is not None]
    if not panels:
        raise MissingData("no full fine-tuning runs with Theorem F constants mu or rho taking two "
                          "or more values")
    notes = tuple(f"panel {name}: {zeros} point(s) with numerically zero stability "
                  f"(< {NUMERICAL_ZERO:g}) left out"
                  for name, zeros in (("curvature", curvature_zeros), ("lipschitz", lipschitz_zeros))
                  if zeros)
    title = ("F7 · Full fine-tuning parameter stability vs curvature μ and Lipschitz proxy ρ\n"
             "dots: measured (one per dataset × config × stabiliser, mean over seeds) · "
             "x: Theorem F bound ∝ ρ/(nμ) + (qᵀ + q′ᵀ)·D")
    return write_panels_figure(out_dir, key=KEY, stem=STEM, title=title, panels=panels, notes=notes)
