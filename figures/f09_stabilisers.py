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
    the models trained on S) against the MMR strength (0: plain runs) on a symmetric-log axis (the
    strength grid's decades evenly spaced, 0 one decade below the smallest), one line per task
    family, each family at its reference setting; units whose features are not separable (NULL)
    are left out.
    Stores without that column fall back to stability against the normalised margin of the head
    (``normalised_margin``), one line per family, setting and stabiliser. (b) MHLoss: stability against the number of heads H.
(c) SURT: full fine-tuning stability against the measured D, the fine-tuning move
    ‖w_T − w_start‖ of the unit's model on S (``distance_from_start`` at its final checkpoint,
    the estimate of Theorem F's D = ‖w0 − w*_S‖ that the paired verdicts' D target reads), so
    tasks without Theorem F bounds (the deep tasks) are drawn too. One line per family and SURT
    setting (plain runs and each strength-grid point): colour is the family, marker and shade the
    setting (plain lightest); the legend, under the axes, has a column per family and names each
    setting by the parameters in which the panel's SURT settings differ.
(d) Seed instability: per (dataset, config, stabiliser, parameters) the standard deviation over
    seeds (ddof = 1) of the final test accuracy of the models trained on S, on the datasets where a
    config was run with two or more stabilisers (as in T1, no reference slice); horizontal bars are
    the mean over those groups per family, setting and stabiliser, grouped and coloured by family.
    Plain runs and each stabiliser at its default parameters only (``Stabiliser().params()``; every
    stored setting of a stabiliser of which the family holds no default run): the other points of
    the strength grids are in T1 and the verdicts' validation-selected rows, and panels (a) and (c)
    draw MMR's and SURT's. A bar at non-default parameters is labelled with them.
Points are means over units with a 95% percentile-bootstrap CI. Panels (b) and (c) compare on
matched seeds (:func:`figures.data.on_matched_seeds`): a seed whose E_i the verdicts' estimator rule
drops under one variant (its left-out estimate partial, or a model diverged) is dropped under every
variant of the panel, as in the paired verdicts; the index counts the units so left out. A family
has one colour in every panel (a second setting of it in (b) lighter); legends sit under the
axes, so no line is hidden.
"""
from __future__ import annotations

import json
import sqlite3
import textwrap
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.colors import to_hex, to_rgb
from matplotlib.container import ErrorbarContainer
from matplotlib.figure import Figure
from matplotlib.legend import Legend
from matplotlib.lines import Line2D

from figures.curves import lines, plain_first
from figures.data import (OPTIONAL_RUN_COLUMNS, SETTING_MEASURE, UNIT_KEYS, Frame,
                          MissingData, at_reference_within, compared_datasets, full_units, loo_units,
                          on_matched_seeds, summarise, stabiliser_label, with_family, with_stabiliser_label)
from figures.output import Drawn, write_panels_figure
from figures.style import ERROR_BARS, FONT_SIZE, PANEL_SIZE, Panel, Series, colour, legend_below
from verify.verdicts.db import canonical_params
from verify.verdicts.stabilisers import config_inits, stabiliser_declarations, task_family

KEY = "F9"
STEM = "f09_stabilisers"
PRODUCED_BY = ("stabiliser sweeps (`ftstab verify` with stabilisers mmr, mhloss, surt and the "
               "baselines, at least two seeds for panel d)")
MMR, MHLOSS, SURT = "mmr", "mhloss", "surt"
MATCHED = ("dataset_id", "config", "seed")  # a matched set: one seed of a dataset and config
STABILITY_LABEL = "leave-one-out stability, mean over units"
MARKERS = ("v", "s", "^", "D", "P", "X")  # of SURT's settings in panel (c); plain runs: "o"
BLANK = Line2D([], [], linestyle="none")  # legend handle of a header or an empty cell
LEGEND_HEADER_WIDTH = 28  # characters per line of a family's name heading a legend column
LEGEND_SHARE = 0.95  # of its column's width, the most a panel's legend may take
ROW_HEIGHT = 7.0  # inches per row of panels: room for a legend under the axes and the bars of (d)
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
                 xlog=xlog, ylog=True, ticks_at_data=x == "n_heads", legend_loc="below")


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


def family_colours(connection: sqlite3.Connection) -> dict[str, str]:
    """One colour per task family of the store's datasets (sorted), shared by the panels."""
    cards = [(kind, json.loads(card) if card else None)
             for kind, card in connection.execute("SELECT kind, card FROM datasets")]
    teacher_head = "teacher_head" in config_inits(connection).values()
    families = sorted({task_family(kind, card) for kind, card in cards}
                      | {task_family(kind, card, "teacher_head") for kind, card in cards
                         if teacher_head and card and "teacher" in (card.get("params") or {})})
    return {family: colour(index) for index, family in enumerate(families)}


