"""Determinism on the smoke grid: one worker, two workers, a Dask LocalCluster and a second run of
one worker store bitwise the same datasets, tasks, rows (every measured column) and bounds, and
freeze to the same golden numbers.

The MLP rows' surrogate constants (μ, μ', β, δ_H by Lanczos on Hessian-vector products) and the
golden numbers computed from them (L2-SP's paired change of μ) are compared bitwise too:
theory.lanczos keeps every vector in torch's 64-byte-aligned buffers, where ARPACK's results depended
on the heap's alignment (up to 1.2e-13 relative between two runs).
"""
from __future__ import annotations

import json
import sqlite3

import pytest

from verify.cli import main

distributed = pytest.importorskip("distributed")

# Every kind of the smoke grid (separable heads with GD and SGD, least squares, pre-trained MLPs
# with SGD, every stabiliser on the MLP config), with few left-out sets and seeds to stay quick.
CONFIGS = "head_gd_logistic,head_sgd_logistic_random,full_quadratic_gd,full_mlp_sgd"
# What legitimately differs between runs: when a task finished and how long it took.
TIMING_COLUMNS = ("seconds", "finished_at")


def stored(out) -> dict[str, list[tuple]]:
    with sqlite3.connect(out / "results.sqlite") as conn:
        tables = {}
        for name, order in (("datasets", "dataset_id"), ("tasks", "task_key"), ("runs", "run_id")):
            columns = [row[1] for row in conn.execute(f"PRAGMA table_info({name})")
                       if row[1] not in TIMING_COLUMNS]
            tables[name] = conn.execute(f"SELECT {', '.join(columns)} FROM {name} "
                                        f"ORDER BY {order}").fetchall()
        tables["bounds"] = conn.execute(
            "SELECT b.run_id, b.bound, b.measure, b.measured, b.violated, r.kind, b.value, b.constants "
            "FROM bounds b JOIN runs r USING (run_id) ORDER BY b.run_id, b.bound").fetchall()
    return tables


@pytest.mark.slow
def test_smoke_grid_is_bitwise_identical_across_workers_dask_and_runs(tmp_path, pool_always):
    common = ["verify", "--grid", "smoke", "--seeds", "2", "--max-left-out", "1", "--configs", CONFIGS]
    stabilisers = ["--stabilisers", "none,l2sp,mhloss", "--configs", "full_mlp_sgd"]

    def sweep(name, *where):
        out = tmp_path / name
        assert main([*common, "--out", str(out), *where]) == 0
        assert main([*common[:-2], *stabilisers, "--out", str(out), *where]) == 0
        return out

    outs = [sweep("one", "--workers", "1"), sweep("two", "--workers", "2"),
            sweep("again", "--workers", "1")]
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, protocol="tcp",
                                  host="127.0.0.1", dashboard_address=None) as cluster:
        outs.append(sweep("dask", "--scheduler", cluster.scheduler_address))
    reference = stored(outs[0])
    assert len(reference["runs"]) > 0 and len(reference["bounds"]) > 0
    assert {row[1] for row in reference["datasets"]} == {"separable", "quadratic", "mlp"}
    for out in outs[1:]:
        tables = stored(out)
        for name in ("datasets", "tasks", "runs"):
            assert tables[name] == reference[name], (out.name, name)
        assert tables["bounds"] == reference["bounds"], out.name
    frozen = []
    for out in (outs[0], outs[-1]):
        assert main(["freeze", "--from", str(out), "--out", str(out / "golden.json")]) == 0
        frozen.append(json.loads((out / "golden.json").read_text())["numbers"])
    assert frozen[0] == frozen[1]
