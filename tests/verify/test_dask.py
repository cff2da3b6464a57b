"""The same real tasks give the same results in-process, on a 2-process pool and on Dask."""
from __future__ import annotations

import sqlite3

import pytest

from verify.cli import main

distributed = pytest.importorskip("distributed")

GRID = """
[[block]]
generator = "make_separable"
fixed = { n_samples = 16, n_features = 3, random_state = 1 }
vary = { margin = [0.1, 0.3] }

[[block]]
generator = "make_quadratic_task"
fixed = { n_samples = 12, n_features = 3, distance = 0.5, random_state = 1 }
"""


def rows(out):
    with sqlite3.connect(out / "results.sqlite") as conn:
        runs = conn.execute("SELECT * FROM runs ORDER BY run_id").fetchall()
        bounds = conn.execute("SELECT * FROM bounds ORDER BY run_id, bound").fetchall()
        tasks = conn.execute("SELECT task_key, status FROM tasks ORDER BY task_key").fetchall()
    return runs, bounds, tasks


@pytest.mark.slow
def test_dask_local_cluster_and_process_pool_match_the_in_process_runner(tmp_path, monkeypatch):
    grid = tmp_path / "grid.toml"
    grid.write_text(GRID)
    common = ["verify", "--grid", str(grid), "--seeds", "2", "--max-left-out", "3",
              "--configs", "head_gd_logistic_lr3,head_sgd_logistic_random,full_quadratic_gd"]
    assert main([*common, "--out", str(tmp_path / "local"), "--workers", "1"]) == 0
    # the small-sweep rule runs this sweep in-process with --workers 2; switched off, on the pool
    assert main([*common, "--out", str(tmp_path / "rule"), "--workers", "2"]) == 0
    from verify.sweep import choice
    with monkeypatch.context() as patch:
        patch.setattr(choice, "POOL_START_SECONDS", float("-inf"))
        assert main([*common, "--out", str(tmp_path / "pool"), "--workers", "2"]) == 0
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False, protocol="tcp",
                                  host="127.0.0.1", dashboard_address=None) as cluster:
        assert main([*common, "--out", str(tmp_path / "dask"), "--scheduler", cluster.scheduler_address]) == 0
    local, pool, dask = rows(tmp_path / "local"), rows(tmp_path / "pool"), rows(tmp_path / "dask")
    assert rows(tmp_path / "rule") == local
    assert len(local[0]) > 0 and len(local[1]) > 0 and len(local[2]) == 2 * 2 + 1
    assert local == pool
    assert local == dask