def _feature_margin_panel(connection: sqlite3.Connection, colours: dict[str, str]) -> Panel | None:
    full, _ = at_reference_within(
        with_family(connection, full_units(connection, optional=("feature_margin",))), "family")
    full = _against(full.filter(np.isfinite(full["feature_margin"])), MMR)
    strengths = [json.loads(params or "{}").get("strength", 0.0) if name == MMR else 0.0
                 for name, params in zip(full["stabiliser"], full["stabiliser_params"])]
    full = full.with_column("mmr_strength", np.array(strengths, dtype=float))
    if np.unique(full["mmr_strength"]).size < 2:
        return None
    full = full.with_column("measured", full["feature_margin"])
    family_of = {f"{family}, feature margin": family for family in np.unique(full["family"])}
    series = [replace(item, colour=colours[family_of[item.label]])
              for item in lines(full, by="family", line_label=lambda family: f"{family}, feature margin",
                                x=lambda group: group["mmr_strength"], xlog=False, panel="mmr",
                                measure="feature_margin", bound=None, figure_key=KEY)]
    positive = full["mmr_strength"][full["mmr_strength"] > 0]
    return Panel(name="mmr", title="(a) MMR: margin of the encoder's features vs MMR strength",
                 xlabel="MMR strength (0: plain runs; symmetric-log axis, linear below "
                        f"{positive.min():g})",
                 ylabel="feature margin γ/R of the model on S, mean over seeds × datasets",
                 series=series, xlinthresh=float(positive.min()), legend_loc="below")


def _setting_key(params: dict[str, Any], varying: list[str]) -> tuple:
    """Sort key of a stabiliser setting by its ``varying`` parameters (numbers by value)."""
    return tuple((0, float(value), "") if isinstance(value, (int, float)) else (1, 0.0, str(value))
                 for value in (params[key] for key in varying))


def _shade(base: str, lightness: float) -> str:
    """``base`` mixed with white in proportion ``lightness`` (0: ``base`` itself)."""
    red, green, blue = ((1 - lightness) * channel + lightness for channel in to_rgb(base))
    return to_hex((red, green, blue))


def _family_coloured(panel: Panel | None, colours: dict[str, str]) -> Panel | None:
    """``panel`` with each line in its family's colour (a family's second setting lighter)."""
    if panel is None:
        return None
    seen: dict[str, int] = {}
    series = []
    for item in panel.series:
        family = item.label.partition(" · ")[0]
        seen[family] = seen.get(family, -1) + 1
        series.append(replace(item, colour=_shade(colours[family], min(0.45 * seen[family], 0.8))))
    return replace(panel, series=series)


