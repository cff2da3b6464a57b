"""The results store: the documented schema, round trips, atomic task writes, failure records."""
from __future__ import annotations

import math
import sqlite3

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from verify.store import BOUND_COLUMNS, RUN_COLUMNS, SCHEMA_VERSION, ResultStore

# docs/internals.md §3, "Results schema": the columns figures and verdicts rely on.
CONTRACT_RUN_COLUMNS = {
    "run_id", "task_key", "dataset_id", "seed", "left_out", "iteration",
    "kind", "n_samples", "n_features", "n_classes", "margin", "radius", "label_noise", "distance", "n_support",
    "setting", "config", "loss", "init", "lr", "lr_scale", "n_steps", "batch_size", "n_heads", "stabiliser",
    "stabiliser_params",
    "parameter_stability", "head_direction_stability", "pointwise_hypothesis_stability",
    "train_loss", "test_loss", "test_accuracy", "majority_accuracy", "direction_error", "normalised_margin",
    "distance_from_init", "diverged", "diverged_at", "left_out_support", "left_out_weight",
    "feature_margin", "predicted_direction_error", "predictor_relative_error"}
CONTRACT_TABLES = {
    "datasets": {"dataset_id", "kind", "card"},
    "tasks": {"task_key", "dataset_id", "config", "stabiliser", "stabiliser_params", "seeds", "status",
              "error", "seconds", "finished_at"},
    "bounds": {"run_id", "bound", "measure", "measured", "value", "violated", "constants"},
}

TASK = {"task_key": "ds|cfg|none|{}", "dataset_id": "ds", "config": "cfg", "stabiliser": "none",
        "stabiliser_params": "{}", "seeds": [0]}
CARD = {"id": "ds", "kind": "separable", "margin": 0.1}


def columns(path, table):
    with sqlite3.connect(path) as conn:
        return {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}


def test_schema_has_every_contract_column(tmp_path):
    path = tmp_path / "results.sqlite"
    ResultStore(path).close()
    assert CONTRACT_RUN_COLUMNS <= columns(path, "runs")
    for table, expected in CONTRACT_TABLES.items():
        assert expected <= columns(path, table), table
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def run_row(run_id, left_out, **values):
    return {"run_id": run_id, "task_key": TASK["task_key"], "dataset_id": "ds", "seed": 0,
            "left_out": left_out, "iteration": 10, "setting": "head", "config": "cfg", **values}


finite = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False)


@settings(max_examples=20)
@given(stability=finite, accuracy=st.floats(0, 1), value=st.one_of(finite, st.just(math.inf)),
       violated=st.lists(st.sampled_from(["convex", "full_batch", "separable"]), unique=True))
def test_round_trip_keeps_values_and_json_fields(tmp_path_factory, stability, accuracy, value, violated):
    path = tmp_path_factory.mktemp("store") / "results.sqlite"
    runs = [run_row(1, None, test_accuracy=accuracy),
            run_row(2, 5, test_accuracy=accuracy, parameter_stability=stability)]
    bounds = [{"run_id": 2, "bound": "theorem_h", "measure": "parameter_stability",
               "measured": stability, "value": value, "violated": violated, "constants": {"gamma": 0.5}}]
    with ResultStore(path) as store:
        store.write_done(TASK, runs, bounds, seconds=1.5, card=CARD)
    with ResultStore(path, readonly=True) as store:
        full, loo = store.runs()
        assert full["left_out"] is None and full["parameter_stability"] is None
        assert full["test_accuracy"] == accuracy and loo["parameter_stability"] == stability
        assert store.runs(left_out=True) == [loo]
        (bound,) = store.bounds(bound="theorem_h")
        assert (bound["value"], bound["violated"], bound["constants"]) == (value, violated, {"gamma": 0.5})
        assert bound["left_out"] == 5
        assert store.cards() == {"ds": CARD}
        assert store.task_status() == {TASK["task_key"]: "done"}


def test_nan_is_stored_as_null(tmp_path):
    with ResultStore(tmp_path / "r.sqlite") as store:
        store.write_done(TASK, [run_row(1, 3, parameter_stability=float("nan"), diverged=1)], [], seconds=0)
        (row,) = store.runs()
    assert row["parameter_stability"] is None and row["diverged"] == 1


def test_a_bad_task_write_leaves_nothing_behind(tmp_path):
    with ResultStore(tmp_path / "r.sqlite") as store:
        duplicate = [run_row(1, None), run_row(1, 3)]
        with pytest.raises(sqlite3.IntegrityError):
            store.write_done(TASK, duplicate, [], seconds=0)
        assert store.runs() == [] and store.task_status() == {}


