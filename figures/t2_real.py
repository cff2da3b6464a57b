"""T2 — real text tasks × methods: test accuracy (mean ± std over seeds), failed-run rate, and the
paired verdict of each method against plain fine-tuning.

One table per training config (encoder, learning rate, steps, ...): rows are methods, columns the
tasks, each cell the mean ± std (ddof = 1) over seeds of the final test accuracy, with the count of
failed runs (diverged, or at or below the majority-class accuracy) when there are any. Failed runs are
never dropped from the mean; the failed-run rate is reported beside it.

Paired verdicts against plain: for each task, the method's and plain's runs share the task's data
and seed indices. Two effects, each with a 95% bootstrap interval over tasks and, within each
resampled task, over seeds (hierarchical, 2,000 resamples, seeded):

* Δ mean accuracy: mean over tasks of (method mean − plain mean);
* Δ seed std: mean over tasks of (method std − plain std) — negative is more stable across seeds.

A verdict is ``better``/``worse`` (``more stable``/``less stable``) when the interval excludes 0, else
``no clear effect``. Written as ``t2_real.csv`` (one row per config × method × task, with the
verdict rows, task ``all``) and ``t2_real.md``.
"""
from __future__ import annotations

import sqlite3
import warnings
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from figures.output import Drawn, write_csv, write_text
from figures import real_runs as source
from figures.real_runs import METHOD_LABEL, method_sort_key, real_runs
from verify.seeding import run_seed

KEY = "T2"
STEM = "t2_real"
PRODUCED_BY = source.PRODUCED_BY
N_RESAMPLES = 2000
CONFIDENCE = 0.95


def _std(values: np.ndarray) -> float:
    return float(values.std(ddof=1)) if values.size >= 2 else np.nan


def paired_bootstrap(method: dict[str, np.ndarray], plain: dict[str, np.ndarray], *,
                     seed: int, n_resamples: int = N_RESAMPLES) -> dict[str, tuple[float, float, float]]:
    """Estimates and 95% intervals of Δ mean accuracy and Δ seed std (method − plain).

    ``method`` and ``plain`` map task -> accuracies by seed index (aligned). Tasks are resampled with
    replacement, then seed indices within each task (the same indices for both: the pairing).
    """
    tasks = sorted(set(method) & set(plain))
    rng = np.random.default_rng(seed)

    def effects(choice_tasks, choice_seeds):
        d_mean, d_std = [], []
        for task, seeds in zip(choice_tasks, choice_seeds):
            a, b = method[task][seeds], plain[task][seeds]
            d_mean.append(np.nanmean(a) - np.nanmean(b))
            d_std.append(_std(a[np.isfinite(a)]) - _std(b[np.isfinite(b)]))
        return np.nanmean(d_mean), np.nanmean(d_std) if np.isfinite(d_std).any() else np.nan

    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a resample of only diverged runs: NaN
        point = effects(tasks, [np.arange(len(method[t])) for t in tasks])
        samples = []
        for _ in range(n_resamples):
            chosen = [tasks[i] for i in rng.integers(len(tasks), size=len(tasks))]
            samples.append(effects(chosen, [rng.integers(len(method[t]), size=len(method[t])) for t in chosen]))
    resampled = np.asarray(samples)
    tail = 100 * (1 - CONFIDENCE) / 2
    out = {}
    for index, name in enumerate(("mean", "std")):
        finite = resampled[:, index][np.isfinite(resampled[:, index])]
        low, high = (np.percentile(finite, [tail, 100 - tail]) if finite.size else (np.nan, np.nan))
        out[name] = (float(point[index]), float(low), float(high))
    return out


def _verdict(estimate: tuple[float, float, float], better: str, worse: str) -> str:
    _, low, high = estimate
    if not (np.isfinite(low) and np.isfinite(high)):
        return "no estimate"
    return better if low > 0 else worse if high < 0 else "no clear effect"