def _surt_panel(surt: Frame, colours: dict[str, str], default: str | None) -> Panel | None:
    """Panel (c): a line per family and SURT setting, keyed by colour (family) and marker and shade
    (setting), with a legend of one column per family under the axes."""
    panel = _curve_panel(surt, name="surt", x="measured_D", xlog=True,
                         title="(c) SURT: stability vs distance D",
                         xlabel="measured D = ‖w_T − w_start‖ of the model on S (log scale)")
    if panel is None:
        return None
    labelled = with_stabiliser_label(surt)
    settings = {canonical_params(params): json.loads(params or "{}")
                for name, params in zip(labelled["stabiliser"], labelled["stabiliser_params"])
                if name == SURT}
    common = {key: value for key, value in next(iter(settings.values())).items()
              if all(other.get(key, object()) == value for other in settings.values())}
    varying = sorted({key for params in settings.values() for key in params} - set(common))
    order = sorted(settings, key=lambda text: _setting_key(settings[text], varying))
    # Plain runs lightest, stronger settings darker; a marker per setting tells apart lines of one
    # family that cross.
    shades = {"none": 0.6, **{text: 0.4 * (len(order) - 1 - rank) / max(len(order) - 1, 1)
                              for rank, text in enumerate(order)}}
    markers = {"none": "o", **{text: MARKERS[rank % len(MARKERS)] for rank, text in enumerate(order)}}
    names = {"none": "plain", **{text: stabiliser_label(SURT, json.dumps(
        {key: settings[text][key] for key in varying})) + (" (default)" if text == default else "")
        for text in order}}
    rank = {"none": -1, **{text: index for index, text in enumerate(order)}}
    # series name -> (colour, marker, legend label, rank of the setting)
    style: dict[str, tuple[str, str, str, int]] = {}
    for family, setting, name, params in zip(labelled["family"], labelled["setting"],
                                             labelled["stabiliser"], labelled["stabiliser_params"]):
        key = "none" if name == "none" else canonical_params(params)
        style[series_name(family, setting, stabiliser_label(name, params))] = (
            _shade(colours[family], shades[key]), markers[key], names[key], rank[key])
    series = [replace(item, colour=style[item.label][0]) for item in panel.series]
    by_family: dict[str, list[str]] = {}
    for item in sorted(series, key=lambda item: (item.label.partition(" · ")[0],
                                                 style[item.label][3], item.label)):
        by_family.setdefault(item.label.partition(" · ")[0], []).append(item.label)
    title = ("colour: task family · marker, shade: SURT setting"
             + (f" ({stabiliser_label(SURT, json.dumps(common))[len(SURT) + 1:-1]} in all)"
                if common and varying else ""))

    def legend(ax: Axes) -> None:
        handles: dict[str, ErrorbarContainer] = {}
        for container in ax.containers:
            label = str(container.get_label())
            if isinstance(container, ErrorbarContainer) and label in style:
                container.lines[0].set_marker(style[label][1])
                handles[label] = container
        rows = max(len(members) for members in by_family.values()) + 1
        blocks: list[list[tuple[Any, str]]] = []
        for family, members in by_family.items():
            block: list[tuple[Any, str]] = [(BLANK, textwrap.fill(family, LEGEND_HEADER_WIDTH))]
            block += [(handles[member], style[member][2]) for member in members]
            blocks.append(block + [(BLANK, "")] * (rows - len(block)))
        # As many families side by side as fit the panel's column of the page (a wider legend
        # starves the constrained layout, which then gives up); the rest wrap below.
        figure, spec = ax.figure, ax.get_subplotspec()
        assert isinstance(figure, Figure) and spec is not None  # a panel of figures.style.new_figure
        column_inches = figure.get_figwidth() / spec.get_gridspec().ncols
        for ncols in range(len(blocks), 0, -1):
            drawn = _family_legend(ax, blocks, ncols, title)
            for index, text in enumerate(drawn.get_texts()):
                if index % rows == 0:
                    text.set_fontweight("bold")
            inches = drawn.get_window_extent().width / figure.dpi
            if ncols == 1 or inches <= LEGEND_SHARE * column_inches:
                break
            drawn.remove()

    return replace(panel, series=series, decorate=legend, legend_loc="none")


