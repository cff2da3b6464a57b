"""Train once, judge many times: the bounds step reads stored weights, trains nothing, and gives the
rows an in-process evaluation gives; it resumes, re-evaluates on request and records failures."""
from __future__ import annotations

import hashlib
import math
import sqlite3
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pytest
import torch
from threadpoolctl import threadpool_limits

from synth.grids import DatasetSpec
from theory.bounds import BOUNDS
from verify.bounds.step import run_bounds
from verify.bounds.stored import task_bound_rows
from verify.cli import main
from verify.configs import CONFIGS
from verify.run.output import TaskWeights
from verify.run.runner import run_task
from verify.run.task import Task, run_ids
from verify.store import RESULTS_FILE, open_results
from verify.store.weights import read_weights, weights_bytes, write_weights
from verify.sweep.plan import build_tasks
from verify.sweep.cli import _stabiliser_applies
from verify.sweep.runner import run_sweep
from verify.sweep.sources import CardSource, GridSource

SPECS = (DatasetSpec("make_quadratic_task", {"n_samples": 12, "n_features": 3, "distance": 1.0,
                                             "noise": 0.1, "n_test": 16, "random_state": 1}),
         DatasetSpec("make_separable", {"n_samples": 20, "n_features": 3, "margin": 0.2, "n_test": 16,
                                        "random_state": 2}))
CONFIG_NAMES = ("full_quadratic_gd", "head_gd_logistic", "head_sgd_logistic_random")


def small_configs():
    return [replace(CONFIGS[name], n_steps=40, n_checkpoints=4, max_left_out=3) for name in CONFIG_NAMES]


def sweep(out: Path) -> list[Task]:
    source = GridSource(SPECS)
    tasks = build_tasks(source.entries(), small_configs(), [("none", {}), ("l2sp", {"strength": 0.1})],
                        n_seeds=2, applies=_stabiliser_applies)
    summary = run_sweep(tasks, source, out, n_seeds=2, workers=1, progress=False)
    assert summary.failed == 0
    run_bounds(out, source=source, workers=1, progress=False)  # what `ftstab verify` does next
    return tasks


@dataclass(frozen=True)
class HalfTheoremF:
    """A bound a user registers after the sweep: half of Theorem F's value (wrong on purpose; its
    values only have to be evaluated, not to hold)."""

    name: str = "half_theorem_f"
    setting: str = "full"
    measure: str = "parameter_stability"
    constants: tuple[str, ...] = BOUNDS["theorem_f"].constants

    def estimate_constants(self, run):
        return BOUNDS["theorem_f"].estimate_constants(run)

    def value(self, **constants):
        return 0.5 * BOUNDS["theorem_f"].value(**constants)

    def assumptions(self, **constants):
        return BOUNDS["theorem_f"].assumptions(**constants)


@pytest.fixture(scope="module")
def swept(tmp_path_factory):
    out = tmp_path_factory.mktemp("swept")
    return out, sweep(out)


def snapshot(folder: Path) -> dict:
    """What training wrote: tasks (with times), runs and the weights files' bytes."""
    with sqlite3.connect(folder / RESULTS_FILE) as conn:
        tables = {name: conn.execute(f"SELECT * FROM {name} ORDER BY 1").fetchall() for name in ("tasks", "runs")}
    return {**tables, "weights": {p.name: p.read_bytes() for p in (folder / "weights").iterdir()}}


def in_process(task: Task, bounds) -> dict[int, dict]:
    """The bound rows of one task evaluated right after training, in this process (no file), with
    one compute thread as the sweep's workers (BLAS sums in another order differ in the last bits)."""
    dataset = next(spec for spec in SPECS if spec.id == task.dataset_id).generate()
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with threadpool_limits(1):
            output = run_task(task, dataset)
            ids = run_ids(task.key, output.runs)
            evaluated = task_bound_rows(output.weights, dataset, bounds,
                                        dict(zip(ids, output.runs, strict=True)))
    finally:
        torch.set_num_threads(previous)
    return {(row["run_id"], row["bound"]): row for rows in evaluated.values() for row in rows}


def _same(stored, fresh) -> bool:
    def number(value):
        return None if value is None or (isinstance(value, float) and math.isnan(value)) else value
    return (number(stored["measured"]) == number(fresh["measured"])
            and number(stored["value"]) == number(fresh["value"])
            and stored["violated"] == fresh["violated"]
            and stored["constants"] == {k: number(v) for k, v in fresh["constants"].items()})


