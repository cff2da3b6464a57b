"""F9 shows each task family apart, keyed as the paired stabiliser verdicts key them: the deep tasks'
target-adapted teacher and the random-direction null control are never pooled.

A small store of deep tasks (two datasets per teacher, plain and SURT) in which SURT halves the
leave-one-out instability and D on the target-adapted teacher and doubles both on the null control;
pooled, the two would cancel to a ratio 5/4 with neither effect visible. As on the real deep tasks,
no Theorem F bound is stored: panel (c) plots the measured D, the move of each model trained on S.

A second store runs SURT and MMR over their strength grids, as the main job does: panel (d) keeps
plain runs and each stabiliser at its default, panels (a) and (c) every grid point, and no legend
covers an axes nor do tick labels overprint.
"""
from __future__ import annotations

import csv
import json
import warnings
from pathlib import Path

import numpy as np
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

import figures.output
from figures.f09_stabilisers import render
from figures.data import open_results, stabiliser_label
from verify.stabilisers import STABILISERS
from tests.figures.conftest import Writer, create_results
from verify.verdicts.stabilisers import stabiliser_verdicts

SEEDS = (0, 1, 2)
LEFT_OUT = (0, 1)
TEACHERS = {"target_adapted": ("target-adapted", 0.5),
            "random_direction": ("random-direction (null control)", 2.0)}
FAIR, NULL = "deep_mlp, target-adapted teacher", "deep_mlp, random-direction (null control) teacher"
SURT = {"steps": 50}


def stability(dataset: int, seed: int, i: int, factor: float) -> float:
    return 0.01 * (1 + dataset) * (1 + 0.1 * seed) * (1 + 0.05 * i) * factor


def accuracy(seed: int, factor: float) -> float:
    return 0.8 - 0.02 * seed * factor


def _deep_task(writer: Writer, *, teacher: str, dataset: int, surt: bool) -> None:
    _, effect = TEACHERS[teacher]
    stabiliser, params = ("surt", SURT) if surt else ("none", {})
    _stabilised_task(writer, teacher=teacher, dataset=dataset, stabiliser=stabiliser, params=params,
                     factor=effect if surt else 1.0)


def _stabilised_task(writer: Writer, *, teacher: str, dataset: int, stabiliser: str, params: dict,
                     factor: float, feature_margin: float | None = None) -> None:
    label, _ = TEACHERS[teacher]
    dataset_id = f"deep-{teacher}-{dataset}"
    writer.dataset(dataset_id, "deep_mlp", {"id": dataset_id, "kind": "deep_mlp", "teacher": label,
                                            "params": {"teacher": teacher}})
    task_key = f"{dataset_id}/deep_sgd/{stabiliser}/{json.dumps(params)}"
    writer.task(task_key, dataset_id, "deep_sgd", stabiliser, params, SEEDS)
    common = dict(task_key=task_key, dataset_id=dataset_id, kind="deep_mlp", n_samples=40,
                  n_features=6, n_classes=2, distance=1.0, setting="full", config="deep_sgd",
                  loss="logistic", init="pretrained", lr=0.1, lr_scale=None, n_steps=100,
                  batch_size=16, n_heads=1, stabiliser=stabiliser,
                  stabiliser_params=json.dumps(params), diverged=0, iteration=100)
    for seed in SEEDS:
        writer.run(**common, seed=seed, left_out=None, test_accuracy=accuracy(seed, factor),
                   majority_accuracy=0.5, distance_from_start=factor * (1 + dataset),
                   feature_margin=feature_margin)
        for i in LEFT_OUT:
            measured = stability(dataset, seed, i, factor)
            writer.run(**common, seed=seed, left_out=i, left_out_weight=1 / len(LEFT_OUT),
                       parameter_stability=measured)


def _render_families(folder: Path, out: Path, *, edit: str | None = None):
    """Write every teacher's two datasets with and without SURT into ``folder``, apply the SQL
    ``edit`` if given, and render F9 into ``out``."""
    connection = create_results(folder / "results.sqlite")
    writer = Writer(connection)
    for teacher in TEACHERS:
        for dataset in (0, 1):
            for surt in (False, True):
                _deep_task(writer, teacher=teacher, dataset=dataset, surt=surt)
    if edit is not None:
        connection.execute(edit)
    connection.commit()
    connection.close()
    reader = open_results(folder)
    try:
        return render(reader, out)
    finally:
        reader.close()


@pytest.fixture(scope="module")
def drawn(tmp_path_factory) -> tuple[Path, Path]:
    folder, out = tmp_path_factory.mktemp("deep-families"), tmp_path_factory.mktemp("f09")
    _render_families(folder, out)
    return folder, out


def rows(out: Path, panel: str) -> list[dict]:
    with (out / "f09_stabilisers.csv").open(newline="", encoding="utf-8") as handle:
        return [row for row in csv.DictReader(handle) if row["panel"] == panel]


