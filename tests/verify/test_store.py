"""The results store: the schema in one place, round trips, atomic task writes, failure records,
refusals of files ftstab did not write, standard JSON."""
from __future__ import annotations

import json
import math
import re
import sqlite3
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from verify.store import (
    BOUND_COLUMNS,
    RUN_COLUMNS,
    SCHEMA_VERSION,
    ResultStore,
    jsontext,
    open_results,
)
from verify.store.schema import (
    FULL_SET_MEASURES,
    TABLES,
    ddl,
    doc_blocks,
    markdown_tables,
)

# The columns figures and verdicts rely on (docs/results-schema.md).
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
        store.write_done(TASK, runs, seconds=1.5, card=CARD)
        store.write_bounds(TASK["task_key"], {"theorem_h": bounds}, seconds=0.5)
    with open_results(path) as store:
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
        store.write_done(TASK, [run_row(1, 3, parameter_stability=float("nan"), diverged=1)], seconds=0)
        (row,) = store.runs()
    assert row["parameter_stability"] is None and row["diverged"] == 1


def test_a_bad_task_write_leaves_nothing_behind(tmp_path):
    with ResultStore(tmp_path / "r.sqlite") as store:
        duplicate = [run_row(1, None), run_row(1, 3)]
        with pytest.raises(sqlite3.IntegrityError):
            store.write_done(TASK, duplicate, seconds=0)
        assert store.runs() == [] and store.task_status() == {}


def test_failed_task_has_traceback_and_no_rows_then_retry_replaces_it(tmp_path):
    with ResultStore(tmp_path / "r.sqlite") as store:
        store.write_failed(TASK, error="Traceback ...\nRuntimeError: boom", seconds=0.1)
        assert store.task_status() == {TASK["task_key"]: "failed"}
        assert "RuntimeError: boom" in store.tasks(status="failed")[0]["error"]
        assert store.runs() == []
        store.write_done(TASK, [run_row(1, None)], seconds=0.2)
        (task,) = store.tasks()
        assert task["status"] == "done" and task["error"] is None
        assert len(store.runs()) == 1


BOUND_ROW = {"run_id": 2, "bound": "b", "measure": "m", "measured": 1.0, "value": 2.0, "violated": [],
             "constants": {}}


def test_rewriting_a_done_task_does_not_duplicate_and_forgets_its_old_bounds(tmp_path):
    with ResultStore(tmp_path / "r.sqlite") as store:
        for _ in range(2):
            store.write_done(TASK, [run_row(1, None), run_row(2, 4)], seconds=0)
            store.write_bounds(TASK["task_key"], {"b": [BOUND_ROW]}, seconds=0)
            store.write_bounds(TASK["task_key"], {"b": [BOUND_ROW]}, seconds=0)
        assert len(store.runs()) == 2 and len(store.bounds()) == 1
        assert store.evaluations() == {(TASK["task_key"], "b"): "done"}
        store.write_done(TASK, [run_row(1, None), run_row(2, 4)], seconds=0)  # trained again
        assert store.bounds() == [] and store.evaluations() == {}


def test_a_failed_bound_evaluation_is_recorded_without_rows_and_replaced_by_a_retry(tmp_path):
    with ResultStore(tmp_path / "r.sqlite") as store:
        store.write_done(TASK, [run_row(1, None), run_row(2, 4)], seconds=0)
        store.write_bounds(TASK["task_key"], {}, seconds=0, failed={"b": "Traceback: boom"})
        assert store.evaluations() == {(TASK["task_key"], "b"): "failed"} and store.bounds() == []
        store.write_bounds(TASK["task_key"], {"b": [BOUND_ROW]}, seconds=0)
        assert store.evaluations() == {(TASK["task_key"], "b"): "done"} and len(store.bounds()) == 1


def test_bound_must_name_a_run_of_its_task(tmp_path):
    with ResultStore(tmp_path / "r.sqlite") as store, pytest.raises(ValueError, match="run_id 7"):
        store.write_done(TASK, [run_row(1, None)], seconds=0)
        store.write_bounds(TASK["task_key"], {"b": [{**BOUND_ROW, "run_id": 7}]}, seconds=0)


def test_other_schema_version_is_refused(tmp_path):
    path = tmp_path / "r.sqlite"
    ResultStore(path).close()
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE meta SET value = '0' WHERE key = 'schema_version'")
    with pytest.raises(ValueError, match=f"schema version 0.*version {SCHEMA_VERSION}"):
        ResultStore(path)