def test_verify_stores_weights_for_every_task_and_evaluates_every_bound_from_them(swept):
    out, tasks = swept
    with open_results(out) as results:
        stored = results.tasks(status="done")
        assert len(stored) == len(tasks) and all(task["weights"] for task in stored)
        for task in stored:
            weights = results.weights(task["task_key"])
            record = TaskWeights.from_stored(weights.arrays, weights.info)
            assert record.task_key == task["task_key"] and record.weights.dtype == np.float64
            assert hashlib.sha256((out / "weights" / f"{task['weights']}.npz").read_bytes()).hexdigest() \
                == task["weights"]
        evaluated = results.evaluations()
        bounds = results.bounds()
    settings = {name: results_config["setting"] for name, results_config in
                {c.name: c.to_dict() for c in small_configs()}.items()}
    expected = {(task.key, bound.name) for task in tasks for bound in BOUNDS.values()
                if bound.setting == settings[task.config.name]}
    assert set(evaluated) == expected and set(evaluated.values()) == {"done"}
    assert {row["bound"] for row in bounds} == set(BOUNDS)
    # the same rows an in-process evaluation right after training gives, to the last bit
    for task in tasks[:4]:
        fresh = in_process(task, list(BOUNDS.values()))
        mine = {(row["run_id"], row["bound"]): row for row in bounds if row["task_key"] == task.key}
        assert set(mine) == set(fresh) and mine
        assert all(_same(mine[key], fresh[key]) for key in fresh)


def test_the_bounds_step_bounds_the_models_training_chose_and_only_those(swept):
    """Head configs leave out every sample of a small S but bound a stratified sub-sample
    (``bound_left_out``): the weights record carries that choice, so the bound rows from stored
    weights are exactly the left-out rows with a ``bound_weight``."""
    out, tasks = swept
    sub_sampled = False
    with open_results(out) as results:
        for task in tasks:
            rows = results.runs(task_key=task.key, left_out=True)
            chosen = {row["run_id"] for row in rows if row["bound_weight"] is not None}
            bounded = {row["run_id"] for row in results.bounds(task_key=task.key)}
            assert bounded == chosen, task.key
            record = results.weights(task.key)
            assert int(np.asarray(record.arrays["bounded"]).sum()) == len(chosen) // len(
                {row["iteration"] for row in rows})
            if task.config.bound_left_out is not None:
                n_samples = next(spec for spec in SPECS if spec.id == task.dataset_id).params["n_samples"]
                per_checkpoint = len(chosen) // len({row["iteration"] for row in rows}) // len(task.seeds)
                assert per_checkpoint == task.config.bound_left_out < n_samples
                sub_sampled = True
    assert sub_sampled, "some task bounds a sub-sample of its left-out models"


def test_a_bound_registered_after_the_sweep_is_evaluated_without_training(swept, monkeypatch, capsys):
    out, tasks = swept
    before = snapshot(out)
    monkeypatch.setitem(BOUNDS, "half_theorem_f", HalfTheoremF())
    assert main(["bounds", "--from", str(out), "--bound", "half_theorem_f", "--workers", "1"]) == 0
    assert "0 failed" in capsys.readouterr().out
    assert snapshot(out) == before, "no model was trained again, no weights file changed"
    with open_results(out) as results:
        rows = results.bounds(bound="half_theorem_f")
        theorem_f = {row["run_id"]: row for row in results.bounds(bound="theorem_f")}
    full_tasks = [task for task in tasks if task.config.setting == "full"]
    assert rows and {row["task_key"] for row in rows} == {task.key for task in full_tasks}
    for row in rows:
        assert row["value"] == 0.5 * theorem_f[row["run_id"]]["value"] or (
            math.isinf(row["value"]) and math.isinf(theorem_f[row["run_id"]]["value"]))
    fresh = in_process(full_tasks[0], [HalfTheoremF()])
    mine = {(row["run_id"], row["bound"]): row for row in rows if row["task_key"] == full_tasks[0].key}
    assert set(mine) == set(fresh) and all(_same(mine[key], fresh[key]) for key in fresh)
    # resumable: nothing is left to do; --force evaluates again to the same rows
    assert run_bounds(out, bounds=["half_theorem_f"], workers=1, progress=False).tasks == 0
    again = run_bounds(out, bounds=["half_theorem_f"], force=True, workers=1, progress=False)
    assert again.tasks == len(full_tasks) and again.failed == 0
    with open_results(out) as results:
        assert results.bounds(bound="half_theorem_f") == rows