def test_surt_panel_has_one_line_per_teacher_family_with_its_own_means(drawn):
    _, out = drawn
    surt = {(row["series"], float(row["x"])): row for row in rows(out, "surt")
            if row["role"] == "measured"}
    assert {series for series, _ in surt} == {f"{family} · full, {label}" for family in (FAIR, NULL)
                                              for label in ("none", "surt(steps=50)")}
    for family, (_, effect) in zip((FAIR, NULL), TEACHERS.values()):
        for label, factor in (("none", 1.0), ("surt(steps=50)", effect)):
            for d in (0, 1):  # x: the measured D = factor (1 + d)
                expected = np.mean([np.mean([stability(d, s, i, factor) for i in LEFT_OUT])
                                    for s in SEEDS])
                row = surt[(f"{family} · full, {label}", factor * (1 + d))]
                assert float(row["mean"]) == pytest.approx(expected, rel=1e-12), (family, label)
                assert int(row["n_units"]) == len(SEEDS)


def test_seed_std_bars_are_per_family_and_the_null_control_is_labelled(drawn):
    _, out = drawn
    bars = {row["series"]: float(row["mean"]) for row in rows(out, "seed_std")}
    assert set(bars) == {f"{family} · full, {label}" for family in (FAIR, NULL)
                         for label in ("none", "surt(steps=50)")}
    assert all("null control" in name for name in bars if name.startswith(NULL))
    for family, (_, effect) in zip((FAIR, NULL), TEACHERS.values()):
        expected = np.std([accuracy(s, effect) for s in SEEDS], ddof=1)
        assert bars[f"{family} · full, surt(steps=50)"] == pytest.approx(expected, rel=1e-12)


def test_figure_families_are_the_paired_verdicts_families(drawn):
    folder, out = drawn
    reader = open_results(folder)
    try:
        families = {row["family"] for row in stabiliser_verdicts(reader)}
    finally:
        reader.close()
    drawn_families = {row["series"].partition(" · ")[0] for row in rows(out, "surt")}
    assert drawn_families == families == {FAIR, NULL}


SURT_DEFAULT = STABILISERS["surt"]().params()
MMR_DEFAULT = STABILISERS["mmr"]().params()
SURT_GRID = (30, 100, 300)  # n_steps; 100 is the default
MMR_GRID = (0.01, 0.1, 1.0)  # strength; 0.1 is the default


def _grid_settings() -> list[tuple[str, dict, float, float | None]]:
    """(stabiliser, params, factor, feature margin) of every task of the strength-grid store."""
    settings: list[tuple[str, dict, float, float | None]] = [("none", {}, 1.0, 0.4)]
    settings += [("surt", {**SURT_DEFAULT, "n_steps": n}, 1.0 + n / 100, None) for n in SURT_GRID]
    settings += [("mmr", {**MMR_DEFAULT, "strength": strength}, 1.0 + strength, 0.4 + strength / 10)
                 for strength in MMR_GRID]
    return settings


@pytest.fixture(scope="module")
def grid(tmp_path_factory) -> tuple[Path, Figure]:
    folder = tmp_path_factory.mktemp("strength-grid")
    connection = create_results(folder / "results.sqlite")
    writer = Writer(connection)
    for teacher in TEACHERS:
        for dataset in (0, 1):
            for stabiliser, params, factor, margin in _grid_settings():
                _stabilised_task(writer, teacher=teacher, dataset=dataset, stabiliser=stabiliser,
                                 params=params, factor=factor, feature_margin=margin)
    connection.commit()
    connection.close()
    drawn: list[Figure] = []
    draw_panels = figures.output.draw_panels
    patch = pytest.MonkeyPatch()
    patch.setattr(figures.output, "draw_panels",
                  lambda *args, **kwargs: drawn.append(draw_panels(*args, **kwargs)) or drawn[-1])
    out = tmp_path_factory.mktemp("f09-grid")
    reader = open_results(folder)
    try:
        render(reader, out)
    finally:
        reader.close()
        patch.undo()
    return out, drawn[0]


def test_seed_std_has_plain_and_each_stabiliser_at_its_default_only(grid):
    out, _ = grid
    bars = {row["series"] for row in rows(out, "seed_std")}
    defaults = [stabiliser_label("none", "{}"), stabiliser_label("surt", json.dumps(SURT_DEFAULT)),
                stabiliser_label("mmr", json.dumps(MMR_DEFAULT))]
    assert bars == {f"{family} · full, {label}" for family in (FAIR, NULL) for label in defaults}