def table_rows(connection: sqlite3.Connection) -> list[dict]:
    """Cells (config × method × task) and verdict rows (task ``all``)."""
    runs = real_runs(connection)
    by_cell = defaultdict(list)
    for run in runs:
        by_cell[(run.config, run.method, run.task)].append(run)
    rows: list[dict[str, Any]] = []
    configs = sorted({run.config for run in runs})
    for config in configs:
        methods = sorted({m for c, m, _ in by_cell if c == config}, key=method_sort_key)
        tasks = sorted({t for c, _, t in by_cell if c == config})
        accuracy = {}
        for method in methods:
            for task in tasks:
                cell = sorted(by_cell.get((config, method, task), []), key=lambda run: run.seed)
                if not cell:
                    continue
                values = np.array([run.accuracy for run in cell])
                accuracy[(method, task)] = values
                finite = values[np.isfinite(values)]
                failed = sum(run.failed for run in cell)
                rows.append({"config": config, "method": method, "task": task, "n_seeds": len(cell),
                             "accuracy_mean": float(finite.mean()) if finite.size else np.nan,
                             "accuracy_std": _std(finite), "failed_runs": failed,
                             "failed_rate": failed / len(cell),
                             "majority_accuracy": cell[0].majority,
                             "delta_mean": np.nan, "delta_mean_low": np.nan, "delta_mean_high": np.nan,
                             "verdict_mean": "", "delta_std": np.nan, "delta_std_low": np.nan,
                             "delta_std_high": np.nan, "verdict_std": ""})
        for method in methods:
            cells = [row for row in rows if row["config"] == config and row["method"] == method]
            n_runs = sum(row["n_seeds"] for row in cells)
            failed = sum(row["failed_runs"] for row in cells)
            verdict_row = {"config": config, "method": method, "task": "all", "n_seeds": n_runs,
                           "accuracy_mean": float(np.nanmean([row["accuracy_mean"] for row in cells])),
                           "accuracy_std": float(np.nanmean([row["accuracy_std"] for row in cells]))
                           if any(np.isfinite(row["accuracy_std"]) for row in cells) else np.nan,
                           "failed_runs": failed, "failed_rate": failed / n_runs if n_runs else np.nan,
                           "majority_accuracy": np.nan}
            paired = {task: accuracy[(method, task)] for task in tasks if (method, task) in accuracy
                      and ("none", task) in accuracy
                      and len(accuracy[(method, task)]) == len(accuracy[("none", task)])}
            estimates = None
            if method != "none" and paired:
                plain = {task: accuracy[("none", task)] for task in paired}
                estimates = paired_bootstrap(paired, plain, seed=run_seed("T2", config, method))
            for name, better, worse in (("mean", "better", "worse"), ("std", "less stable", "more stable")):
                value, low, high = estimates[name] if estimates else (np.nan, np.nan, np.nan)
                verdict_row.update({f"delta_{name}": value, f"delta_{name}_low": low,
                                    f"delta_{name}_high": high,
                                    f"verdict_{name}": _verdict((value, low, high), better, worse)
                                    if estimates else ""})
            rows.append(verdict_row)
    return rows


def _cell(row: dict | None) -> str:
    if row is None:
        return "—"
    mean, std = row["accuracy_mean"], row["accuracy_std"]
    text = "—" if not np.isfinite(mean) else f"{mean:.3f}" + (f" ± {std:.3f}" if np.isfinite(std) else "")
    if row["failed_runs"]:
        text += f" ({row['failed_runs']}✗)"
    return text


def _interval(row: dict, name: str) -> str:
    value, low, high = row[f"delta_{name}"], row[f"delta_{name}_low"], row[f"delta_{name}_high"]
    if not np.isfinite(value):
        return "—"
    return f"{value:+.3f} [{low:+.3f}, {high:+.3f}] {row[f'verdict_{name}']}"


def markdown(rows: list[dict]) -> str:
    lines = ["# T2 · Real text tasks × methods", "",
             "Final test accuracy, mean ± std over seeds (ddof = 1); (k✗): k failed runs (diverged, or "
             "at or below the majority-class accuracy), kept in the mean. Paired verdicts against "
             "plain: Δ = method − plain, 95% hierarchical bootstrap interval over tasks and seeds.", ""]
    for config in dict.fromkeys(row["config"] for row in rows):
        cells = {(row["method"], row["task"]): row for row in rows if row["config"] == config}
        tasks = sorted({task for _, task in cells if task != "all"})
        methods = sorted({method for method, _ in cells}, key=method_sort_key)
        lines += [f"## `{config}`", "",
                  "| method | " + " | ".join(tasks) + " | mean over tasks | failed | Δ mean acc. | Δ seed std |",
                  "|---" * (len(tasks) + 5) + "|"]
        for method in methods:
            summary = cells[(method, "all")]
            lines.append("| " + " | ".join(
                [METHOD_LABEL.get(method, method)] + [_cell(cells.get((method, task))) for task in tasks]
                + [_cell({**summary, "failed_runs": 0}),
                   f"{100 * summary['failed_rate']:.0f}% ({summary['failed_runs']}/{summary['n_seeds']})",
                   _interval(summary, "mean"), _interval(summary, "std")]) + " |")
        majority = {task: cells[("none", task)]["majority_accuracy"] for task in tasks if ("none", task) in cells}
        lines += ["", "Majority-class accuracy of each test set: "
                  + ", ".join(f"{task} {value:.3f}" for task, value in majority.items()) + ".", ""]
    return "\n".join(lines)


def render(connection: sqlite3.Connection, out_dir: Path) -> Drawn:
    """Write T2 into ``out_dir``."""
    rows = table_rows(connection)
    files = (write_csv(out_dir / f"{STEM}.csv", rows), write_text(out_dir / f"{STEM}.md", markdown(rows)))
    return Drawn(key=KEY, stem=STEM, title="real text tasks × methods: accuracy (mean ± std over seeds), "
                 "failed runs, paired verdicts against plain", files=files)