def test_failed_task_has_traceback_and_no_rows_then_retry_replaces_it(tmp_path):
    with ResultStore(tmp_path / "r.sqlite") as store:
        store.write_failed(TASK, error="Traceback ...\nRuntimeError: boom", seconds=0.1)
        assert store.task_status() == {TASK["task_key"]: "failed"}
        assert "RuntimeError: boom" in store.tasks(status="failed")[0]["error"]
        assert store.runs() == []
        store.write_done(TASK, [run_row(1, None)], [], seconds=0.2)
        (task,) = store.tasks()
        assert task["status"] == "done" and task["error"] is None
        assert len(store.runs()) == 1


def test_rewriting_a_done_task_does_not_duplicate(tmp_path):
    with ResultStore(tmp_path / "r.sqlite") as store:
        for _ in range(2):
            store.write_done(TASK, [run_row(1, None), run_row(2, 4)],
                             [{"run_id": 2, "bound": "b", "measure": "m", "measured": 1.0, "value": 2.0,
                               "violated": [], "constants": {}}], seconds=0)
        assert len(store.runs()) == 2 and len(store.bounds()) == 1


def test_bound_must_name_a_run_of_its_task(tmp_path):
    with ResultStore(tmp_path / "r.sqlite") as store, pytest.raises(ValueError, match="run_id 7"):
        store.write_done(TASK, [run_row(1, None)], [{"run_id": 7, "bound": "b"}], seconds=0)


def test_other_schema_version_is_refused(tmp_path):
    path = tmp_path / "r.sqlite"
    ResultStore(path).close()
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE meta SET value = '0' WHERE key = 'schema_version'")
    with pytest.raises(ValueError, match=f"schema version 0.*version {SCHEMA_VERSION}"):
        ResultStore(path)


def _version_1_results(path):
    """A results file as schema version 1 wrote it: no full-set measures in ``runs``."""
    from verify.store import _SCHEMA, FULL_SET_MEASURES
    old_schema = _SCHEMA
    for name in FULL_SET_MEASURES:
        old_schema = old_schema.replace(f", {name} REAL", "")
    with sqlite3.connect(path) as conn:
        conn.executescript(old_schema)
        conn.execute("INSERT INTO meta VALUES ('schema_version', '1')")
    return path.read_bytes()


@pytest.mark.parametrize("readonly", [False, True])
def test_version_1_results_are_refused_in_one_line_and_left_unchanged(tmp_path, readonly):
    path = tmp_path / "results.sqlite"
    before = _version_1_results(path)
    assert "feature_margin" not in columns(path, "runs")
    with pytest.raises(ValueError) as refused:
        ResultStore(path, readonly=readonly)
    message = str(refused.value)
    assert "schema version 1" in message and f"version {SCHEMA_VERSION}" in message and "\n" not in message
    assert path.read_bytes() == before


def test_verify_cli_refuses_an_old_results_file_with_one_line(tmp_path, capsys):
    from verify.cli import main
    out = tmp_path / "results"
    out.mkdir()
    before = _version_1_results(out / "results.sqlite")
    assert main(["verify", "--grid", "smoke", "--out", str(out), "--configs", "full_quadratic_gd"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("ftstab verify: error:") and "schema version 1" in err and "\n" not in err
    assert (out / "results.sqlite").read_bytes() == before


def test_a_file_that_is_not_sqlite_is_refused(tmp_path):
    path = tmp_path / "results.sqlite"
    path.write_text("not a database")
    with pytest.raises(ValueError, match="not an ftstab results file"):
        ResultStore(path)
    assert path.read_text() == "not a database"


def test_readonly_store_on_missing_file_creates_nothing(tmp_path):
    with pytest.raises(ValueError, match="no results file"):
        ResultStore(tmp_path / "missing.sqlite", readonly=True)
    assert list(tmp_path.iterdir()) == []


def test_json_filters_match_the_canonical_text(tmp_path):
    from verify.run.task import canonical_params
    params = {"strength": 0.1, "include_head": False}
    task = {**TASK, "task_key": "ds|cfg|l2sp|x", "stabiliser": "l2sp",
            "stabiliser_params": canonical_params(params)}
    with ResultStore(tmp_path / "r.sqlite") as store:
        store.write_done(task, [{**run_row(1, None), "task_key": task["task_key"], "stabiliser": "l2sp",
                                 "stabiliser_params": canonical_params(params)}], [], seconds=0)
        assert len(store.runs(stabiliser_params=params)) == 1
        assert store.runs(stabiliser_params={"strength": 1.0, "include_head": False}) == []


def test_unknown_filter_column_is_refused(tmp_path):
    with ResultStore(tmp_path / "r.sqlite") as store, pytest.raises(ValueError, match="unknown column"):
        store.runs(colour="red")


def test_declared_columns_match_the_tables(tmp_path):
    path = tmp_path / "r.sqlite"
    ResultStore(path).close()
    assert columns(path, "runs") == set(RUN_COLUMNS)
    assert columns(path, "bounds") == set(BOUND_COLUMNS)
