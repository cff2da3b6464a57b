"""``ftstab verify``: bad input is one line, exit 2 and no file; a small grid runs end to end."""
from __future__ import annotations

import json
import sqlite3

import numpy as np
import pytest

from verify.cli import main

# Two datasets of the smoke grid's kinds, small enough to train in seconds.
TINY_GRID = """
description = "test: one separable and one least-squares dataset"

[[block]]
generator = "make_separable"
fixed = { n_samples = 20, n_features = 3, margin = 0.25, random_state = 0 }

[[block]]
generator = "make_quadratic_task"
fixed = { n_samples = 16, n_features = 3, distance = 1.0, noise = 0.1, random_state = 0 }
"""


@pytest.fixture
def grid(tmp_path):
    path = tmp_path / "tiny.toml"
    path.write_text(TINY_GRID)
    return str(path)


@pytest.mark.parametrize("arguments, message", [
    (["--grid", "no-such-grid"], "unknown grid"),
    (["--grid", "smoke", "--configs", "head_gd_logistic,nope"], "unknown config 'nope'"),
    (["--grid", "smoke", "--settings", "head,tail"], "unknown setting 'tail'"),
    (["--grid", "smoke", "--stabilisers", "l2sp,magic"], "unknown stabiliser 'magic'"),
    (["--grid", "smoke", "--stabilisers", "l2sp:strength=-1"], "strength"),
    (["--grid", "smoke", "--workers", "0"], "--workers: must be an int in [1, 1024] (got '0')"),
    (["--grid", "smoke", "--seeds", "0"], "--seeds: must be an int in [1, 10000] (got '0')"),
    (["--grid", "smoke", "--max-left-out", "-1"], "--max-left-out: must be an int in [1, "),
    (["--grid", "smoke", "--data", "{tmp}/nowhere"], "no such folder"),
    (["--grid", "smoke", "--scheduler", "tcp://127.0.0.1:9"], "cannot reach the Dask scheduler"),
])
def test_bad_input_is_one_line_exit_2_and_writes_nothing(tmp_path, capsys, arguments, message):
    out = tmp_path / "results"
    arguments = [a.replace("{tmp}", str(tmp_path)) for a in arguments]
    assert main(["verify", "--out", str(out), *arguments]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("ftstab verify: error:") and message in err and "\n" not in err
    assert not out.exists()


def test_data_folder_missing_grid_datasets_is_refused(tmp_path, capsys, grid):
    data = tmp_path / "data"
    data.mkdir()
    (data / "index.json").write_text("[]")
    assert main(["verify", "--grid", grid, "--data", str(data), "--out", str(tmp_path / "r")]) == 2
    assert "lacks 2 dataset(s)" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


@pytest.mark.slow
def test_tiny_grid_end_to_end_with_synth_data_and_resume(tmp_path, capsys, grid):
    data, out = tmp_path / "data", tmp_path / "results"
    assert main(["synth", "--grid", grid, "--out", str(data)]) == 0
    arguments = ["verify", "--grid", grid, "--data", str(data), "--out", str(out), "--workers", "1",
                 "--configs", "head_gd_logistic,full_quadratic_gd,full_quadratic_gd_lr2.2",
                 "--max-left-out", "20"]
    assert main(arguments) == 0
    printed = capsys.readouterr().out
    assert "3 tasks: 0 already done, 3 run, 0 failed" in printed and str(out / "results.sqlite") in printed
    conn = sqlite3.connect(out / "results.sqlite")
    card = json.loads(conn.execute("SELECT card FROM datasets WHERE kind = 'separable'").fetchone()[0])
    support = set(card["support_indices"])

    # Head: removing a non-support vector leaves the max-margin direction, so its effect fades.
    final = conn.execute(
        "SELECT left_out, head_direction_stability FROM runs WHERE config = 'head_gd_logistic' "
        "AND left_out IS NOT NULL AND iteration = n_steps").fetchall()
    assert len(final) == 20
    others = [s for i, s in final if i not in support]
    supports = [s for i, s in final if i in support]
    assert others and supports and np.median(others) < 0.5 * np.median(supports)

    # Full fine-tuning, quadratic: Theorem F bounds every run whose assumptions hold.
    held = conn.execute(
        "SELECT b.measured, b.value FROM bounds b JOIN runs r USING (run_id) WHERE b.bound = 'theorem_f' "
        "AND r.config = 'full_quadratic_gd' AND b.violated = '[]'").fetchall()
    assert len(held) == 16 * 12
    assert all(value >= measured for measured, value in held)

    # Beyond 2/beta: the model on S diverges, so no left-out comparison is stored as a number.
    full_diverged, n_measured = conn.execute(
        "SELECT SUM(diverged * (left_out IS NULL)), COUNT(parameter_stability) FROM runs "
        "WHERE config = 'full_quadratic_gd_lr2.2' AND iteration = n_steps").fetchone()
    assert full_diverged == 1 and n_measured == 0
    counts = conn.execute("SELECT COUNT(*) FROM runs").fetchone()[0], conn.execute(
        "SELECT COUNT(*) FROM bounds").fetchone()[0]
    conn.close()
    assert (out / "verdicts.json").exists() and (out / "verdicts.md").exists()

    assert main(arguments) == 0
    assert "3 tasks: 3 already done, 0 run" in capsys.readouterr().out
    with sqlite3.connect(out / "results.sqlite") as conn:
        assert (conn.execute("SELECT COUNT(*) FROM runs").fetchone()[0],
                conn.execute("SELECT COUNT(*) FROM bounds").fetchone()[0]) == counts


def test_a_sweep_evaluates_its_own_bounds_and_leaves_another_grids_pending_ones(tmp_path, capsys):
    """Two grids with their own data folders share one results folder; the second was trained but
    not bounded (what a crash between its training and its bounds leaves). Re-running the first
    must not evaluate the second's bounds (its datasets are not in the first's data folder): it
    exits 0 and leaves them to the second's own re-run, which evaluates them."""
    blocks = TINY_GRID.split("[[block]]")
    out = tmp_path / "results"
    commands = {}
    for name, block in (("separable", blocks[1]), ("quadratic", blocks[2])):
        grid, data = tmp_path / f"{name}.toml", tmp_path / f"data-{name}"
        grid.write_text(f'description = "test: {name}"\n[[block]]{block}')
        assert main(["synth", "--grid", str(grid), "--out", str(data)]) == 0
        commands[name] = ["verify", "--grid", str(grid), "--data", str(data), "--out", str(out),
                          "--workers", "1", "--configs", "head_gd_logistic,full_quadratic_gd",
                          "--max-left-out", "2"]
    assert main(commands["separable"]) == 0
    assert main([*commands["quadratic"], "--no-bounds"]) == 0
    capsys.readouterr()

    def evaluated(kind):
        with sqlite3.connect(out / "results.sqlite") as conn:
            return conn.execute(
                "SELECT e.status FROM bound_evaluations e JOIN tasks t USING (task_key) "
                "JOIN datasets d USING (dataset_id) WHERE d.kind = ?", (kind,)).fetchall()

    assert evaluated("quadratic") == []
    assert main(commands["separable"]) == 0
    assert "0 task(s) evaluated, 0 rows, 0 failed" in capsys.readouterr().out
    assert evaluated("quadratic") == []
    assert main(commands["quadratic"]) == 0
    assert "1 already done, 0 run" in capsys.readouterr().out
    statuses = evaluated("quadratic")
    assert statuses and set(statuses) == {("done",)}


def test_rerun_with_another_max_left_out_is_refused_before_running(tmp_path, capsys, grid):
    out = tmp_path / "results"
    base = ["verify", "--grid", grid, "--out", str(out), "--workers", "1",
            "--configs", "full_quadratic_gd"]
    assert main([*base, "--max-left-out", "2"]) == 0
    capsys.readouterr()
    assert main([*base, "--max-left-out", "3"]) == 2
    assert "holds config 'full_quadratic_gd' with another definition" in capsys.readouterr().err


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/status") as status:
            return "zombie" not in status.read().lower()
    except FileNotFoundError:
        return False


@pytest.mark.slow
def test_sigterm_ends_the_sweep_and_its_workers_and_keeps_finished_tasks(tmp_path, grid):
    import os
    import signal
    import subprocess
    import sys
    import time

    out, log = tmp_path / "results", tmp_path / "stderr.txt"
    process = subprocess.Popen(
        [sys.executable, "-m", "verify.cli", "verify", "--grid", "smoke", "--out", str(out),
         "--workers", "2", "--settings", "head"],
        env={**os.environ, "OMP_NUM_THREADS": "1"}, stderr=log.open("w"))
    deadline = time.monotonic() + 120
    done = 0
    while done < 1 and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.2)
        if not (out / "results.sqlite").is_file():
            continue  # read-only polling: an empty results.sqlite made here would be refused
        try:
            with sqlite3.connect(f"{(out / 'results.sqlite').as_uri()}?mode=ro", uri=True,
                                 timeout=5) as conn:
                done = conn.execute("SELECT COUNT(*) FROM tasks WHERE status = 'done'").fetchone()[0]
        except sqlite3.OperationalError:
            pass
    children = [int(pid) for pid in subprocess.run(["pgrep", "-P", str(process.pid)],
                                                   capture_output=True, text=True).stdout.split()]
    process.send_signal(signal.SIGTERM)
    try:
        deadline = time.monotonic() + 60
        while process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        assert process.poll() == 130, "ftstab verify did not exit within 60 s of SIGTERM"
        assert "interrupted; finished work is saved" in log.read_text()
        deadline = time.monotonic() + 10
        while any(map(_alive, children)) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert children and not any(map(_alive, children))
    finally:
        for pid in children:
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
        process.kill()
        process.wait()
    with sqlite3.connect(out / "results.sqlite") as conn:
        assert conn.execute("SELECT COUNT(*) FROM tasks WHERE status = 'done'").fetchone()[0] >= 1


def test_stabiliser_list_expands_all_completes_defaults_and_drops_duplicates():
    from verify.stabilisers import STABILISERS
    from verify.sweep.cli import parse_stabilisers
    chosen = parse_stabilisers("all,l2sp:strength=1.0,l2sp")
    names = [name for name, _ in chosen]
    assert names[0] == "none" and set(names) == {"none", *STABILISERS}
    l2sp = [params for name, params in chosen if name == "l2sp"]
    assert sorted(p["strength"] for p in l2sp) == sorted({STABILISERS["l2sp"]().params()["strength"], 1.0})
    assert all(set(p) == set(STABILISERS["l2sp"]().params()) for p in l2sp)
