"""F9 — the stabilisers: MMR vs feature margin, MHLoss vs H, SURT vs D, seed std per stabiliser.

Data: every setting, each task's final checkpoint, every knob but the number of heads at its
reference value per task family (:func:`figures.data.at_reference_within`); each panel compares
a stabiliser with plain runs (``'none'``) on the datasets where that stabiliser was run. A setting is judged by its measure
(head: ``head_direction_stability``, full: ``parameter_stability``); units are E_i per
(dataset, config, stabiliser, parameters, seed).

Every line and bar belongs to one task family, keyed as the paired stabiliser verdicts key it
(:func:`figures.data.with_family`: the kind, and for the deep tasks their teacher), so the
target-adapted teacher, where SURT's premise holds, and the random-direction teacher, labelled
"null control", are never pooled; a series is named ``"<family> · <setting>, <stabiliser>"``.

(a) MMR: the normalised hard margin γ/R of the trained encoder's features (``feature_margin``, on
    the models trained on S) against the MMR strength (0: plain runs), one line per task family,
    each family at its reference setting; units whose features are not separable (NULL) are left out.
    Stores without that column fall back to stability against the normalised margin of the head
    (``normalised_margin``), one line per family, setting and stabiliser. (b) MHLoss: stability against the number of heads H.
(c) SURT: full fine-tuning stability against the measured D, the fine-tuning move
    ‖w_T − w_start‖ of the unit's model on S (``distance_from_start`` at its final checkpoint,
    the estimate of Theorem F's D = ‖w0 − w*_S‖ that the paired verdicts' D target reads), so
    tasks without Theorem F bounds (the deep tasks) are drawn too.
(d) Seed instability: per (dataset, config, stabiliser, parameters) the standard deviation over
    seeds (ddof = 1) of the final test accuracy of the models trained on S, on the datasets where a
    config was run with two or more stabilisers (as in T1, no reference slice); bars are the mean
    over those groups per family, setting and stabiliser, coloured by family.
Points are means over units with a 95% percentile-bootstrap CI; diverged units left out.
"""
from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import numpy as np
from matplotlib.axes import Axes
from matplotlib.patches import Patch

from figures.curves import lines, plain_first
from figures.data import (OPTIONAL_RUN_COLUMNS, SETTING_MEASURE, UNIT_KEYS, Frame,
                          MissingData, at_reference_within, compared_datasets, full_units, loo_units, summarise,
                          with_family, with_stabiliser_label)
from figures.output import Drawn, write_panels_figure
from figures.style import ERROR_BARS, Panel, Series, colour

KEY = "F9"
STEM = "f09_stabilisers"
PRODUCED_BY = ("stabiliser sweeps (`ftstab verify` with stabilisers mmr, mhloss, surt and the "
               "baselines, at least two seeds for panel d)")
MMR, MHLOSS, SURT = "mmr", "mhloss", "surt"
STABILITY_LABEL = "leave-one-out stability, mean over units"
OMITTED = {
    "(a) MMR": ("no mmr runs beside plain runs with a feature_margin (stores before that column), "
                "nor with a normalised_margin at two or more margins"),
    "(b) MHLoss": "no mhloss runs beside plain runs on the same datasets",
    "(c) SURT": "no surt runs with a measured D (distance_from_start) beside plain runs",
    "(d) seed instability": "no config run with two or more stabilisers over two or more seeds",
}


def _stability_units(connection: sqlite3.Connection) -> Frame:
    """Units of both settings with their ``family``, the setting's measure in ``measured``, each
    task family at its own reference setting."""
    frames = [at_reference_within(with_family(connection, loo_units(
                  connection, measure=measure, where="r.setting = ?", params=(setting,))),
                  "family", vary=("n_heads",))[0]
              for setting, measure in SETTING_MEASURE.items()]
    names = [name for name in frames[0].columns if all(name in frame for frame in frames)]
    return Frame({name: np.concatenate([frame[name] for frame in frames]) for name in names})