def test_a_pool_of_workers_gives_the_same_bound_rows(swept, tmp_path, pool_always):
    out, _ = swept
    copy = tmp_path / "copy"
    copy.mkdir()
    (copy / RESULTS_FILE).write_bytes(_checkpointed(out))
    (copy / "weights").mkdir()
    for path in (out / "weights").iterdir():
        (copy / "weights" / path.name).write_bytes(path.read_bytes())
    summary = run_bounds(copy, bounds=["theorem_f", "theorem_h"], force=True, workers=2, progress=False,
                         source=CardSource({s.id: s.generate().card for s in SPECS}))
    assert summary.failed == 0 and summary.tasks > 1
    with open_results(out) as a, open_results(copy) as b:
        assert a.bounds(bound="theorem_f") == b.bounds(bound="theorem_f")
        assert a.bounds(bound="theorem_h") == b.bounds(bound="theorem_h")


def _checkpointed(folder: Path) -> bytes:
    with sqlite3.connect(folder / RESULTS_FILE) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return (folder / RESULTS_FILE).read_bytes()


def test_a_missing_or_edited_weights_file_fails_its_task_and_a_retry_recovers(swept, tmp_path, capsys):
    out, _ = swept
    copy = tmp_path / "copy"
    copy.mkdir()
    (copy / RESULTS_FILE).write_bytes(_checkpointed(out))
    (copy / "weights").mkdir()
    files = sorted((out / "weights").iterdir())
    for path in files[1:]:
        (copy / "weights" / path.name).write_bytes(path.read_bytes())
    edited = bytearray(files[1].read_bytes())
    edited[-10] ^= 1
    (copy / "weights" / files[1].name).write_bytes(bytes(edited))
    assert main(["bounds", "--from", str(copy), "--force", "--workers", "1"]) == 1
    captured = capsys.readouterr()
    assert "2 failed" in captured.out and "bound_evaluations" in captured.err
    with open_results(copy) as results:
        failed = results.query("SELECT task_key, error FROM bound_evaluations WHERE status = 'failed'")
        sha_of = {task["task_key"]: task["weights"] for task in results.tasks()}
    errors = {sha_of[row["task_key"]]: row["error"] for row in failed}
    assert "is missing" in errors[files[0].stem] and "does not match its sha256" in errors[files[1].stem]
    for path in files[:2]:
        (copy / "weights" / path.name).write_bytes(path.read_bytes())
    assert main(["bounds", "--from", str(copy), "--workers", "1"]) == 0
    with open_results(copy) as results:
        assert set(results.evaluations().values()) == {"done"}


def test_weights_files_are_deterministic_plain_npz_and_refuse_pickle(tmp_path):
    arrays = {"weights": np.arange(6.0).reshape(1, 2, 3), "iterations": np.array([5])}
    info = {"task_key": "t", "value": math.inf}
    assert weights_bytes(arrays, info) == weights_bytes(dict(reversed(arrays.items())), info)
    sha = write_weights(tmp_path, arrays, info)
    assert write_weights(tmp_path, arrays, info) == sha and len(list(tmp_path.iterdir())) == 1
    with np.load(tmp_path / f"{sha}.npz", allow_pickle=False) as plain:
        assert set(plain.files) == {"weights", "iterations", "info"}
    stored = read_weights(tmp_path, sha)
    assert stored.info == info and np.array_equal(stored.arrays["weights"], arrays["weights"])
    with pytest.raises(ValueError, match="object array"):
        weights_bytes({"bad": np.array([{"a": 1}], dtype=object)}, {})


def test_bounds_cli_refuses_unknown_bounds_and_missing_results_in_one_line(swept, tmp_path, capsys):
    out, _ = swept
    assert main(["bounds", "--from", str(out), "--bound", "no_such_bound"]) == 2
    error = capsys.readouterr().err.strip()
    assert "unknown bound 'no_such_bound'" in error and "\n" not in error
    assert main(["bounds", "--from", str(tmp_path / "nowhere")]) == 2
    assert "no results file" in capsys.readouterr().err
    assert not (tmp_path / "nowhere").exists()