def _old_results(path, version):
    """A results file as an older schema wrote it (1: no full-set measures; 2: no stored weights)."""
    old_schema = ddl().replace(", weights TEXT", "")
    old_schema = old_schema[:old_schema.index("CREATE TABLE bound_evaluations")] + old_schema[
        old_schema.index("CREATE INDEX"):]
    if version == 1:
        for name in FULL_SET_MEASURES:
            old_schema = old_schema.replace(f", {name} REAL", "")
    conn = sqlite3.connect(path)
    conn.executescript(old_schema)
    conn.execute("INSERT INTO meta VALUES ('schema_version', ?)", (str(version),))
    conn.commit()
    conn.close()
    return path.read_bytes()


@pytest.mark.parametrize("version", [1, 2])
@pytest.mark.parametrize("readonly", [False, True])
def test_older_results_are_refused_in_one_line_and_left_unchanged(tmp_path, readonly, version):
    path = tmp_path / "results.sqlite"
    before = _old_results(path, version)
    with pytest.raises(ValueError) as refused:
        open_results(path) if readonly else ResultStore(path)
    message = str(refused.value)
    assert f"schema version {version}" in message and f"version {SCHEMA_VERSION}" in message and "\n" not in message
    assert path.read_bytes() == before


def test_verify_cli_refuses_an_old_results_file_with_one_line(tmp_path, capsys):
    from verify.cli import main
    out = tmp_path / "results"
    out.mkdir()
    before = _old_results(out / "results.sqlite", 1)
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
        open_results(tmp_path / "missing.sqlite")
    assert list(tmp_path.iterdir()) == []


def test_json_filters_match_the_canonical_text(tmp_path):
    from verify.run.task import canonical_params
    params = {"strength": 0.1, "include_head": False}
    task = {**TASK, "task_key": "ds|cfg|l2sp|x", "stabiliser": "l2sp",
            "stabiliser_params": canonical_params(params)}
    with ResultStore(tmp_path / "r.sqlite") as store:
        store.write_done(task, [{**run_row(1, None), "task_key": task["task_key"], "stabiliser": "l2sp",
                                 "stabiliser_params": canonical_params(params)}], seconds=0)
        assert len(store.runs(stabiliser_params=params)) == 1
        assert store.runs(stabiliser_params={"strength": 1.0, "include_head": False}) == []


def _left_out_rows(seed, estimator, weighted, diverged=()):
    """Left-out rows of one E_i group: (left_out, weight, parameter_stability) triples; the models
    left out of the samples in ``diverged`` diverged."""
    return [run_row(100 * seed + i, i, seed=seed, left_out_estimator=estimator, left_out_weight=weight,
                    parameter_stability=value, diverged=int(i in diverged))
            for i, weight, value in weighted]


def test_stability_leaves_partial_groups_out_and_counts_them_as_the_verdicts_do(tmp_path):
    from verify.verdicts.db import estimator_filter
    runs = ([run_row(1, None)]
            + _left_out_rows(0, "stratified", [(2, 0.25, 1.0), (3, 0.75, 3.0)])
            + _left_out_rows(1, "partial", [(2, 1.0, 5.0)])
            + _left_out_rows(2, "exact", [(2, 0.5, 2.0), (3, 0.5, 4.0)]))
    with ResultStore(tmp_path / "r.sqlite") as store:
        store.write_done({**TASK, "seeds": [0, 1, 2]}, runs, seconds=0, card=CARD)
    with open_results(tmp_path / "r.sqlite") as results:
        default = results.stability("parameter_stability")
        assert [(r["seed"], r["left_out_estimator"], r["n_left_out"]) for r in default] == [
            (0, "stratified", 2), (2, "exact", 2)]
        assert [r["stability"] for r in default] == pytest.approx([2.5, 3.0])  # weighted, not 2.0
        assert default.partial_left_out == 1
        _, partial_groups = estimator_filter()
        assert results.connection.execute(
            f"SELECT COUNT(*) FROM ({partial_groups})").fetchone()[0] == default.partial_left_out
        every = results.stability("parameter_stability", include_partial=True)
        assert [(r["seed"], r["left_out_estimator"]) for r in every] == [
            (0, "stratified"), (1, "partial"), (2, "exact")]
        assert every[1]["stability"] == 5.0 and every.partial_left_out == 0
        only_partial = results.stability("parameter_stability", seed=1)
        assert list(only_partial) == [] and only_partial.partial_left_out == 1
        assert results.stability("parameter_stability", seed=0).partial_left_out == 0