def test_surt_and_mmr_panels_keep_every_strength_grid_point(grid):
    out, _ = grid
    surt = {row["series"] for row in rows(out, "surt")}
    assert surt == {f"{family} · full, " + stabiliser_label(name, json.dumps(params))
                    for family in (FAIR, NULL) for name, params, *_ in _grid_settings()
                    if name in ("none", "surt")}
    margin = {(row["series"], float(row["x"])) for row in rows(out, "mmr")}
    assert margin == {(f"{family}, feature margin", strength) for family in (FAIR, NULL)
                      for strength in (0.0, *MMR_GRID)}


def _overlap(a, b) -> bool:
    return a.x0 < b.x1 and b.x0 < a.x1 and a.y0 < b.y1 and b.y0 < a.y1


def test_no_legend_covers_its_axes_and_no_tick_labels_overprint(grid):
    _, figure = grid
    canvas = FigureCanvasAgg(figure)
    canvas.draw()
    renderer = canvas.get_renderer()
    axes = {ax.get_title()[:3]: ax for ax in figure.axes}
    assert set(axes) == {"(a)", "(c)", "(d)"}
    for name, ax in axes.items():
        if ax.get_legend() is not None:
            assert not _overlap(ax.get_legend().get_window_extent(renderer),
                                ax.get_window_extent(renderer)), name
    # (a): MMR strengths 0, 0.01, 0.1, 1; (d): one bar label per stabiliser and family.
    for ax, ticks in ((axes["(a)"], axes["(a)"].get_xticklabels()),
                      (axes["(d)"], axes["(d)"].get_yticklabels())):
        extents = [label.get_window_extent(renderer) for label in ticks if label.get_text()]
        assert len(extents) >= 4, ax.get_title()
        assert not any(_overlap(a, b) for k, a in enumerate(extents) for b in extents[k + 1:]), \
            ax.get_title()


def test_surt_panel_compares_on_matched_seeds(tmp_path):
    """One left-out model of SURT's seed 2 on the target-adapted dataset 0 diverges: the estimator
    rule drops that seed's E_i, and panel (c) drops plain training's seed 2 there too, so both
    points of dataset 0 are means over seeds 0 and 1; the other datasets keep every seed."""
    out = tmp_path / "f09"
    out.mkdir()
    drawn = _render_families(tmp_path, out, edit=(
        "UPDATE runs SET diverged = 1, parameter_stability = NULL "
        "WHERE dataset_id = 'deep-target_adapted-0' AND stabiliser = 'surt' AND seed = 2 AND left_out = 1"))
    surt = {(row["series"], float(row["x"])): row for row in rows(out, "surt")
            if row["role"] == "measured"}
    _, effect = TEACHERS["target_adapted"]
    for label, factor in (("none", 1.0), ("surt(steps=50)", effect)):
        row = surt[(f"{FAIR} · full, {label}", factor)]
        expected = np.mean([np.mean([stability(0, s, i, factor) for i in LEFT_OUT]) for s in (0, 1)])
        assert float(row["mean"]) == pytest.approx(expected, rel=1e-12), label
        assert int(row["n_units"]) == 2
        assert int(surt[(f"{FAIR} · full, {label}", 2 * factor)]["n_units"]) == len(SEEDS)
    assert any("panel (c): 2 unit(s) left out on matched seeds" in note for note in drawn.notes)


def test_many_families_wrap_the_surt_legend_instead_of_collapsing_the_layout(tmp_path, monkeypatch):
    """Five task families (the main job's deep families with the teacher-head ones) side by side
    make a legend twice as wide as panel (c)'s column, and the constrained layout then gives up
    (narrow axes, a matplotlib warning); the legend wraps its families into rows instead."""
    for name, label in (("teacher_head", "target-adapted, teacher head (GD, validation)"),
                        ("null_teacher_head", "random-direction (null control), teacher head"),
                        ("second", "target-adapted, fresh head, second family")):
        monkeypatch.setitem(TEACHERS, name, (label, 0.5))
    figures_drawn: list[Figure] = []
    draw_panels = figures.output.draw_panels
    monkeypatch.setattr(figures.output, "draw_panels", lambda *args, **kwargs:
                        figures_drawn.append(draw_panels(*args, **kwargs)) or figures_drawn[-1])
    out = tmp_path / "f09"
    out.mkdir()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _render_families(tmp_path, out)
    assert not [w for w in caught if "constrained_layout not applied" in str(w.message)]
    [figure] = figures_drawn
    renderer = FigureCanvasAgg(figure).get_renderer()
    figure.draw(renderer)
    [surt] = [ax for ax in figure.axes if ax.get_title().startswith("(c)")]
    legend = surt.get_legend()
    column = figure.get_figwidth() * figure.dpi / surt.get_subplotspec().get_gridspec().ncols
    assert legend.get_window_extent(renderer).width <= column
    headers = [text.get_text() for text in legend.get_texts() if text.get_fontweight() == "bold"]
    assert sum(1 for text in headers if text) == 5
    assert surt.get_window_extent(renderer).width > 0.5 * column