def _family_legend(ax: Axes, blocks: list[list[tuple[Any, str]]], ncols: int, title: str) -> Legend:
    """A legend of ``ncols`` columns under ``ax``, each column a stack of family blocks (block k in
    column k mod ``ncols``); matplotlib fills a legend column by column, so every column is padded
    to the same number of blocks."""
    depth = -(-len(blocks) // ncols)
    empty = [(BLANK, "")] * len(blocks[0])
    entries = [entry for column in range(ncols) for slot in range(depth)
               for entry in (blocks[slot * ncols + column] if slot * ncols + column < len(blocks) else empty)]
    return legend_below(ax, [handle for handle, _ in entries], [text for _, text in entries],
                        ncols=ncols, title=title, title_fontsize=FONT_SIZE - 1)


def at_default_settings(full: Frame, defaults: dict[str, str]) -> tuple[Frame, int]:
    """Rows of plain runs and of each stabiliser at its default parameters (canonical JSON, as
    :func:`verify.verdicts.stabilisers.stabiliser_declarations` gives them), and the number of
    (family, setting, stabiliser setting) left out; a stabiliser that a family and setting never ran
    at its default keeps every stored setting there."""
    params = np.array([canonical_params(text) for text in full["stabiliser_params"]], dtype=object)
    groups = np.array([f"{family}\0{setting}\0{name}" for family, setting, name
                       in zip(full["family"], full["setting"], full["stabiliser"])], dtype=object)
    default = np.array([params[k] == defaults.get(name) for k, name in enumerate(full["stabiliser"])])
    keep = np.zeros(len(full), dtype=bool)
    left_out = 0
    for group in np.unique(groups):
        at = groups == group
        chosen = at & default if (at & default).any() else at
        keep |= chosen
        left_out += np.unique(params[at & ~chosen]).size
    return full.filter(keep), left_out


def _seed_std_panel(connection: sqlite3.Connection, colours: dict[str, str],
                    defaults: dict[str, str]) -> tuple[Panel | None, int]:
    groups: dict[tuple[str, str, str, str, bool], list[float]] = {}
    full, left_out = at_default_settings(
        with_family(connection, full_units(connection)), defaults)
    full = with_stabiliser_label(full)
    for _, compared in full.groups("family", "setting", "config"):
        for (family, setting, label, name, params, _), runs in compared_datasets(compared).groups(
                "family", "setting", "label", "stabiliser", "stabiliser_params", "dataset_id"):
            accuracy = runs["test_accuracy"][np.isfinite(runs["test_accuracy"])]
            if accuracy.size >= 2:
                at_default = name == "none" or canonical_params(params) == defaults.get(name)
                groups.setdefault((family, setting, label, name, at_default), []).append(
                    float(np.std(accuracy, ddof=1)))
    ordered = sorted(groups.items(), key=lambda item: family_then_plain(series_name(*item[0][:3])))
    settings_of: dict[str, set[str]] = {}
    for family, setting, *_ in groups:
        settings_of.setdefault(family, set()).add(setting)
    series: list[Series] = []
    bar_labels: list[str] = []
    headers: dict[float, str] = {}  # position -> family, the row above its bars
    position = 0.0
    for (family, setting, label, name, at_default), values in ordered:
        if family not in headers.values():
            headers[position] = family
            position += 1
        name_shown = "plain" if name == "none" else (name if at_default else label)
        bar_labels.append(name_shown if len(settings_of[family]) == 1 else f"{setting} · {name_shown}")
        series.append(Series(panel="seed_std", label=series_name(family, setting, label),
                             quantity="test_accuracy_std_over_seeds", role="category",
                             x=np.array([position]),
                             points=[summarise(np.array(values), key=(
                                 KEY, "seed_std", series_name(family, setting, label)))],
                             colour=colours[family]))
        position += 1
    if not series:
        return None, left_out

    def name_bars(ax: Axes) -> None:
        # Tick labels name the stabiliser (with its parameters where not the default); the family
        # heads its group of bars, in its colour.
        ax.set_yticks([item.x[0] for item in series], bar_labels, fontsize=FONT_SIZE - 2)
        ax.set_ylim(position - 0.4, -0.6)
        for at, family in headers.items():
            ax.text(0.01, at, family, transform=ax.get_yaxis_transform(), color=colours[family],
                    fontsize=FONT_SIZE - 1, fontweight="bold", va="center", ha="left")

    return Panel(name="seed_std",
                 title="(d) seed instability: plain and each stabiliser at its defaults\n"
                       "(other strength-grid points: T1 and the verdicts)",
                 xlabel="std over seeds of test accuracy, mean over datasets",
                 ylabel="stabiliser, grouped by task family", series=series,
                 decorate=name_bars, ticks_at_data=False, horizontal_bars=True), left_out


def render(connection: sqlite3.Connection, out_dir: Path) -> Drawn:
    """Draw F9 into ``out_dir``."""
    colours = family_colours(connection)
    units = _stability_units(connection)
    heads, heads_dropped = on_matched_seeds(_against(units, MHLOSS), keys=MATCHED)
    surt, surt_dropped = on_matched_seeds(_against(units.filter(units["setting"] == "full"), SURT),
                                          keys=MATCHED)
    if len(surt):
        surt = _with_full_column(connection, surt, "distance_from_start", name="measured_D")
    defaults = stabiliser_declarations()[1]
    seed_std, left_out = _seed_std_panel(connection, colours, defaults)
    candidates = {
        "(a) MMR": (_feature_margin_panel(connection, colours)
                    or _margin_panel(connection, units)),
        "(b) MHLoss": _family_coloured(_curve_panel(
            heads, name="mhloss", x="n_heads", xlog=True, by_stabiliser=False,
            title="(b) MHLoss: stability vs number of heads H (H = 1: plain)",
            xlabel="number of heads H (log scale)"), colours) if len(heads) else None,
        "(c) SURT": _surt_panel(surt, colours, defaults.get(SURT)) if len(surt) else None,
        "(d) seed instability": seed_std,
    }
    panels = [panel for panel in candidates.values() if panel is not None and panel.series]
    notes = tuple(f"panel {name} omitted: {OMITTED[name]}" for name, panel in candidates.items()
                  if panel is None or not panel.series)
    if seed_std is not None and left_out:
        notes += (f"panel (d): plain runs and each stabiliser at its default parameters; "
                  f"{left_out} other stabiliser setting(s) (strength-grid points) left out, "
                  "they are in T1",)
    for name, dropped in (("(b)", heads_dropped), ("(c)", surt_dropped)):
        if dropped:
            notes += (f"panel {name}: {dropped} unit(s) left out on matched seeds (a seed whose E_i "
                      "the estimator rule drops under one variant is dropped under every variant: "
                      "a left-out estimate partial, or a model diverged)",)
    if not panels:
        raise MissingData("no runs with the mmr, mhloss or surt stabilisers, and no config run "
                          "with two or more stabilisers over two or more seeds")
    title = ("F9 · Stabilisers against the quantity each targets, and seed instability\n"
             "stability: head direction (head) or parameter (full) · each panel vs plain runs on "
             f"the same datasets · {ERROR_BARS}\none colour per task family (the deep tasks' "
             "random-direction teacher: the null control)")
    return write_panels_figure(out_dir, key=KEY, stem=STEM, title=title, panels=panels,
                               notes=notes, size=_figure_size(len(panels)))


def _figure_size(n_panels: int) -> tuple[float, float]:
    """Inches: :data:`figures.style.PANEL_SIZE` wide per column (the layout of
    :func:`figures.style.new_figure`), :data:`ROW_HEIGHT` per row and the title's three lines."""
    n_columns = n_panels if n_panels <= 3 else 2
    return PANEL_SIZE[0] * n_columns + 1.0, ROW_HEIGHT * -(-n_panels // n_columns) + 0.75