def test_stability_leaves_groups_with_a_diverged_model_out_and_counts_them_as_the_verdicts_do(tmp_path):
    """A group is E_i only where every left-out run was measured: a diverged left-out model (its
    measure NULL), a diverged model on S (every row's measure NULL) or both in a partial group leave
    the group out, counted, as the corollary verdicts leave it out of the trends."""
    from verify.verdicts.corollaries import _fetch
    runs = ([run_row(1, None, diverged=0)]
            + _left_out_rows(0, "stratified", [(2, 0.25, 1.0), (3, 0.75, 3.0)])
            + _left_out_rows(1, "exact", [(2, 0.5, 2.0), (3, 0.5, None)], diverged=(3,))
            + _left_out_rows(2, "exact", [(2, 0.5, None), (3, 0.5, None)])
            + _left_out_rows(3, "partial", [(2, 1.0, None)], diverged=(2,))
            + _left_out_rows(4, "exact", [(2, 0.5, 2.0), (3, 0.5, 4.0)]))
    with ResultStore(tmp_path / "r.sqlite") as store:
        store.write_done({**TASK, "seeds": [0, 1, 2, 3, 4]}, runs, seconds=0, card=CARD)
    with open_results(tmp_path / "r.sqlite") as results:
        default = results.stability("parameter_stability")
        assert [(r["seed"], r["stability"], r["n_left_out"]) for r in default] == [
            (0, pytest.approx(2.5), 2), (4, pytest.approx(3.0), 2)]  # not seed 1's 2.0 over one row
        assert (default.partial_left_out, default.diverged_left_out) == (1, 2)
        measured, _, partial = _fetch(results.connection, "head", "parameter_stability")
        assert [(r["seed"], r["iteration"], r["y"]) for r in measured] == [
            (r["seed"], r["iteration"], r["stability"]) for r in default]
        assert partial == default.partial_left_out
        every = results.stability("parameter_stability", include_partial=True)
        assert [r["seed"] for r in every] == [0, 4]
        assert (every.partial_left_out, every.diverged_left_out) == (0, 3)
        assert results.stability("parameter_stability", seed=1).diverged_left_out == 1


def test_unknown_filter_column_is_refused(tmp_path):
    with ResultStore(tmp_path / "r.sqlite") as store, pytest.raises(ValueError, match="unknown column"):
        store.runs(colour="red")


def test_declared_columns_match_the_tables(tmp_path):
    path = tmp_path / "r.sqlite"
    ResultStore(path).close()
    assert columns(path, "runs") == set(RUN_COLUMNS)
    assert columns(path, "bounds") == set(BOUND_COLUMNS)


def test_declared_columns_match_every_table(tmp_path):
    path = tmp_path / "r.sqlite"
    ResultStore(path).close()
    for table in TABLES:
        with sqlite3.connect(path) as conn:
            declared = {row[1]: row[2] for row in conn.execute(f"PRAGMA table_info({table.name})")}
        assert declared == {column.name: column.type for column in table.columns}, table.name


# -- refusals of files ftstab did not write, before anything is written ---------------------------

def _results_with_rows(path):
    with ResultStore(path) as store:
        store.write_done(TASK, [run_row(j, None if j == 1 else j, test_accuracy=0.5) for j in range(1, 400)],
                         seconds=1.0, card=CARD)
    # checkpoint the WAL so the file alone holds everything
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        conn.execute("PRAGMA journal_mode=DELETE")


def _corrupt(path):
    data = bytearray(path.read_bytes())
    page = 4096
    for position in range(2 * page + 100, min(len(data), 6 * page), 7):
        data[position] ^= 0x5A
    path.write_bytes(bytes(data))


def _drop_bounds(path):
    with sqlite3.connect(path) as conn:
        conn.execute("DROP TABLE bounds")


def _drop_column(path):
    with sqlite3.connect(path) as conn:
        conn.execute("ALTER TABLE runs DROP COLUMN feature_margin")


