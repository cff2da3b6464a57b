import json

import numpy as np
import pytest

from synth.grids import load_grid
from verify.cli import main

GRID = """
[[block]]
generator = "make_separable"
fixed = { n_samples = 20, n_features = 3, n_test = 10 }
vary = { margin = [0.1, 0.3] }

[[block]]
generator = "make_quadratic_task"
fixed = { n_samples = 12, n_features = 2, distance = 0.5, n_test = 10 }
"""


@pytest.fixture
def grid(tmp_path):
    path = tmp_path / "small.toml"
    path.write_text(GRID)
    return path


def test_writes_loadable_datasets_cards_and_index(grid, tmp_path):
    out = tmp_path / "out"
    assert main(["synth", "--grid", str(grid), "--out", str(out)]) == 0
    index = json.loads((out / "index.json").read_text())
    assert [entry["kind"] for entry in index] == ["separable", "separable", "quadratic"]
    assert sorted(p.name for p in out.iterdir()) == sorted(
        ["index.json", *(f"{e['id']}{ext}" for e in index for ext in (".npz", ".json"))])
    for entry in index:
        card = json.loads((out / f"{entry['id']}.json").read_text())
        assert card["id"] == entry["id"] and card["params"] == entry["params"]
        with np.load(out / f"{entry['id']}.npz", allow_pickle=False) as arrays:
            assert arrays["X"].shape == (card["n_samples"], card["n_features"])
    margins = [json.loads((out / f"{e['id']}.json").read_text())["margin"] for e in index[:2]]
    assert margins == pytest.approx([0.1, 0.3], rel=1e-12)


def test_list_prints_one_line_per_dataset_and_writes_nothing(grid, tmp_path, capsys):
    assert main(["synth", "--grid", str(grid), "--list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3
    assert lines[0].startswith("separable-") and "margin=0.1" in lines[0]
    assert lines[2].startswith("quadratic-") and "distance=0.5" in lines[2]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["small.toml"]


def test_list_smoke_grid(capsys):
    assert main(["synth", "--grid", "smoke", "--list"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == len(load_grid("smoke")) == 18


@pytest.mark.parametrize("grid_text, argv_grid, message", [
    (None, "nonexistent", "unknown grid 'nonexistent'"),
    ('[[block]]\ngenerator = "make_separable"\nfixed = { margin = 2.0 }\n', None, "margin"),
    ('[[block]]\ngenerator = "make_separable"\nfixed = { margin = 0.1, n_samples = 20 }\n'
     'vary = { label_noise = [0.0, 0.5] }\n', None, "label_noise"),
    ('[[block]]\ngenerator = "make_separable"\nfixed = { margin = 0.1, colour = 1 }\n', None,
     "'colour'"),
    ('[[block]]\ngenerator = "make_separable"\nfixed = { margin = 1e-300 }\n', None,
     "margin must be a float in [1e-08 * radius"),
    ('[[block]]\ngenerator = "make_quadratic_task"\nfixed = { distance = 1e300 }\n', None,
     "distance must be a float in [0, 1e+50]"),
    ('[[block]]\ngenerator = "make_separable"\nfixed = { margin = 0.1, n_samples = 1000000000000 '
     '}\n', None, "needs about"),
])
def test_bad_input_exits_2_with_one_line_and_writes_nothing(tmp_path, capsys, grid_text,
                                                            argv_grid, message):
    if grid_text is not None:
        argv_grid = str(tmp_path / "bad.toml")
        (tmp_path / "bad.toml").write_text(grid_text)
    fresh, existing = tmp_path / "fresh", tmp_path / "existing"
    existing.mkdir()
    for out in (fresh, existing):
        assert main(["synth", "--grid", argv_grid, "--out", str(out)]) == 2
        error = capsys.readouterr().err.strip()
        assert message in error and "\n" not in error and error.startswith("ftstab synth: error:")
    assert not fresh.exists()
    assert list(existing.iterdir()) == []


def test_out_is_required_without_list(grid, capsys):
    assert main(["synth", "--grid", str(grid)]) == 2
    assert "--out" in capsys.readouterr().err


def test_help(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["synth", "--help"])
    assert exit_info.value.code == 0
    help_text = capsys.readouterr().out
    assert "--grid" in help_text and "--out" in help_text and "--list" in help_text


def dead_pid():
    """The pid of a process that has exited (and been reaped)."""
    import subprocess
    import sys
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_a_killed_runs_staging_folder_is_removed_by_the_next_run(grid, tmp_path):
    import os
    out = tmp_path / "out"
    out.mkdir()
    stale = out / f".staging-{dead_pid()}-abc123"
    stale.mkdir()
    (stale / "separable-000000000000.npz").write_bytes(b"half a dataset")
    live = out / f".staging-{os.getppid()}-def456"  # a live process: maybe another run
    live.mkdir()
    foreign = out / ".staging-notours"
    foreign.mkdir()
    assert main(["synth", "--grid", str(grid), "--out", str(out)]) == 0
    assert not stale.exists()
    assert live.is_dir() and foreign.is_dir()
    staging = {path for path in out.iterdir() if path.name.startswith(".staging-")}
    assert staging == {live, foreign}


@pytest.mark.parametrize("umask", [0o022, 0o002, 0o077])
def test_written_files_follow_the_umask(grid, tmp_path, umask):
    import os
    out = tmp_path / "out"
    previous = os.umask(umask)
    try:
        assert main(["synth", "--grid", str(grid), "--out", str(out)]) == 0
    finally:
        os.umask(previous)
    modes = {path.name: path.stat().st_mode & 0o777 for path in out.iterdir()}
    assert len(modes) == 7
    assert set(modes.values()) == {0o666 & ~umask}


FAST_THEN_SLOW = """
[[block]]
generator = "make_quadratic_task"
fixed = { n_samples = 12, n_features = 2, distance = 0.5, n_test = 4 }

[[block]]
generator = "make_quadratic_task"
fixed = { n_samples = 4000, n_features = 60, distance = 0.5, n_test = 4 }
"""


def test_sigkill_during_synth_leaves_a_staging_folder_that_the_next_run_removes(tmp_path):
    import signal
    import subprocess
    import sys
    import time
    grid, out = tmp_path / "slow.toml", tmp_path / "out"
    grid.write_text(FAST_THEN_SLOW)
    child = subprocess.Popen([sys.executable, "-m", "verify.cli", "synth", "--grid", str(grid),
                              "--out", str(out)], stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not any(out.glob(".staging-*/*.json")):
        time.sleep(0.02)
    child.send_signal(signal.SIGKILL)  # while the second dataset is being generated
    child.wait()
    assert [path.name.split("-")[1] for path in out.glob(".staging-*")] == [str(child.pid)]
    assert not (out / "index.json").exists()
    grid.write_text(FAST_THEN_SLOW.split("\n\n[[block]]")[0])
    assert main(["synth", "--grid", str(grid), "--out", str(out)]) == 0
    assert not list(out.glob(".staging-*")) and (out / "index.json").exists()
