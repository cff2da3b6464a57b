"""`ftstab freeze` / `ftstab check`: a sweep's numbers against a golden file."""
from __future__ import annotations

import json

import pytest

from verify.cli import main
from verify.golden.compare import CHANGED, DRIFT, MISSING, NEW, OK, compare
from verify.golden.numbers import Number
from verify.verdicts.write import compute_verdicts

GRID = """
[[block]]
generator = "make_separable"
fixed = { n_samples = 16, n_features = 3, random_state = 1 }
vary = { margin = [0.1, 0.3] }

[[block]]
generator = "make_quadratic_task"
fixed = { n_samples = 12, n_features = 3, random_state = 1 }
vary = { distance = [0.2, 1.0] }
"""


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    """A real sweep with corollaries (two margins, two distances), bounds and a T1 table."""
    folder = tmp_path_factory.mktemp("golden")
    grid = folder / "grid.toml"
    grid.write_text(GRID)
    results = folder / "results"
    common = ["verify", "--grid", str(grid), "--out", str(results), "--workers", "1", "--seeds", "2",
              "--max-left-out", "4"]
    assert main([*common, "--configs", "head_gd_logistic,full_quadratic_gd"]) == 0
    assert main([*common, "--configs", "full_quadratic_gd", "--stabilisers", "l2sp"]) == 0
    golden = folder / "golden.json"
    assert main(["freeze", "--from", str(results), "--out", str(golden)]) == 0
    return results, golden


def edited(golden, tmp_path, edit) -> str:
    data = json.loads(golden.read_text())
    edit({entry["key"]: entry for entry in data["numbers"]}, data)
    path = tmp_path / "edited.json"
    path.write_text(json.dumps(data))
    return str(path)


def test_freeze_records_statistics_with_half_their_ci_and_the_environment(sweep):
    results, golden = sweep
    data = json.loads(golden.read_text())
    assert data["format"] == "ftstab-golden" and data["environment"]["packages"]["numpy"]
    numbers = {entry["key"]: entry for entry in data["numbers"]}
    verdicts = compute_verdicts(results / "results.sqlite")
    margin = next(c for c in verdicts["corollaries"] if c["name"] == "head_margin")["measured"]
    frozen = numbers["corollary/head_margin/measured/tau"]
    assert frozen["value"] == margin["tau"]
    assert frozen["tolerance"] == pytest.approx(max((margin["high"] - margin["low"]) / 2, 1e-12))
    assert numbers["corollary/head_margin/measured/verdict"]["value"] == margin["verdict"]
    assert numbers["bound/theorem_f/violations"] == {"key": "bound/theorem_f/violations",
                                                     "kind": "count", "value": 0, "tolerance": 0.0}
    assert any(key.startswith("t1/quadratic") and key.endswith("/stability") for key in numbers)
    assert any(key.startswith("rank/theorem_f/") for key in numbers)


def test_check_of_the_same_sweep_passes(sweep, capsys):
    results, golden = sweep
    assert main(["check", "--from", str(results), "--golden", str(golden)]) == 0
    assert "golden check passed" in capsys.readouterr().out


def test_a_number_moved_beyond_its_tolerance_fails_and_within_it_passes(sweep, tmp_path, capsys):
    results, golden = sweep
    key = "bound/theorem_f/tightness/median"

    def move(by):
        def edit(numbers, _):
            numbers[key]["value"] += by * numbers[key]["tolerance"]
        return edit

    assert main(["check", "--from", str(results), "--golden", edited(golden, tmp_path, move(0.5))]) == 0
    capsys.readouterr()
    assert main(["check", "--from", str(results), "--golden", edited(golden, tmp_path, move(2))]) == 1
    out = capsys.readouterr().out
    assert any(line.startswith(key) and "DRIFT" in line for line in out.splitlines())
    assert "golden check FAILED" in out and "1 drifted" in out


def test_a_changed_verdict_or_count_fails(sweep, tmp_path, capsys):
    results, golden = sweep

    def edit(numbers, _):
        verdict = numbers["corollary/head_margin/measured/verdict"]
        verdict["value"] = "fail" if verdict["value"] != "fail" else "pass"
        numbers["bound/theorem_f/violations"]["value"] = 3

    assert main(["check", "--from", str(results), "--golden", edited(golden, tmp_path, edit)]) == 1
    out = capsys.readouterr().out
    assert "2 counts/verdicts changed" in out and out.count("CHANGED") == 2


def test_a_number_gone_fails_and_a_new_number_is_listed(sweep, tmp_path, capsys):
    results, golden = sweep

    def drop(numbers, data):
        data["numbers"] = [entry for entry in data["numbers"]
                           if entry["key"] != "divergence/verdict"]

    assert main(["check", "--from", str(results), "--golden", edited(golden, tmp_path, drop)]) == 0
    assert "1 new" in capsys.readouterr().out

    def add(numbers, data):
        data["numbers"].append({"key": "bound/retired/violations", "kind": "count", "value": 0,
                                "tolerance": 0.0})

    assert main(["check", "--from", str(results), "--golden", edited(golden, tmp_path, add)]) == 1
    assert "1 missing" in capsys.readouterr().out


def test_bad_golden_file_and_missing_results_are_one_line_errors(sweep, tmp_path, capsys):
    results, _ = sweep
    (tmp_path / "not-golden.json").write_text('{"format": "something else"}')
    assert main(["check", "--from", str(results), "--golden", str(tmp_path / "not-golden.json")]) == 2
    assert "not an ftstab golden file" in capsys.readouterr().err
    out = tmp_path / "g.json"
    assert main(["freeze", "--from", str(tmp_path / "nothing"), "--out", str(out)]) == 2
    assert "no results file" in capsys.readouterr().err and not out.exists()


@pytest.mark.parametrize(("old", "new", "status"), [
    (Number("a", "number", 1.0, 0.1), Number("a", "number", 1.05, 0.1), OK),
    (Number("a", "number", 1.0, 0.1), Number("a", "number", 1.2, 0.1), DRIFT),
    (Number("a", "statistic", None, 0.0), Number("a", "statistic", 0.3, 0.1), DRIFT),
    (Number("a", "statistic", None, 0.0), Number("a", "statistic", None, 0.0), OK),
    (Number("a", "count", 4, 0.0), Number("a", "count", 5, 0.0), CHANGED),
    (Number("a", "verdict", "pass", 0.0), Number("a", "verdict", "inconclusive", 0.0), CHANGED),
])
def test_status_of_one_number(old, new, status):
    assert [row.status for row in compare([old], [new])] == [status]


def test_keys_on_one_side_only_are_missing_or_new():
    rows = compare([Number("gone", "count", 1)], [Number("fresh", "count", 1)])
    assert [(row.key, row.status) for row in rows] == [("fresh", NEW), ("gone", MISSING)]


def test_the_committed_smoke_golden_file_is_a_golden_file():
    from pathlib import Path

    from verify.golden.golden_file import read_golden

    header, numbers = read_golden(Path(__file__).resolve().parents[1] / "golden" / "smoke.json")
    keys = {entry.key for entry in numbers}
    assert header["environment"]["packages"]["torch"] and header["rtol"] > 0
    assert "summary/violations" in keys and "bound/theorem_f/violations" in keys
    assert any(key.startswith("corollary/") and key.endswith("/verdict") for key in keys)
    assert any(key.startswith("t1/") for key in keys)
