"""Run ids: a pure function of a task's coordinates, unique, and clustered by task so that storing a
task writes a few pages at one place of the results file."""
from __future__ import annotations

import os
import random
import sqlite3

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from verify.run.task import ROW_BITS, run_ids, task_id_base
from verify.seeding import run_seed
from verify.store import ResultStore

coordinates = st.lists(st.tuples(st.integers(0, 9), st.one_of(st.none(), st.integers(0, 300)),
                                 st.integers(0, 10**6)), min_size=1, max_size=200, unique=True)


def as_rows(points):
    return [{"seed": seed, "left_out": left_out, "iteration": iteration} for seed, left_out, iteration in points]


@settings(max_examples=50)
@given(points=coordinates, key=st.text(min_size=1, max_size=40), order=st.randoms(use_true_random=False))
def test_ids_are_unique_order_free_and_share_the_task_bits(points, key, order):
    ids = run_ids(key, as_rows(points))
    shuffled = points[:]
    order.shuffle(shuffled)
    again = dict(zip(shuffled, run_ids(key, as_rows(shuffled)), strict=True))
    assert [again[point] for point in points] == ids
    assert len(set(ids)) == len(ids)
    assert all(0 <= rid < 1 << 63 for rid in ids)
    assert {rid >> ROW_BITS for rid in ids} == {task_id_base(key)}
    # The rank follows (seed, left_out with the full set first, iteration).
    canonical = sorted(points, key=lambda p: (p[0], -1 if p[1] is None else p[1], p[2]))
    assert sorted(ids) == [again[point] for point in canonical]


def test_tasks_get_disjoint_id_ranges():
    rows = as_rows([(0, None, 5), (0, 0, 5)])
    bases = {run_ids(f"ds-{i}|cfg|none|{{}}", rows)[0] >> ROW_BITS for i in range(2000)}
    assert len(bases) == 2000


def test_duplicate_coordinates_are_refused():
    with pytest.raises(ValueError, match=r"rows: two runs of k have the same \(seed, left_out, iteration\)"):
        run_ids("k", as_rows([(0, 1, 5), (0, 1, 5)]))


def _wal_frames_of_one_more_task(path, ids_of):
    """WAL frames (pages) written by storing one 300-row task into a store that holds 40 tasks."""
    rng = random.Random(0)
    points = [(seed, left_out, iteration) for seed in range(2) for left_out in [None, *range(49)]
              for iteration in (1, 10, 100)]

    def task(index):
        key = f"ds{index}|cfg|none|{{}}"
        rows = [{"task_key": key, "dataset_id": f"ds{index}", "seed": s, "left_out": i, "iteration": t,
                 "setting": "head", "config": "cfg", "kind": "separable", "stabiliser": "none",
                 "train_loss": rng.random(), "test_loss": rng.random(), "parameter_stability": rng.random(),
                 "head_direction_stability": rng.random(), "distance_from_init": rng.random()}
                for s, i, t in points]
        for row, rid in zip(rows, ids_of(key, rows), strict=True):
            row["run_id"] = rid
        record = {"task_key": key, "dataset_id": f"ds{index}", "config": "cfg", "stabiliser": "none",
                  "stabiliser_params": "{}", "seeds": [0, 1]}
        return record, rows

    with ResultStore(path) as store:
        for index in range(40):
            store.write_done(*task(index), seconds=0.0)
        store.connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        store.write_done(*task(40), seconds=0.0)
        page = store.connection.execute("PRAGMA page_size").fetchone()[0]
        frames = os.path.getsize(f"{path}-wal") // (page + 24)  # WAL frame: 24-byte header + page
    return frames, len(points)


def test_storing_a_task_writes_pages_in_proportion_to_its_rows_not_one_per_row(tmp_path):
    frames, n_rows = _wal_frames_of_one_more_task(tmp_path / "clustered.sqlite", run_ids)
    scattered, _ = _wal_frames_of_one_more_task(
        tmp_path / "scattered.sqlite",
        lambda key, rows: [run_seed(key, row["seed"], row["left_out"], row["iteration"]) for row in rows])
    # Measured: clustered ids write 49 frames for the 300 rows (table, three indexes, the tasks
    # row), ids hashed per row 437 (a table page per row, and index pages). A third of the row
    # count is a factor of two from either.
    assert frames < n_rows / 3 < scattered, (frames, scattered)
    with sqlite3.connect(tmp_path / "clustered.sqlite") as conn:
        assert conn.execute("SELECT COUNT(*) FROM runs").fetchone()[0] == 41 * n_rows
