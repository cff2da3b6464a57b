"""Where a main job's time went, from what it recorded: no re-run, no profiler.

Reads each results folder's ``provenance.json`` (``tasks.py main`` records every step's wall and CPU
seconds) and its ``tasks`` table (the seconds each task took in its worker, training, rows and
storage included; bounds are evaluated in a later step), and prints:

- the steps: wall and CPU seconds, and the share of the job's wall time;
- task seconds per trainer (head, least squares, MLP; the instability grid's deep MLPs apart) and
  per stabiliser, with the number of tasks;
- the ten most expensive training configs.

Usage::

    .venv/bin/python bench/main_job_times.py --from out/results [--from out/results ...]
    .venv/bin/python bench/main_job_times.py --from out/results --json

A folder still being written is read as it stands (the database is opened read-only).
"""
from __future__ import annotations

import argparse
import json
import sqlite3
import sys
from collections import defaultdict
from pathlib import Path

from verify.configs import CONFIGS, load_config_file

DEEP_KIND = "deep_mlp"


def trainer_of(config_name: str, kind: str, configs) -> str:
    """The trainer a task ran on (``verify.run.task.trainer_for``'s answer), deep MLPs apart."""
    config = configs.get(config_name)
    if config is None:
        return "unknown config"
    if config.setting == "head":
        return "head"
    if kind == "quadratic":
        return "least squares"
    return "deep MLP (instability grid)" if kind == DEEP_KIND else "MLP"


def read_folder(folder: Path) -> dict:
    """The steps recorded in ``folder/provenance.json`` (or none) and the folder's task rows."""
    database = folder / "results.sqlite"
    if not database.is_file():
        raise FileNotFoundError(f"--from: {folder} has no results.sqlite")
    provenance = folder / "provenance.json"
    steps = json.loads(provenance.read_text())["steps"] if provenance.is_file() else []
    connection = sqlite3.connect(f"file:{database}?mode=ro", uri=True)
    try:
        kinds = {dataset_id: json.loads(card)["kind"] for dataset_id, card in
                 connection.execute("SELECT dataset_id, card FROM datasets")}
        tasks = [{"dataset_id": dataset_id, "kind": kinds.get(dataset_id, "?"), "config": config,
                  "stabiliser": stabiliser, "seconds": seconds or 0.0}
                 for dataset_id, config, stabiliser, seconds in connection.execute(
                     "SELECT dataset_id, config, stabiliser, seconds FROM tasks "
                     "WHERE status = 'done'")]
    finally:
        connection.close()
    return {"folder": str(folder), "steps": steps, "tasks": tasks}


def summarise(folders: list[dict], configs: dict) -> dict:
    steps = [step for folder in folders for step in folder["steps"]]
    # A job's steps are recorded once (in its main results folder): the same command twice is one.
    steps = list({" ".join(step["command"]): step for step in steps}.values())
    total_wall = sum(step["wall_s"] for step in steps)
    by_trainer: dict[str, list[float]] = defaultdict(lambda: [0, 0.0])
    by_stabiliser: dict[str, list[float]] = defaultdict(lambda: [0, 0.0])
    by_config: dict[str, list[float]] = defaultdict(lambda: [0, 0.0])
    for folder in folders:
        for task in folder["tasks"]:
            for table, key in ((by_trainer, trainer_of(task["config"], task["kind"], configs)),
                               (by_stabiliser, task["stabiliser"]), (by_config, task["config"])):
                table[key][0] += 1
                table[key][1] += task["seconds"]

    def rows(table):
        return [{"name": name, "tasks": count, "task_seconds": round(seconds, 1)}
                for name, (count, seconds) in sorted(table.items(), key=lambda item: -item[1][1])]

    return {"steps": [{"command": f"{step['command'][1]} {_grid(step['command'])}".strip(),
                       "wall_s": step["wall_s"], "cpu_s": step["cpu_s"],
                       "share": step["wall_s"] / total_wall if total_wall else None}
                      for step in steps],
            "wall_s": total_wall, "cpu_s": sum(step["cpu_s"] for step in steps),
            "trainers": rows(by_trainer), "stabilisers": rows(by_stabiliser),
            "configs": rows(by_config)[:10]}


def _grid(command: list[str]) -> str:
    words = []
    for flag in ("--grid", "--stabilisers"):
        if flag in command:
            words.append(f"{flag} {command[command.index(flag) + 1]}")
    return " ".join(words)


def _table(title: str, header: tuple[str, ...], rows: list[tuple]) -> str:
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows)]
    lines = [title, "  ".join(str(cell).ljust(width) for cell, width in zip(header, widths))]
    lines += ["  ".join(str(cell).ljust(width) for cell, width in zip(row, widths)) for row in rows]
    return "\n".join(lines)


def render(summary: dict) -> str:
    parts = []
    if summary["steps"]:
        parts.append(_table("steps (wall and CPU seconds; CPU of the processes each step reaped)",
                            ("step", "wall_s", "cpu_s", "share"),
                            [(step["command"], f"{step['wall_s']:.0f}", f"{step['cpu_s']:.0f}",
                              f"{step['share']:.0%}") for step in summary["steps"]]
                            + [("total", f"{summary['wall_s']:.0f}", f"{summary['cpu_s']:.0f}", "")]))
    for key, title in (("trainers", "task seconds per trainer"),
                       ("stabilisers", "task seconds per stabiliser"),
                       ("configs", "the ten most expensive training configs")):
        parts.append(_table(title, ("name", "tasks", "task_s"),
                            [(row["name"], row["tasks"], f"{row['task_seconds']:.0f}")
                             for row in summary[key]]))
    return "\n\n".join(parts)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--from", dest="folders", action="append", required=True, type=Path,
                        metavar="DIR", help="a results folder (repeatable)")
    parser.add_argument("--configs", action="append", default=[], metavar="PATH.toml",
                        help="a user's own training configs the job ran (repeatable)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of tables")
    args = parser.parse_args(argv)
    configs = dict(CONFIGS)
    for path in args.configs:
        configs.update({config.name: config for config in load_config_file(path)})
    try:
        summary = summarise([read_folder(folder) for folder in args.folders], configs)
    except FileNotFoundError as error:
        print(f"main_job_times: {error}", file=sys.stderr)
        return 2
    print(json.dumps(summary, indent=2) if args.json else render(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
