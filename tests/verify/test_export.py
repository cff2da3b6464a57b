"""`ftstab export`: a results table as CSV or JSON lines, read back equal, standard JSON only."""
from __future__ import annotations

import csv
import io
import json
import math

import pytest

from verify.cli import main
from verify.store import ResultStore, open_results
from verify.store.export import write_export

TASK = {"task_key": "ds|cfg|l2sp|{\"strength\":0.1}", "dataset_id": "ds", "config": "cfg",
        "stabiliser": "l2sp", "stabiliser_params": "{\"strength\":0.1}", "seeds": [0, 1]}


def _run(run_id, seed, left_out, **values):
    return {"run_id": run_id, "task_key": TASK["task_key"], "dataset_id": "ds", "seed": seed,
            "left_out": left_out, "iteration": 10, "setting": "full", "config": "cfg",
            "stabiliser": "l2sp", "stabiliser_params": TASK["stabiliser_params"], **values}


@pytest.fixture
def results(tmp_path):
    runs = [_run(1, 0, None, test_accuracy=0.75), _run(2, 0, 3, parameter_stability=0.125),
            _run(3, 1, 3, parameter_stability=float("nan"), diverged=1)]
    bounds = [{"run_id": 2, "bound": "theorem_f", "measure": "parameter_stability", "measured": 0.125,
               "value": math.inf, "violated": ["full_batch"], "constants": {"mu": -math.inf, "rho": math.nan}},
              {"run_id": 3, "bound": "theorem_f", "measure": "parameter_stability", "measured": None,
               "value": 0.5, "violated": [], "constants": {"mu": 1.0}}]
    with ResultStore(tmp_path / "results.sqlite") as store:
        store.write_done(TASK, runs, seconds=2.0, card={"id": "ds", "kind": "quadratic"})
        store.write_bounds(TASK["task_key"], {"theorem_f": bounds}, seconds=0.5)
    return tmp_path


def _strict(line):
    def refuse(name):
        raise AssertionError(f"non-standard JSON constant {name}")
    return json.loads(line, parse_constant=refuse)


def test_jsonl_bounds_are_standard_json_with_their_runs_coordinates(results):
    buffer = io.StringIO()
    with open_results(results) as store:
        assert write_export(store, "bounds", "jsonl", buffer) == 2
    first, second = [_strict(line) for line in buffer.getvalue().splitlines()]
    assert (first["seed"], first["left_out"], first["iteration"], first["config"]) == (0, 3, 10, "cfg")
    assert first["value"] == math.inf and first["violated"] == ["full_batch"]
    assert first["constants"] == {"mu": -math.inf, "rho": None}
    assert first["stabiliser_params"] == {"strength": 0.1}
    assert second["measured"] is None and second["constants"] == {"mu": 1.0}


def test_csv_runs_read_back_equal_to_the_read_api(results):
    buffer = io.StringIO()
    with open_results(results) as store:
        assert write_export(store, "runs", "csv", buffer) == 3
        expected = store.runs()
    rows = list(csv.DictReader(io.StringIO(buffer.getvalue())))
    assert [int(row["run_id"]) for row in rows] == [row["run_id"] for row in expected]
    assert rows[0]["left_out"] == "" and float(rows[0]["test_accuracy"]) == 0.75
    assert float(rows[1]["parameter_stability"]) == 0.125 and rows[2]["parameter_stability"] == ""
    assert set(rows[0]) == set(expected[0])


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_cli_writes_the_tasks_table_to_a_file(results, tmp_path, capsys, fmt):
    out = tmp_path / f"tasks.{fmt}"
    assert main(["export", "--from", str(results), "--table", "tasks", "--format", fmt, "--out", str(out)]) == 0
    assert "1 tasks row(s)" in capsys.readouterr().err
    text = out.read_text()
    if fmt == "jsonl":
        (task,) = [_strict(line) for line in text.splitlines()]
        assert task["seeds"] == [0, 1] and task["status"] == "done" and task["weights"] is None
    else:
        (task,) = list(csv.DictReader(io.StringIO(text)))
        assert task["seeds"] == "[0,1]" and task["task_key"] == TASK["task_key"]


def test_cli_export_to_stdout_and_refusals(results, tmp_path, capsys):
    assert main(["export", "--from", str(results), "--table", "bounds", "--format", "jsonl"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 2
    assert main(["export", "--from", str(tmp_path / "missing"), "--table", "runs"]) == 2
    error = capsys.readouterr().err.strip()
    assert "no results file" in error and "\n" not in error
    assert main(["export", "--from", str(results), "--table", "runs", "--out", str(tmp_path)]) == 2
    assert "is a folder" in capsys.readouterr().err
