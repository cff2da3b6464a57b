"""F12 — per real text task, the spread of final test accuracy over seeds, one box per method.

One panel per (training config, task); a box per method over its seeds (whiskers 1.5 IQR, every seed
drawn as a dot), the dashed line the majority-class accuracy (at or below it a run has failed).
Written as ``f12_real_seeds.png``/``.pdf`` and ``f12_real_seeds.csv`` (one row per plotted seed).
"""
from __future__ import annotations

import sqlite3
from collections import defaultdict
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from figures import real_runs as source
from figures.output import Drawn, save_figure, write_csv
from figures.real_runs import METHOD_LABEL, method_sort_key, real_runs
from figures.style import FONT_SIZE, colour

KEY = "F12"
STEM = "f12_real_seeds"
PRODUCED_BY = source.PRODUCED_BY
N_COLUMNS = 4


def render(connection: sqlite3.Connection, out_dir: Path) -> Drawn:
    """Draw F12 into ``out_dir``."""
    runs = real_runs(connection)
    panels = defaultdict(list)
    for run in runs:
        panels[(run.config, run.task)].append(run)
    keys = sorted(panels)
    n_rows = -(-len(keys) // N_COLUMNS)
    n_columns = min(N_COLUMNS, len(keys))
    figure = Figure(figsize=(max(3.6 * n_columns, 9.0), 3.2 * n_rows + 0.6), layout="constrained")
    axes = figure.subplots(n_rows, n_columns, squeeze=False).ravel()
    for unused in axes[len(keys):]:
        unused.remove()
    csv_rows = []
    for ax, key in zip(axes, keys):
        config, task = key
        methods = sorted({run.method for run in panels[key]}, key=method_sort_key)
        values = []
        for position, method in enumerate(methods):
            cell = sorted((run for run in panels[key] if run.method == method), key=lambda run: run.seed)
            accuracies = np.array([run.accuracy for run in cell])
            values.append(accuracies[np.isfinite(accuracies)])
            ax.scatter(np.full(len(accuracies), position + 1.0) + np.linspace(-0.12, 0.12, len(accuracies)),
                       accuracies, s=9, color=colour(position), zorder=3)
            csv_rows += [{"figure": KEY, "config": config, "task": task, "method": method,
                          "seed": run.seed, "test_accuracy": run.accuracy,
                          "majority_accuracy": run.majority, "failed": int(run.failed)} for run in cell]
        ax.boxplot(values, widths=0.55, showfliers=False)
        ax.axhline(panels[key][0].majority, color="0.4", linestyle="--", linewidth=1.0)
        ax.set_xticks(range(1, len(methods) + 1),
                      [METHOD_LABEL.get(method, method) for method in methods], rotation=60,
                      fontsize=FONT_SIZE - 1)
        ax.set_title(task if len({k[0] for k in keys}) == 1 else f"{task}\n{config}", fontsize=FONT_SIZE)
        ax.set_ylabel("test accuracy", fontsize=FONT_SIZE)
        ax.tick_params(labelsize=FONT_SIZE - 1)
        ax.grid(True, axis="y", alpha=0.3)
    configs = sorted({k[0] for k in keys})
    figure.suptitle(f"{KEY} · final test accuracy over seeds per method (dashed: majority class)"
                    + (f"\n{configs[0]}" if len(configs) == 1 else ""), fontsize=FONT_SIZE + 1)
    files = save_figure(figure, out_dir, STEM)
    files.append(write_csv(out_dir / f"{STEM}.csv", csv_rows))
    return Drawn(key=KEY, stem=STEM, title="final test accuracy over seeds per method, per real task",
                 files=tuple(files))