def _against(units: Frame, stabiliser: str) -> Frame:
    """Units of ``stabiliser`` and of plain runs on the datasets where ``stabiliser`` was run."""
    names = units["stabiliser"].astype(str)
    datasets = np.unique(units["dataset_id"][names == stabiliser])
    return units.filter(np.isin(names, ("none", stabiliser)) & np.isin(units["dataset_id"], datasets))


def series_name(family: str, setting: str, label: str | None = None) -> str:
    """``"<family> · <setting>, <stabiliser>"`` (or without the stabiliser)."""
    return f"{family} · {setting}" + ("" if label is None else f", {label}")


def family_then_plain(name: object) -> tuple[str, tuple[bool, str]]:
    """Sort key of series names: by family, plain runs first within each."""
    family, _, rest = str(name).partition(" · ")
    return family, plain_first(rest)


def _with_line(units: Frame, *, by_stabiliser: bool) -> Frame:
    """A ``line`` column: family, setting and stabiliser label, or family and setting."""
    units = with_stabiliser_label(units)
    names = [series_name(family, setting, label if by_stabiliser else None)
             for family, setting, label in zip(units["family"], units["setting"], units["label"])]
    return units.with_column("line", np.array(names, dtype=object))


def _curve_panel(units: Frame, *, name: str, x: str, xlabel: str, title: str, xlog: bool,
                 by_stabiliser: bool = True) -> Panel | None:
    units = units.filter(np.isfinite(units[x]))
    if np.unique(units[x]).size < 2:
        return None
    series = lines(_with_line(units, by_stabiliser=by_stabiliser), by="line",
                   line_label=str, x=lambda group: group[x], xlog=xlog, panel=name,
                   measure="stability", bound=None, figure_key=KEY, order=family_then_plain)
    return Panel(name=name, title=title, xlabel=xlabel, ylabel=STABILITY_LABEL, series=series,
                 xlog=xlog, ylog=True, ticks_at_data=x == "n_heads")


def _with_full_column(connection: sqlite3.Connection, units: Frame, column: str, *,
                      name: str) -> Frame:
    """``units`` with a column ``name``: ``column`` of each unit's model trained on S (NaN where
    the store has none)."""
    full = full_units(connection, optional=(column,) if column in OPTIONAL_RUN_COLUMNS else ())
    value = {tuple(row): value for *row, value in zip(*(full[key].tolist() for key in UNIT_KEYS),
                                                       full[column].tolist())}
    keys = zip(*(units[key].tolist() for key in UNIT_KEYS))
    return units.with_column(name, np.array([value.get(tuple(key), np.nan) for key in keys],
                                            dtype=float))


def _margin_panel(connection: sqlite3.Connection, units: Frame) -> Panel | None:
    units = _against(units, MMR)
    if not len(units):
        return None
    units = _with_full_column(connection, units, "normalised_margin", name="feature_margin")
    return _curve_panel(units, name="mmr", x="feature_margin", xlog=False,
                        title="(a) MMR: stability vs feature margin",
                        xlabel="normalised margin min_i y_i u·x_i (u = w/‖w‖) of the model on S")


def _feature_margin_panel(connection: sqlite3.Connection) -> Panel | None:
    full, _ = at_reference_within(
        with_family(connection, full_units(connection, optional=("feature_margin",))), "family")
    full = _against(full.filter(np.isfinite(full["feature_margin"])), MMR)
    strengths = [json.loads(params or "{}").get("strength", 0.0) if name == MMR else 0.0
                 for name, params in zip(full["stabiliser"], full["stabiliser_params"])]
    full = full.with_column("mmr_strength", np.array(strengths, dtype=float))
    if np.unique(full["mmr_strength"]).size < 2:
        return None
    full = full.with_column("measured", full["feature_margin"])
    series = lines(full, by="family", line_label=lambda family: f"{family}, feature margin",
                   x=lambda group: group["mmr_strength"], xlog=False, panel="mmr",
                   measure="feature_margin", bound=None, figure_key=KEY)
    return Panel(name="mmr", title="(a) MMR: margin of the encoder's features vs MMR strength",
                 xlabel="MMR strength (0: plain runs)",
                 ylabel="feature margin γ/R of the model on S, mean over seeds × datasets",
                 series=series)


