"""T1's leave-one-out stability follows the verdicts' estimator rule: a seed whose left-out models
partly diverged has no E_i (not the mean of the models that stayed stable), and the cell counts it."""
from __future__ import annotations

import json

import numpy as np
import pytest

from figures import t1_stabilisers as t1
from figures.data import open_results
from tests.figures.conftest import Writer, create_results

SEEDS = (0, 1, 2, 3)
LEFT_OUT = (0, 1)


def stability(seed: int, i: int) -> float:
    return 0.1 * (1 + seed) + 0.01 * i


def write(path, *, diverged_seed: int) -> None:
    """Plain and MMR head runs on one dataset and config; MMR's second left-out model of
    ``diverged_seed`` diverged."""
    connection = create_results(path)
    writer = Writer(connection)
    dataset_id = "sep"
    writer.dataset(dataset_id, "separable", {"id": dataset_id, "kind": "separable", "margin": 0.2,
                                             "radius": 1.0})
    for stabiliser, params in (("none", {}), ("mmr", {"strength": 0.5})):
        task_key = f"{dataset_id}/head_gd/{stabiliser}/{json.dumps(params)}"
        writer.task(task_key, dataset_id, "head_gd", stabiliser, params, SEEDS)
        common = dict(task_key=task_key, dataset_id=dataset_id, kind="separable", n_samples=20,
                      n_features=5, n_classes=2, margin=0.2, radius=1.0, setting="head",
                      config="head_gd", loss="logistic", init="zero", lr=1.0, n_steps=100,
                      n_heads=1, stabiliser=stabiliser, stabiliser_params=json.dumps(params),
                      iteration=100, majority_accuracy=0.5)
        for seed in SEEDS:
            writer.run(**common, seed=seed, left_out=None, diverged=0,
                       test_accuracy=0.8 + 0.01 * seed)
            for i in LEFT_OUT:
                lost = stabiliser == "mmr" and seed == diverged_seed and i == 1
                writer.run(**common, seed=seed, left_out=i, diverged=int(lost),
                           left_out_weight=1 / len(LEFT_OUT),
                           head_direction_stability=None if lost else stability(seed, i))
    connection.commit()
    connection.close()


def test_a_seed_whose_left_out_models_partly_diverged_is_dropped_and_counted(tmp_path):
    write(tmp_path / "results.sqlite", diverged_seed=3)
    connection = open_results(tmp_path)
    try:
        rows = {row["stabiliser"]: row for row in t1.table_rows(connection)}
    finally:
        connection.close()
    kept = np.array([np.mean([stability(seed, i) for i in LEFT_OUT]) for seed in SEEDS[:3]])
    mmr = rows["mmr(strength=0.5)"]
    # not 0.254: seed 3's surviving model alone (0.4) averaged in with the others
    assert mmr["stability"] == pytest.approx(kept.mean())
    assert mmr["stability_std"] == pytest.approx(kept.std(ddof=1))
    assert (mmr["stability_seeds"], mmr["stability_dropped"]) == (3, 1)
    plain = rows["none"]
    assert (plain["stability_seeds"], plain["stability_dropped"]) == (4, 0)
    table = t1.markdown(list(rows.values()))
    stability_table = table.split("## Leave-one-out stability")[1]
    assert f"{kept.mean():.3g} ± {kept.std(ddof=1):.3g} (1/4 seeds dropped)" in stability_table
    assert "| none | 0.255 ± 0.129 |" in stability_table  # nothing dropped, no note