@pytest.mark.slow
def test_mlp_bounds_from_stored_weights_are_bitwise_repeatable(tmp_path):
    """Lanczos on the MLP's Hessian starts from a fixed vector: two evaluations of the stored
    weights (each as the bounds step runs them, one thread) give identical constants, bit for bit,
    and equal the in-process evaluation right after training."""
    import torch

    from synth.pretrained import make_pretrained_mlp_task
    dataset = make_pretrained_mlp_task(16, 4, distance=0.5, hidden=(4, 4), n_source=64, pretrain_steps=20,
                                       n_test=32, random_state=0)
    config = replace(CONFIGS["full_mlp_gd"], n_steps=10, n_checkpoints=3, max_left_out=2, bound_models=2)
    task = Task(dataset.id, config, "l2sp", '{"include_head":false,"strength":0.1}')
    output = run_task(task, dataset)
    ids = run_ids(task.key, output.runs)
    measured = dict(zip(ids, output.runs, strict=True))
    sha = write_weights(tmp_path, output.weights.arrays(), output.weights.info())
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        evaluations = []
        for _ in range(2):
            stored = read_weights(tmp_path, sha)
            record = TaskWeights.from_stored(stored.arrays, stored.info)
            evaluations.append(task_bound_rows(record, dataset, list(BOUNDS.values()), measured))
        fresh = task_bound_rows(output.weights, dataset, list(BOUNDS.values()), measured)
    finally:
        torch.set_num_threads(previous)
    rows = [row for rows in evaluations[0].values() for row in rows]
    assert rows and any(row["constants"] for row in rows)
    assert repr(evaluations[0]) == repr(evaluations[1]) == repr(fresh)


@pytest.mark.slow
def test_bounds_from_stored_weights_with_a_validation_split_equal_the_in_process_ones(tmp_path,
                                                                                        capsys):
    """A config with ``validation_fraction`` trains on S minus the split; ``ftstab bounds --from
    DIR`` regenerates the dataset from its card and must bound the models on that training set:
    its rows equal, bit for bit, the bounds evaluated in this process on what training used (the
    trained-on samples, the trainer's objective and penalties), and their n is the trained-on size."""
    from synth.pretrained import make_pretrained_mlp_task
    from verify.bounds.evaluate import bound_rows
    from verify.run.layout import choose_left_out, model_layout
    from verify.run.runner import bound_context
    from verify.run.task import make_stabiliser
    from verify.run.train import TRAINERS
    from verify.run.validation import validation_split

    spec = DatasetSpec("make_pretrained_mlp_task", {
        "n_samples": 16, "n_features": 4, "distance": 0.5, "hidden": [4, 4], "n_source": 64,
        "pretrain_steps": 20, "n_test": 16, "random_state": 0})
    config = replace(CONFIGS["full_mlp_gd"], name="full_mlp_gd_val", n_steps=10, n_checkpoints=3,
                     max_left_out=2, bound_models=2, validation_fraction=0.25)
    source = GridSource((spec,))
    tasks = build_tasks(source.entries(), [config], [("none", {}), ("l2sp", {"strength": 0.1})],
                        n_seeds=1, applies=_stabiliser_applies)
    assert len(tasks) == 2
    out = tmp_path / "out"
    assert run_sweep(tasks, source, out, n_seeds=1, workers=1, progress=False).failed == 0
    assert main(["bounds", "--from", str(out), "--workers", "1"]) == 0
    capsys.readouterr()
    with open_results(out) as results:
        stored = results.bounds()
    dataset = make_pretrained_mlp_task(**{**spec.params, "hidden": tuple(spec.params["hidden"])})
    assert dataset.id == spec.id
    split = validation_split(dataset.y, 0.25, dataset.id)
    fit = replace(dataset, X=dataset.X[split.fit], y=dataset.y[split.fit])
    assert len(split.held_out) == 4
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with threadpool_limits(1):
            for task in tasks:
                output = run_task(task, dataset)
                plan = choose_left_out(dataset.id, len(fit.X), np.empty(0, dtype=np.int64),
                                       budget=config.max_left_out)
                layout = model_layout(task, plan.samples)
                trained = TRAINERS["mlp"](config, fit, make_stabiliser(task), layout,
                                          layout.masks(len(fit.X)))
                evaluated = bound_rows(output.runs, weights=trained.weights, w_init=trained.w_init,
                                       layout=layout, context=bound_context(trained, fit, config),
                                       setting="full", bounds=list(BOUNDS.values()),
                                       max_models=config.bound_models,
                                       last_only=config.bound_last_only)
                ids = run_ids(task.key, output.runs)
                fresh = {(ids[row["row"]], row["bound"]): row for row in evaluated}
                mine = {(row["run_id"], row["bound"]): row for row in stored
                        if row["task_key"] == task.key}
                assert set(mine) == set(fresh) and mine, task.key
                assert all(_same(mine[key], fresh[key]) for key in fresh), task.key
                assert {row["constants"]["n"] for row in mine.values()
                        if "n" in row["constants"]} == {float(len(split.fit))}
    finally:
        torch.set_num_threads(previous)
