"""Where and how a sweep was run, for the report: the main job's record, the results, the machine."""
from __future__ import annotations

import hashlib
import json
import sqlite3
from pathlib import Path

from verify.provenance import environment

PROVENANCE_FILE = "provenance.json"


def run_provenance(conn: sqlite3.Connection, results_dir: Path) -> dict:
    """Facts about the run behind ``results_dir``.

    ``recorded`` is ``results_dir/provenance.json`` as the main job (``tasks.py main``) wrote it
    (grid and config files with their sha256, command lines, start and end time, machine), or None;
    ``results`` is what the database itself says (seeds, config definitions and dataset set with
    their sha256, when tasks finished); ``report_environment`` is where the report was made.
    """
    path = Path(results_dir) / PROVENANCE_FILE
    recorded = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None
    meta = {key: value for key, value in conn.execute("SELECT key, value FROM meta")} \
        if _has_table(conn, "meta") else {}
    datasets = conn.execute("SELECT dataset_id, card FROM datasets ORDER BY dataset_id").fetchall()
    identity = json.dumps([[dataset_id, json.loads(card).get("params")] for dataset_id, card in datasets],
                          sort_keys=True)
    first, last, seconds, n_tasks = conn.execute(
        "SELECT MIN(finished_at), MAX(finished_at), SUM(seconds), COUNT(*) FROM tasks").fetchone()
    results = {
        "schema_version": meta.get("schema_version"),
        "n_seeds": meta.get("n_seeds"),
        "configs_sha256": hashlib.sha256(meta["configs"].encode()).hexdigest() if "configs" in meta else None,
        "configs": sorted(json.loads(meta["configs"])) if "configs" in meta else [],
        "datasets_sha256": hashlib.sha256(identity.encode()).hexdigest(),
        "dataset_seeds": {dataset_id: json.loads(card).get("seed") for dataset_id, card in datasets},
        "tasks": n_tasks, "task_seconds": seconds,
        "first_task_finished": first, "last_task_finished": last,
    }
    return {"recorded": recorded, "results": results, "report_environment": environment()}


def _has_table(conn: sqlite3.Connection, name: str) -> bool:
    return conn.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name=?",
                        (name,)).fetchone() is not None
