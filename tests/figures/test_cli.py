"""`ftstab figures`: bad input is one line and exit 2; absent data is skipped with a note."""
from __future__ import annotations

import sqlite3

import pytest

from verify.cli import main


def test_missing_results_is_one_line_exit_2_and_writes_nothing(tmp_path, capsys):
    out = tmp_path / "figures"
    assert main(["figures", "--from", str(tmp_path / "nowhere"), "--out", str(out)]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "no results file" in error and "nowhere" in error
    assert not out.exists()


def test_a_file_that_is_not_a_results_database_is_rejected(tmp_path, capsys):
    (tmp_path / "results.sqlite").write_text("not sqlite at all " * 100)
    assert main(["figures", "--from", str(tmp_path), "--out", str(tmp_path / "f")]) == 2
    assert "not an ftstab results file" in capsys.readouterr().err
    other = tmp_path / "other.sqlite"
    sqlite3.connect(other).execute("CREATE TABLE runs (x)").connection.close()
    assert main(["figures", "--from", str(other), "--out", str(tmp_path / "f")]) == 2
    assert "no schema_version" in capsys.readouterr().err
    assert not (tmp_path / "f").exists()


def test_unknown_only_key_names_the_allowed_keys(known_results, tmp_path, capsys):
    assert main(["figures", "--from", str(known_results.folder), "--out", str(tmp_path / "f"),
                 "--only", "F1,F42"]) == 2
    error = capsys.readouterr().err
    assert "F42" in error and "F1, F2" in error and "T1" in error
    assert not (tmp_path / "f").exists()


def test_empty_results_skip_every_figure_with_a_note(empty_results, tmp_path, capsys):
    out = tmp_path / "figures"
    assert main(["figures", "--from", str(empty_results), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert printed.count("skipped (") == 14
    assert sorted(path.name for path in out.iterdir()) == ["index.md"]
    index = (out / "index.md").read_text(encoding="utf-8")
    assert "## Drawn\n\n- (nothing)" in index
    assert "- **F1** (f01_margin): no head-tuning runs on separable data" in index
    assert "produced by head-tuning configs" in index
    assert "- **T1** (t1_stabilisers): no training config was run with two or more stabilisers" in index


def test_a_rerun_removes_the_files_of_figures_now_skipped(known_results, empty_results, tmp_path):
    out = tmp_path / "figures"
    assert main(["figures", "--from", str(known_results.folder), "--out", str(out), "--only", "F5"]) == 0
    (out / "notes.txt").write_text("mine")
    assert main(["figures", "--from", str(empty_results), "--out", str(out), "--only", "F5"]) == 0
    assert sorted(path.name for path in out.iterdir()) == ["index.md", "notes.txt"]


def test_only_draws_the_selected_figures(known_results, tmp_path):
    out = tmp_path / "figures"
    assert main(["figures", "--from", str(known_results.folder / "results.sqlite"), "--out", str(out),
                 "--only", "f5, T1"]) == 0
    assert sorted(path.name for path in out.iterdir()) == [
        "f05_full_samples.csv", "f05_full_samples.pdf", "f05_full_samples.png", "index.md",
        "t1_stabilisers.csv", "t1_stabilisers.md"]


@pytest.mark.parametrize("only, reason", [
    ("F3", "no setting has runs at two or more learning rates"),
    ("F10", "no run has a bound row"),
])
def test_a_figure_whose_rows_are_missing_is_skipped_not_empty(known_results, tmp_path, only, reason):
    reduced = tmp_path / "reduced"
    reduced.mkdir()
    (reduced / "results.sqlite").write_bytes((known_results.folder / "results.sqlite").read_bytes())
    connection = sqlite3.connect(reduced / "results.sqlite")
    connection.execute("DELETE FROM runs WHERE config LIKE '%lr%'")
    connection.execute("DELETE FROM bounds")
    connection.commit()
    connection.close()
    out = tmp_path / "figures"
    assert main(["figures", "--from", str(reduced), "--out", str(out), "--only", only]) == 0
    assert reason in (out / "index.md").read_text(encoding="utf-8")
    assert not list(out.glob("*.png"))