def _foreign_with_meta(path):
    path.unlink()
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT)")
        conn.execute("INSERT INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
        conn.execute("CREATE TABLE runs (x)")


def _retyped_column(path):
    path.unlink()
    with sqlite3.connect(path) as conn:
        conn.executescript(ddl().replace("test_accuracy REAL", "test_accuracy TEXT"))
        conn.execute("INSERT INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))


def _empty(path):
    path.write_bytes(b"")


def _directory(path):
    path.unlink()
    path.mkdir()


@pytest.mark.parametrize("damage, message", [
    (_corrupt, "damaged|not an ftstab results file"),
    (_drop_bounds, "table bounds is missing"),
    (_drop_column, "column runs.feature_margin is missing"),
    (_foreign_with_meta, "table datasets is missing"),
    (_retyped_column, "runs.test_accuracy is TEXT, the schema says REAL"),
    (_empty, "empty \\(0 bytes\\)"),
    (_directory, "is a directory"),
])
@pytest.mark.parametrize("opener", ["writer", "reader", "verify", "verdicts", "figures", "bounds"])
def test_a_file_ftstab_did_not_write_is_refused_in_one_line_before_anything_is_written(
        tmp_path, damage, message, opener, capsys):
    from verify.cli import main
    path = tmp_path / "results.sqlite"
    _results_with_rows(path)
    damage(path)
    before = {p.name: (p.read_bytes() if p.is_file() else None) for p in tmp_path.iterdir()}
    if opener in ("writer", "reader"):
        with pytest.raises(ValueError) as refused:
            ResultStore(path) if opener == "writer" else open_results(tmp_path)
        text = str(refused.value)
    else:
        argv = {"verify": ["verify", "--grid", "smoke", "--out", str(tmp_path), "--configs",
                           "full_quadratic_gd", "--workers", "1"],
                "verdicts": ["verdicts", "--from", str(tmp_path)],
                "figures": ["figures", "--from", str(tmp_path), "--out", str(tmp_path / "figs")],
                "bounds": ["bounds", "--from", str(tmp_path), "--workers", "1"]}[opener]
        assert main(argv) == 2
        text = capsys.readouterr().err.strip()
        assert text.startswith(f"ftstab {opener}: error:")
    assert re.search(message, text) and "\n" not in text and str(path) in text
    assert {p.name: (p.read_bytes() if p.is_file() else None) for p in tmp_path.iterdir()} == before


# -- standard JSON ---------------------------------------------------------------------------------

def _strict(text):
    def refuse(name):
        raise AssertionError(f"non-standard JSON constant {name} in {text!r}")
    return json.loads(text, parse_constant=refuse)


@settings(max_examples=30)
@given(values=st.dictionaries(st.sampled_from(["mu", "beta", "rho", "D", "gamma"]),
                              st.floats(allow_nan=True, allow_infinity=True), max_size=5))
def test_json_columns_hold_standard_json_and_read_back(tmp_path_factory, values):
    path = tmp_path_factory.mktemp("json") / "results.sqlite"
    card = {**CARD, "radius": values.get("mu", 1.0), "nested": [values.get("rho", 0.0)]}
    with ResultStore(path) as store:
        store.write_done(TASK, [run_row(1, None), run_row(2, 4)], seconds=0, card=card)
        store.write_bounds(TASK["task_key"], {"b": [{**BOUND_ROW, "constants": values}]}, seconds=0)
    with sqlite3.connect(path) as conn:
        for table in TABLES:
            for name in table.json_columns():
                for (text,) in conn.execute(f"SELECT {name} FROM {table.name} WHERE {name} IS NOT NULL"):
                    _strict(text)
                    assert conn.execute("SELECT json_valid(?)", (text,)).fetchone() == (1,)
    with open_results(path) as results:
        (bound,) = results.bounds()
    for key, value in values.items():
        got = bound["constants"][key]
        assert (got is None) if math.isnan(value) else got == value


def test_meta_configs_are_standard_json(tmp_path):
    with ResultStore(tmp_path / "r.sqlite") as store:
        store.set_meta({"configs": jsontext.dumps({"c": {"lr_scale": math.inf}})})
        _strict(store.meta()["configs"])
        assert store.configs() == {"c": {"lr_scale": math.inf}}


# -- the schema page is generated from the schema ---------------------------------------------------

def test_the_schema_page_shows_every_table_and_column_as_the_schema_declares():
    page = (Path(__file__).resolve().parents[2] / "docs" / "results-schema.md").read_text()
    blocks = doc_blocks(page)
    assert blocks == markdown_tables(), (
        "docs/results-schema.md is out of date: run python -m verify.store.schema docs/results-schema.md")
    assert set(blocks) == {table.name for table in TABLES}
    for table in TABLES:
        for column in table.columns:
            assert f"| `{column.name}` | {column.type}" in blocks[table.name]


@pytest.mark.parametrize("command", ["verdicts", "figures", "bounds", "export"])
def test_every_reader_refuses_an_older_schema_version_in_one_line(tmp_path, capsys, command):
    from verify.cli import main
    before = _old_results(tmp_path / "results.sqlite", 1)
    argv = {"verdicts": ["verdicts", "--from", str(tmp_path)],
            "figures": ["figures", "--from", str(tmp_path), "--out", str(tmp_path / "figs")],
            "bounds": ["bounds", "--from", str(tmp_path), "--workers", "1"],
            "export": ["export", "--from", str(tmp_path), "--table", "runs"]}[command]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"ftstab {command}: error:") and "schema version 1" in err and "\n" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results.sqlite"]
    assert (tmp_path / "results.sqlite").read_bytes() == before
