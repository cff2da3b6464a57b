"""Storage: bytes written and seconds per task by the results store, for run ids clustered by task
(today's ``verify.run.task.run_ids``) against ids hashed per row (schema 7 and before).

    python bench/bench_store.py [--tasks 800] [--rows 1000] [--blocks 4] [--folder DIR] [--json]

Writes the same ``--tasks`` synthetic tasks of ``--rows`` rows (every ``runs`` column filled, as a
head task with exact leave-one-out fills them) through ``ResultStore.write_done`` into two fresh
results files, one scheme after the other block by block (``--blocks`` blocks, so both grow alike and
share the machine's state). Reports, per scheme and block, the bytes this process wrote to disk
(``/proc/self/io`` ``write_bytes``: the WAL and its checkpoints into the database), the wall seconds,
the database size and the write amplification (bytes written / final size of the database). Only the
id differs between the two files. ``--folder``: where the two files are written (default: the
system's temporary folder; give one on the disk a sweep writes to).
"""
from __future__ import annotations

import argparse
import json
import random
import tempfile
import time
from pathlib import Path

from verify.run.task import run_ids
from verify.seeding import run_seed
from verify.store import ResultStore
from verify.store.schema import RUN_COLUMNS, TABLE

TEXT_VALUES = {"kind": "separable", "setting": "head", "loss": "logistic", "init": "zero",
               "stabiliser": "none", "stabiliser_params": "{}", "left_out_estimator": "exact"}
COLUMNS = [TABLE["runs"].column(name) for name in RUN_COLUMNS]


def hashed_ids(task_key: str, rows: list[dict]) -> list[int]:
    """Schema 7's run id: a 63-bit hash of each row's coordinates."""
    return [run_seed(task_key, row["seed"], row["left_out"], row["iteration"]) for row in rows]


SCHEMES = {"clustered": run_ids, "hashed": hashed_ids}


def synthetic_task(index: int, n_rows: int) -> tuple[dict, list[dict]]:
    """A task of ``n_rows`` runs: 1 seed, every left-out set, 12 checkpoints, every column set."""
    rng = random.Random(index)
    key = f"separable-{index:08x}|head_gd|none|{{}}"
    n_models = max(1, n_rows // 12)
    rows = []
    for model in range(n_models):
        for iteration in range(12):
            row: dict = {}
            for column in COLUMNS:
                if column.type == "REAL":
                    row[column.name] = rng.random()
                elif column.type == "INTEGER":
                    row[column.name] = rng.randrange(1000)
                else:
                    row[column.name] = TEXT_VALUES.get(column.name, "[]" if column.json == "list" else
                                                       "{}" if column.json == "object" else "x")
            row.update(task_key=key, dataset_id=key.split("|")[0], config="head_gd", seed=0,
                       left_out=None if model == 0 else model - 1, iteration=2 ** iteration)
            rows.append(row)
    record = {"task_key": key, "dataset_id": key.split("|")[0], "config": "head_gd", "stabiliser": "none",
              "stabiliser_params": "{}", "seeds": [0]}
    return record, rows


def written_bytes() -> int:
    with open("/proc/self/io") as io:
        return next(int(line.split()[1]) for line in io if line.startswith("write_bytes"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=800)
    parser.add_argument("--rows", type=int, default=1000)
    parser.add_argument("--blocks", type=int, default=4)
    parser.add_argument("--folder", type=Path, default=None)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    per_block = -(-args.tasks // args.blocks)
    with tempfile.TemporaryDirectory(dir=args.folder) as folder:
        stores = {name: ResultStore(Path(folder) / name / "results.sqlite") for name in SCHEMES}
        out: dict = {name: [] for name in SCHEMES}
        for block in range(args.blocks):
            indices = range(block * per_block, min(args.tasks, (block + 1) * per_block))
            tasks = [synthetic_task(index, args.rows) for index in indices]
            for name, ids_of in SCHEMES.items():
                store = stores[name]
                start, before = time.perf_counter(), written_bytes()
                for record, rows in tasks:
                    rows = [dict(row) for row in rows]
                    for row, rid in zip(rows, ids_of(record["task_key"], rows), strict=True):
                        row["run_id"] = rid
                    store.write_done(record, rows, seconds=0.0)
                out[name].append({"tasks": indices.stop, "seconds": time.perf_counter() - start,
                                  "written_mb": (written_bytes() - before) / 1e6})
        for name, store in stores.items():
            store.close()
            size = (Path(folder) / name / "results.sqlite").stat().st_size / 1e6
            for block in out[name]:
                block["database_mb"] = size
    if args.json:
        print(json.dumps(out, indent=1))
        return
    print(f"{args.tasks} tasks x {args.rows} rows, {args.blocks} blocks (cumulative tasks at the end of each)")
    print(f"{'scheme':10} {'tasks':>6} {'seconds':>8} {'written MB':>11}")
    for name, blocks in out.items():
        for block in blocks:
            print(f"{name:10} {block['tasks']:>6} {block['seconds']:>8.1f} {block['written_mb']:>11.0f}")
    for name, blocks in out.items():
        total = sum(block["written_mb"] for block in blocks)
        print(f"{name}: {sum(block['seconds'] for block in blocks):.1f} s, {total:.0f} MB written for a "
              f"{blocks[-1]['database_mb']:.0f} MB database: amplification {total / blocks[-1]['database_mb']:.1f}x")


if __name__ == "__main__":
    main()
