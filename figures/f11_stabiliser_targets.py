"""F11 — does a stabiliser's effect on instability follow its effect on the quantity it targets?

Data: the paired units of the verdicts (``verify.verdicts.stabilisers.paired_units``: each task's
final checkpoint), each stabiliser at its default setting (its only setting where the results hold
no default) against plain training on the same dataset and config. One panel per stabiliser and
declared target quantity (``Stabiliser.targets``, measured as ``verify.verdicts.targets`` says),
titled by both; one point per dataset, its configs pooled as in the verdicts:

- x: the change of the target quantity, stabilised / plain (ratio of sums) or stabilised − plain
  (for signed quantities such as μ);
- y: the change of instability, stabilised / plain: the pooled seed std of test accuracy (dots)
  and the leave-one-out E_i (crosses; on the seeds both sides estimate, as in the verdicts:
  ``verify.verdicts.paired.matched_leave_one_out``).

Colours are task families (the deep tasks' random-direction teacher is the SURT null control). The
lines x = no change and y = 1 split the plane: below y = 1 the stabiliser stabilised that dataset.
A leave-one-out ratio whose plain side is below :data:`figures.data.NUMERICAL_ZERO` is left out
(plain A(S) = A(S\\i) up to rounding, e.g. noise-free least squares: the ratio would be rounding
noise); the index notes how many.
"""
from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np
from matplotlib.axes import Axes

from figures.data import NUMERICAL_ZERO, MissingData
from figures.output import Drawn, write_panels_figure
from figures.style import Panel, Series, Summary, colour
from verify.verdicts.paired import (LEAVE_ONE_OUT, PLAIN, RATIO, SEED_STD, Unit, paired_estimate,
                                    paired_sides, side_value, target_measure)
from verify.verdicts.stabilisers import paired_units, stabiliser_declarations
from verify.verdicts.targets import QUANTITIES

KEY = "F11"
STEM = "f11_stabiliser_targets"
PRODUCED_BY = ("stabiliser sweeps (`ftstab verify --stabilisers ...`) beside plain runs on the same "
               "datasets and configs, on datasets whose runs record a stabiliser's target quantity")
INSTABILITY = ((SEED_STD, "points", "seed std ratio"), (LEAVE_ONE_OUT, "bound_points",
                                                         "leave-one-out ratio"))


def _chosen(units: list[Unit], name: str, default: str | None) -> list[Unit]:
    settings = sorted({u.params for u in units if u.stabiliser == name})
    setting = default if default in settings else settings[0]
    return [u for u in units if u.stabiliser == name and u.params == setting]


def dataset_points(units: list[Unit], name: str, quantity: str, default: str | None) -> list[dict]:
    """Per dataset and task family (a dataset's configs of one family pooled, families never):
    the target's change and both instability changes of stabiliser ``name``."""
    plain = {(u.dataset_id, u.config): u for u in units if u.stabiliser == PLAIN}
    chosen = [u for u in _chosen(units, name, default) if (u.dataset_id, u.config) in plain]
    target = target_measure(QUANTITIES[quantity])
    points = []
    for dataset, family in sorted({(u.dataset_id, u.family) for u in chosen}):
        mine = [u for u in chosen if u.dataset_id == dataset and u.family == family]
        values = {}
        for measure in (target, SEED_STD, LEAVE_ONE_OUT):
            pairs = []
            for unit in mine:
                reference = plain[(unit.dataset_id, unit.config)]
                a, b = paired_sides(unit, reference, measure)
                if measure is LEAVE_ONE_OUT and b is not None and b < NUMERICAL_ZERO:
                    continue
                if a is not None and b is not None:
                    pairs.append((dataset, a, b))
            values[measure.name] = paired_estimate(pairs, measure, random_state=0,
                                                   n_resamples=1)["value"]
        if values[target.name] is None:
            continue
        points.append({"stabiliser": name, "setting": mine[0].params, "target": quantity,
                       "comparison": target.comparison, "dataset_id": dataset,
                       "family": family, "configs": ",".join(sorted({u.config for u in mine})),
                       "target_change": values[target.name],
                       "seed_std_ratio": values[SEED_STD.name],
                       "leave_one_out_ratio": values[LEAVE_ONE_OUT.name],
                       "plain_leave_one_out_zero": any(
                           (side_value(plain[(u.dataset_id, u.config)], LEAVE_ONE_OUT) or 1.0)
                           < NUMERICAL_ZERO for u in mine)})
    return points


def render(connection: sqlite3.Connection, out_dir: Path) -> Drawn:
    """Draw F11 into ``out_dir``."""
    factory, connection.row_factory = connection.row_factory, sqlite3.Row
    try:
        units = paired_units(connection)
    finally:
        connection.row_factory = factory
    targets, defaults = stabiliser_declarations()
    names = sorted({u.stabiliser for u in units if u.stabiliser != PLAIN})
    families = sorted({u.family for u in units})
    panels, rows, notes = [], [], []
    for name in names:
        for quantity in targets.get(name, ()):
            if quantity not in QUANTITIES:
                notes.append(f"{name}: target {quantity} is not measured in the results")
                continue
            every = dataset_points(units, name, quantity, defaults.get(name))
            points = [p for p in every
                      if p["seed_std_ratio"] is not None or p["leave_one_out_ratio"] is not None]
            zeros = sum(p["plain_leave_one_out_zero"] for p in every)
            if not points:
                continue
            rows += points
            if zeros:
                notes.append(f"{name} ({quantity}): the leave-one-out ratio of {zeros} dataset(s) "
                             f"left out: plain leave-one-out instability below {NUMERICAL_ZERO:g} "
                             "(rounding noise)")
            series = []
            for family in families:
                mine = [p for p in points if p["family"] == family]
                for measure, role, label in INSTABILITY:
                    drawn = [p for p in mine if p[f"{measure.name}_ratio"] is not None]
                    if drawn:
                        y = [p[f"{measure.name}_ratio"] for p in drawn]
                        series.append(Series(
                            panel=f"{name}:{quantity}", label=f"{family}: {label}",
                            quantity=measure.name, role=role,
                            x=np.array([p["target_change"] for p in drawn]),
                            points=[Summary(v, v, v, 1) for v in y],
                            colour=colour(families.index(family))))
            ratio = QUANTITIES[quantity].comparison == RATIO
            panels.append(Panel(
                name=f"{name}:{quantity}",
                title=f"{name}, target {quantity} (setting {points[0]['setting']})",
                xlabel=f"{QUANTITIES[quantity].label}: " + ("stabilised / plain" if ratio
                                                           else "stabilised − plain"),
                ylabel="instability, stabilised / plain", series=series, xlog=ratio, ylog=True,
                decorate=_no_change(1.0 if ratio else 0.0), ticks_at_data=False))
    if not panels:
        raise MissingData("no stabiliser beside plain runs on the same datasets and configs with "
                          "its target quantity recorded")
    title = ("F11 · Change of instability against the change of the stabiliser's target quantity\n"
             "one point per dataset, default setting, paired with plain training · below the "
             "line y = 1: more stable")
    return write_panels_figure(out_dir, key=KEY, stem=STEM, title=title, panels=panels,
                               csv_rows=rows, notes=tuple(notes))


def _no_change(x_null: float):
    def decorate(ax: Axes) -> None:
        ax.axhline(1.0, color="0.3", linewidth=0.9, linestyle=":")
        ax.axvline(x_null, color="0.3", linewidth=0.9, linestyle=":")
    return decorate