def _seed_std_panel(connection: sqlite3.Connection) -> Panel | None:
    groups: dict[tuple[str, str, str, str], list[float]] = {}
    full = with_stabiliser_label(with_family(connection, full_units(connection)))
    for _, compared in full.groups("family", "setting", "config"):
        for (family, setting, label, name, _), runs in compared_datasets(compared).groups(
                "family", "setting", "label", "stabiliser", "dataset_id"):
            accuracy = runs["test_accuracy"][np.isfinite(runs["test_accuracy"])]
            if accuracy.size >= 2:
                groups.setdefault((family, setting, label, name), []).append(
                    float(np.std(accuracy, ddof=1)))
    ordered = sorted(groups.items(), key=lambda item: family_then_plain(series_name(*item[0][:3])))
    families = sorted({family for family, *_ in groups})
    series = [Series(panel="seed_std", label=series_name(family, setting, label),
                     quantity="test_accuracy_std_over_seeds", role="category",
                     x=np.array([float(index)]),
                     points=[summarise(np.array(values),
                                       key=(KEY, "seed_std", series_name(family, setting, label)))],
                     colour=colour(families.index(family)))
              for index, ((family, setting, label, _), values) in enumerate(ordered)]
    if not series:
        return None

    def name_bars(ax: Axes) -> None:
        # Tick labels name the stabiliser only (its parameters and family are in the CSV's series
        # column); the colours are the families, named in the legend.
        ax.set_xticks([item.x[0] for item in series], [name for (*_, name), _ in ordered],
                      rotation=30, ha="right", fontsize=8)
        ax.legend(handles=[Patch(color=colour(k), alpha=0.85, label=family)
                           for k, family in enumerate(families)], fontsize=7, loc="best")

    return Panel(name="seed_std", title="(d) seed instability per stabiliser",
                 xlabel="stabiliser (colour: task family)",
                 ylabel="std over seeds of test accuracy, mean over datasets", series=series,
                 decorate=name_bars, ticks_at_data=False)


def render(connection: sqlite3.Connection, out_dir: Path) -> Drawn:
    """Draw F9 into ``out_dir``."""
    units = _stability_units(connection)
    heads = _against(units, MHLOSS)
    surt = _against(units.filter(units["setting"] == "full"), SURT)
    if len(surt):
        surt = _with_full_column(connection, surt, "distance_from_start", name="measured_D")
    candidates = {
        "(a) MMR": _feature_margin_panel(connection) or _margin_panel(connection, units),
        "(b) MHLoss": _curve_panel(
            heads, name="mhloss", x="n_heads", xlog=True, by_stabiliser=False,
            title="(b) MHLoss: stability vs number of heads H (H = 1: plain)",
            xlabel="number of heads H (log scale)") if len(heads) else None,
        "(c) SURT": _curve_panel(
            surt, name="surt", x="measured_D", xlog=True,
            title="(c) SURT: stability vs distance D",
            xlabel="measured D = ‖w_T − w_start‖ of the model on S (log scale)") if len(surt) else None,
        "(d) seed instability": _seed_std_panel(connection),
    }
    panels = [panel for panel in candidates.values() if panel is not None and panel.series]
    notes = tuple(f"panel {name} omitted: {OMITTED[name]}" for name, panel in candidates.items()
                  if panel is None or not panel.series)
    if not panels:
        raise MissingData("no runs with the mmr, mhloss or surt stabilisers, and no config run "
                          "with two or more stabilisers over two or more seeds")
    title = ("F9 · Stabilisers against the quantity each targets, and seed instability\n"
             "stability: head direction (head) or parameter (full) · each panel vs plain runs on "
             f"the same datasets · {ERROR_BARS}\none series per task family (the deep tasks' "
             "random-direction teacher: the null control)")
    return write_panels_figure(out_dir, key=KEY, stem=STEM, title=title, panels=panels,
                               notes=notes)
