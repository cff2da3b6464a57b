"""What every refused input must leave: one line on stderr, exit status 2, the file tree untouched."""
from __future__ import annotations

import hashlib
import shutil
import tempfile
from pathlib import Path

import pytest

from verify.cli import main

# Two datasets of the smoke grid's kinds, small enough to generate in a second.
TINY_GRID = """
description = "test: one separable and one least-squares dataset"

[[block]]
generator = "make_separable"
fixed = { n_samples = 20, n_features = 3, margin = 0.25, random_state = 0 }

[[block]]
generator = "make_quadratic_task"
fixed = { n_samples = 16, n_features = 3, distance = 1.0, noise = 0.1, random_state = 0 }
"""


def snapshot(root: Path) -> dict[str, tuple]:
    """Every entry under ``root`` (and ``root`` itself): kind, mode, size, mtime and content hash."""
    entries = {}
    if not root.exists():
        return entries
    for path in [root, *sorted(root.rglob("*"))]:
        stat = path.lstat()
        digest = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else None
        entries[str(path.relative_to(root))] = (path.is_dir(), stat.st_mode, stat.st_size,
                                                stat.st_mtime_ns, digest)
    return entries


@pytest.fixture
def refused(capsys, monkeypatch):
    """``refused(argv, watched, *needles)``: run ``ftstab argv`` in this process and assert a
    one-line error containing every needle, exit status 2, no traceback and ``watched`` unchanged."""
    monkeypatch.delenv("FTSTAB_DEBUG", raising=False)

    def accepted(*args, **kwargs):
        raise AssertionError("the input was accepted: the sweep would run")

    # an input that is wrongly accepted must fail here, not train for minutes
    monkeypatch.setattr("verify.sweep.cli._sweep", accepted)

    def check(argv: list[str], watched: Path, *needles: str) -> str:
        before = snapshot(watched)
        capsys.readouterr()
        code = main([str(arg) for arg in argv])
        captured = capsys.readouterr()
        lines = captured.err.strip().splitlines()
        assert code == 2, f"exit status {code} for {argv}: {captured.err}"
        assert len(lines) == 1, f"not one line for {argv}: {captured.err!r}"
        assert lines[0].startswith(f"ftstab {argv[0]}: error:"), lines[0]
        assert "Traceback" not in captured.err and "Traceback" not in captured.out
        for needle in needles:
            assert needle in lines[0], f"{needle!r} not in {lines[0]!r}"
        assert snapshot(watched) == before, f"{argv} changed {watched}"
        return lines[0]

    return check


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory) -> tuple[Path, Path]:
    """(grid file, data folder written by ftstab synth) of TINY_GRID, shared read-only."""
    root = tmp_path_factory.mktemp("tiny")
    grid = root / "tiny.toml"
    grid.write_text(TINY_GRID)
    assert main(["synth", "--grid", str(grid), "--out", str(root / "data")]) == 0
    return grid, root / "data"


@pytest.fixture
def data_copy(tiny_data, tmp_path) -> tuple[Path, Path]:
    """A private copy of the tiny data folder to damage."""
    grid, data = tiny_data
    copy = tmp_path / "data"
    shutil.copytree(data, copy)
    return grid, copy


@pytest.fixture
def world_tmp():
    """A fresh folder that the unprivileged user may traverse (pytest's tmp folders are 0700)."""
    folder = Path(tempfile.mkdtemp(prefix="ftstab-reliability-"))
    folder.chmod(0o755)
    yield folder
    for path in [folder, *folder.rglob("*")]:
        if path.is_dir():
            path.chmod(0o755)
    shutil.rmtree(folder)
