"""A small results database written from a known model, so every plotted number is predictable.

The tables are the store's schema (``verify.store.schema``, one place); the rows are written here
with plain SQL so that every value is known. :class:`KnownModel` gives every measured value and
bound as a closed form of the run's coordinates; tests recompute the figures' numbers from it with
numpy.
"""
from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from verify.store.schema import SCHEMA_VERSION, ddl


def create_results(path: Path) -> sqlite3.Connection:
    """An empty results file of the current schema (``verify.store.schema``), open for writing."""
    connection = sqlite3.connect(path)
    connection.executescript(ddl())
    connection.execute("INSERT INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
    return connection


class KnownModel:
    """Closed forms for every number in the fixture database.

    Head tuning (kind separable, R = 1): margins γ ∈ MARGINS, n ∈ HEAD_N, three checkpoints, at
    ``lr_scale`` 1 (config ``head_gd``) plus ``lr_scale`` 0.25 and 4 on (γ = 0.2, n = 40)
    (``head_lr*``), plus stabilisers MMR and MHLoss (4 heads) on that dataset. Full fine-tuning
    (kind quadratic): n ∈ FULL_N, δ ∈ DISTANCES at ``lr_scale`` 0.5, plus ``lr_scale`` 0.25, 1 and
    3 (diverges) and stabilisers L2-SP and SURT on (n = 40, δ = 1). Pre-trained MLPs (kind mlp):
    MLP_DATASETS, plain and MMR at MMR_STRENGTHS, with the encoder's feature margin at the final
    checkpoint (NULL, "not separable", for the plain runs of seed 2). The asymptotic predictor's
    columns are on the plain ``head_gd`` full-set rows of the margins in PREDICTOR_MARGINS only.
    """

    SEEDS = (0, 1, 2)
    LEFT_OUT = (0, 1, 2, 3)
    HEAD_ITERATIONS = (10, 100, 1000)
    FULL_ITERATIONS = (10, 100)
    MARGINS = (0.1, 0.2, 0.4)
    HEAD_N = (20, 40)
    FULL_N = (20, 40, 80)
    DISTANCES = (0.5, 1.0)
    DIVERGENT_LR_SCALE = 3.0
    MLP_DATASETS = (0, 1)
    MLP_ITERATIONS = (10, 100)
    MMR_STRENGTHS = (0.5, 2.0)
    PREDICTOR_MARGINS = (0.1, 0.2)

    @staticmethod
    def predicted_direction_error(gamma, seed, t):
        return 0.1 / (gamma * np.log(t + 1)) * (1 + 0.1 * seed) * (1 + 2.0 / t)

    @staticmethod
    def predictor_relative_error(gamma, seed, t):
        return 0.5 / np.log(t + 1) * (1 + gamma) * (1 + 0.1 * seed)

    @staticmethod
    def feature_margin(dataset, seed, strength):
        if strength == 0.0 and seed == 2:
            return None
        return 0.05 * (1 + dataset) * (1 + strength) * (1 + 0.1 * seed)

    @staticmethod
    def mlp_accuracy(seed):
        return 0.8 - 0.01 * seed

    @staticmethod
    def mlp_stability(dataset, seed, i, strength):
        return 0.01 * (1 + dataset) * (1 + 0.1 * seed) * (1 + 0.05 * i) / (1 + strength)

    @staticmethod
    def head_stability(n, gamma, seed, i, t, *, lr_scale=1.0, n_heads=1, mmr=0.0):
        return (lr_scale ** 0.25 / (n * gamma * np.log(t + 1)) * (1 + 0.1 * seed) * (1 + 0.05 * i)
                / (1 + mmr) / np.sqrt(n_heads))

    @classmethod
    def head_bound(cls, n, gamma, *args, **kwargs):
        return 4.0 * cls.head_stability(n, gamma, *args, **kwargs) + 0.1 + 0.3 * gamma

    @staticmethod
    def direction_error(gamma, seed, t):
        return 0.1 / (gamma * np.log(t + 1)) * (1 + 0.1 * seed)

    @staticmethod
    def normalised_margin(gamma, mmr):
        return gamma * (1 + mmr)

    @staticmethod
    def head_accuracy(seed, *, stabiliser="none"):
        return 0.9 - (0.02 if stabiliser == "none" else 0.01) * seed

    @staticmethod
    def full_stability(n, delta, seed, i, t, *, lr_scale=0.5, l2sp=0.0, surt=False):
        d = delta * (0.5 if surt else 1.0)
        return d / (n * (1 + l2sp)) * (1 + 0.1 * seed) * (1 + 0.05 * i) * (1 + lr_scale * t / 100)

    @classmethod
    def full_bound(cls, *args, **kwargs):
        return 3.0 * cls.full_stability(*args, **kwargs)

    @staticmethod
    def full_constants(delta, i, *, l2sp=0.0, surt=False):
        return {"mu": 0.5 + l2sp, "beta": 2.0, "rho": 0.1 * delta * (1 + i),
                "D": delta * (0.5 if surt else 1.0)}


class Writer:
    """Insert datasets, tasks, runs and bounds with the contract's columns."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        self.connection = connection

    def dataset(self, dataset_id, kind, card):
        self.connection.execute("INSERT OR IGNORE INTO datasets VALUES (?, ?, ?)",
                                (dataset_id, kind, json.dumps(card)))

    def task(self, task_key, dataset_id, config, stabiliser, params, seeds, status="done"):
        self.connection.execute(
            "INSERT INTO tasks VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL)",
            (task_key, dataset_id, config, stabiliser, json.dumps(params), json.dumps(list(seeds)),
             status, None if status == "done" else "Traceback: boom", 1.0, "2026-01-01T00:00:00"))

    def run(self, **row) -> int:
        if row.get("left_out") is not None:  # every sample of KnownModel.LEFT_OUT weighs the same
            row.setdefault("left_out_weight", 1.0 / len(KnownModel.LEFT_OUT))
        names = ", ".join(row)
        marks = ", ".join("?" for _ in row)
        cursor = self.connection.execute(f"INSERT INTO runs ({names}) VALUES ({marks})",
                                         list(row.values()))
        return cursor.lastrowid

    def bound(self, run_id, bound, measure, measured, value, violated=(), constants=None):
        self.connection.execute("INSERT INTO bounds VALUES (?, ?, ?, ?, ?, ?, ?)",
                                (run_id, bound, measure, measured, value, json.dumps(list(violated)),
                                 json.dumps(constants or {})))


def _head_task(writer, model, *, gamma, n, config, lr_scale=1.0, stabiliser="none", params=None,
               n_heads=1):
    params = params or {}
    mmr = params.get("strength", 0.0) if stabiliser == "mmr" else 0.0
    dataset_id = f"sep-g{gamma}-n{n}"
    writer.dataset(dataset_id, "separable", {"id": dataset_id, "kind": "separable", "margin": gamma,
                                             "radius": 1.0})
    task_key = f"{dataset_id}/{config}/{stabiliser}/{json.dumps(params)}"
    writer.task(task_key, dataset_id, config, stabiliser, params, model.SEEDS)
    common = dict(task_key=task_key, dataset_id=dataset_id, kind="separable", n_samples=n,
                  n_features=5, n_classes=2, margin=gamma, radius=1.0, label_noise=0.0,
                  n_support=3, setting="head", config=config, loss="logistic", init="zero",
                  lr=lr_scale, lr_scale=lr_scale, n_steps=1000, batch_size=None, n_heads=n_heads,
                  stabiliser=stabiliser, stabiliser_params=json.dumps(params), diverged=0)
    predictor = (config == "head_gd" and stabiliser == "none"
                 and gamma in model.PREDICTOR_MARGINS)
    for seed in model.SEEDS:
        for t in model.HEAD_ITERATIONS:
            writer.run(**common, seed=seed, left_out=None, iteration=t,
                       test_accuracy=model.head_accuracy(seed, stabiliser=stabiliser),
                       majority_accuracy=0.5, direction_error=model.direction_error(gamma, seed, t),
                       normalised_margin=model.normalised_margin(gamma, mmr),
                       predicted_direction_error=(model.predicted_direction_error(gamma, seed, t)
                                                  if predictor else None),
                       predictor_relative_error=(model.predictor_relative_error(gamma, seed, t)
                                                 if predictor else None))
            for i in model.LEFT_OUT:
                kwargs = dict(lr_scale=lr_scale, n_heads=n_heads, mmr=mmr)
                measured = model.head_stability(n, gamma, seed, i, t, **kwargs)
                run_id = writer.run(**common, seed=seed, left_out=i, iteration=t,
                                    head_direction_stability=measured,
                                    test_accuracy=model.head_accuracy(seed, stabiliser=stabiliser),
                                    majority_accuracy=0.5)
                writer.bound(run_id, "theorem_h", "head_direction_stability", measured,
                             model.head_bound(n, gamma, seed, i, t, **kwargs))


def _full_task(writer, model, *, n, delta, config, lr_scale=0.5, stabiliser="none", params=None):
    params = params or {}
    l2sp = params.get("strength", 0.0) if stabiliser == "l2sp" else 0.0
    surt = stabiliser == "surt"
    diverges = lr_scale >= model.DIVERGENT_LR_SCALE
    dataset_id = f"quad-n{n}-d{delta}"
    writer.dataset(dataset_id, "quadratic", {"id": dataset_id, "kind": "quadratic", "beta": 2.0,
                                             "distance": delta})
    task_key = f"{dataset_id}/{config}/{stabiliser}/{json.dumps(params)}"
    writer.task(task_key, dataset_id, config, stabiliser, params, model.SEEDS)
    common = dict(task_key=task_key, dataset_id=dataset_id, kind="quadratic", n_samples=n,
                  n_features=4, n_classes=0, distance=delta, setting="full", config=config,
                  loss="squared", init="pretrained", lr=lr_scale / 2.0, lr_scale=lr_scale,
                  n_steps=100, batch_size=None, n_heads=1, stabiliser=stabiliser,
                  stabiliser_params=json.dumps(params), diverged=int(diverges),
                  diverged_at=3 if diverges else None)
    for seed in model.SEEDS:
        for t in model.FULL_ITERATIONS:
            writer.run(**common, seed=seed, left_out=None, iteration=t, train_loss=0.1)
            for i in model.LEFT_OUT:
                kwargs = dict(lr_scale=lr_scale, l2sp=l2sp, surt=surt)
                measured = None if diverges else model.full_stability(n, delta, seed, i, t, **kwargs)
                run_id = writer.run(**common, seed=seed, left_out=i, iteration=t,
                                    parameter_stability=measured)
                violated = ["eta_le_inv_beta"] if lr_scale > 1.0 else []
                writer.bound(run_id, "theorem_f", "parameter_stability", measured,
                             None if diverges else model.full_bound(n, delta, seed, i, t, **kwargs),
                             violated, model.full_constants(delta, i, l2sp=l2sp, surt=surt))


def _mlp_task(writer, model, *, dataset, stabiliser="none", params=None):
    params = params or {}
    strength = params.get("strength", 0.0)
    dataset_id = f"mlp-{dataset}"
    writer.dataset(dataset_id, "mlp", {"id": dataset_id, "kind": "mlp", "distance": 1.0})
    task_key = f"{dataset_id}/mlp_sgd/{stabiliser}/{json.dumps(params)}"
    writer.task(task_key, dataset_id, "mlp_sgd", stabiliser, params, model.SEEDS)
    common = dict(task_key=task_key, dataset_id=dataset_id, kind="mlp", n_samples=40,
                  n_features=6, n_classes=2, distance=1.0, setting="full", config="mlp_sgd",
                  loss="logistic", init="pretrained", lr=0.1, lr_scale=None, n_steps=100,
                  batch_size=16, n_heads=1, stabiliser=stabiliser,
                  stabiliser_params=json.dumps(params), diverged=0)
    final = max(model.MLP_ITERATIONS)
    for seed in model.SEEDS:
        for t in model.MLP_ITERATIONS:
            writer.run(**common, seed=seed, left_out=None, iteration=t,
                       test_accuracy=model.mlp_accuracy(seed), majority_accuracy=0.5,
                       feature_margin=(model.feature_margin(dataset, seed, strength)
                                       if t == final else None))
            for i in model.LEFT_OUT:
                writer.run(**common, seed=seed, left_out=i, iteration=t,
                           parameter_stability=model.mlp_stability(dataset, seed, i, strength))


def write_known_results(path: Path, model: type[KnownModel] = KnownModel) -> Path:
    """Write the fixture database to ``path`` (a ``results.sqlite`` file) and return it."""
    connection = create_results(path)
    writer = Writer(connection)
    for gamma in model.MARGINS:
        for n in model.HEAD_N:
            _head_task(writer, model, gamma=gamma, n=n, config="head_gd")
    for lr_scale in (0.25, 4.0):
        _head_task(writer, model, gamma=0.2, n=40, config=f"head_lr{lr_scale}", lr_scale=lr_scale)
    _head_task(writer, model, gamma=0.2, n=40, config="head_gd", stabiliser="mmr",
               params={"strength": 0.5})
    _head_task(writer, model, gamma=0.2, n=40, config="head_gd", stabiliser="mhloss",
               params={"n_heads": 4}, n_heads=4)
    for n in model.FULL_N:
        for delta in model.DISTANCES:
            _full_task(writer, model, n=n, delta=delta, config="full_gd")
    for lr_scale in (0.25, 1.0, model.DIVERGENT_LR_SCALE):
        _full_task(writer, model, n=40, delta=1.0, config=f"full_lr{lr_scale}", lr_scale=lr_scale)
    for strength in (0.1, 1.0):
        _full_task(writer, model, n=40, delta=1.0, config="full_gd", stabiliser="l2sp",
                   params={"strength": strength})
    _full_task(writer, model, n=40, delta=1.0, config="full_gd", stabiliser="surt",
               params={"steps": 50})
    for dataset in model.MLP_DATASETS:
        _mlp_task(writer, model, dataset=dataset)
        for strength in model.MMR_STRENGTHS:
            _mlp_task(writer, model, dataset=dataset, stabiliser="mmr",
                      params={"strength": strength})
    writer.task("failed-task", "quad-n20-d0.5", "full_gd", "mixout", {"p": 0.1}, model.SEEDS,
                status="failed")
    connection.commit()
    connection.close()
    return path


@dataclass(frozen=True)
class KnownResults:
    folder: Path
    model: type[KnownModel]


@pytest.fixture(scope="session")
def known_results(tmp_path_factory) -> KnownResults:
    """A results folder (``results.sqlite``) written from :class:`KnownModel`."""
    folder = tmp_path_factory.mktemp("known-results")
    write_known_results(folder / "results.sqlite")
    return KnownResults(folder=folder, model=KnownModel)


@pytest.fixture
def empty_results(tmp_path) -> Path:
    """A results folder with the schema and no rows."""
    connection = create_results(tmp_path / "results.sqlite")
    connection.commit()
    connection.close()
    return tmp_path
