"""F9 shows each task family apart, keyed as the paired stabiliser verdicts key them: the deep tasks'
target-adapted teacher and the random-direction null control are never pooled.

A small store of deep tasks (two datasets per teacher, plain and SURT) in which SURT halves the
leave-one-out instability and D on the target-adapted teacher and doubles both on the null control;
pooled, the two would cancel to a ratio 5/4 with neither effect visible. As on the real deep tasks,
no Theorem F bound is stored: panel (c) plots the measured D, the move of each model trained on S.
"""
from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from figures.f09_stabilisers import render
from figures.data import open_results
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
    label, effect = TEACHERS[teacher]
    factor = effect if surt else 1.0
    dataset_id = f"deep-{teacher}-{dataset}"
    writer.dataset(dataset_id, "deep_mlp", {"id": dataset_id, "kind": "deep_mlp", "teacher": label,
                                            "params": {"teacher": teacher}})
    stabiliser, params = ("surt", SURT) if surt else ("none", {})
    task_key = f"{dataset_id}/deep_sgd/{stabiliser}/{json.dumps(params)}"
    writer.task(task_key, dataset_id, "deep_sgd", stabiliser, params, SEEDS)
    common = dict(task_key=task_key, dataset_id=dataset_id, kind="deep_mlp", n_samples=40,
                  n_features=6, n_classes=2, distance=1.0, setting="full", config="deep_sgd",
                  loss="logistic", init="pretrained", lr=0.1, lr_scale=None, n_steps=100,
                  batch_size=16, n_heads=1, stabiliser=stabiliser,
                  stabiliser_params=json.dumps(params), diverged=0, iteration=100)
    for seed in SEEDS:
        writer.run(**common, seed=seed, left_out=None, test_accuracy=accuracy(seed, factor),
                   majority_accuracy=0.5, distance_from_start=factor * (1 + dataset))
        for i in LEFT_OUT:
            measured = stability(dataset, seed, i, factor)
            writer.run(**common, seed=seed, left_out=i, left_out_weight=1 / len(LEFT_OUT),
                       parameter_stability=measured)


@pytest.fixture(scope="module")
def drawn(tmp_path_factory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("deep-families")
    connection = create_results(folder / "results.sqlite")
    writer = Writer(connection)
    for teacher in TEACHERS:
        for dataset in (0, 1):
            for surt in (False, True):
                _deep_task(writer, teacher=teacher, dataset=dataset, surt=surt)
    connection.commit()
    connection.close()
    out = tmp_path_factory.mktemp("f09")
    reader = open_results(folder)
    try:
        render(reader, out)
    finally:
        reader.close()
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
