"""T1 — stabilisers × dataset groups: test accuracy, failed-run rate and leave-one-out stability.

Columns are dataset groups (task family · training config: the kind, and for the deep tasks their
teacher, so the SURT null control has its own column); a column holds only the datasets on which two
or more stabiliser variants were run with that config, so it compares stabilisers on the same
datasets and settings. Rows are stabilisers with their parameters. All numbers are at each task's
final checkpoint.

* Test accuracy of the models trained on S: per dataset, the mean and the standard deviation
  (ddof = 1) over seeds; the cell is the mean over datasets of each ("mean ± std over seeds").
* Failed-run rate: the fraction of those models (all seeds and datasets) that diverged or ended
  at or below the majority-class accuracy.
* Leave-one-out stability: E_i of the setting's measure (head: ``head_direction_stability``, full:
  ``parameter_stability``) per seed, then mean ± std over seeds per dataset, averaged over datasets.
  A seed's E_i is kept by the verdicts' estimator rule only (``complete`` of
  :func:`figures.data.loo_units`: its left-out estimate is not partial and no left-out model
  diverged or lacks the measure); the cell counts the seeds dropped by it ("k/n seeds dropped"),
  since its mean is then over the seeds whose left-out models all stayed stable, not over every
  seed (the paired verdicts compare a stabiliser with plain training on matched seeds).

Written as ``t1_stabilisers.csv`` (one row per cell) and ``t1_stabilisers.md``.
"""
from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np

from figures.data import (SETTING_MEASURE, Frame, MissingData, compared_datasets, full_units,
                          loo_units, with_family, with_stabiliser_label)
from figures.output import Drawn, write_csv, write_text

KEY = "T1"
STEM = "t1_stabilisers"
PRODUCED_BY = ("stabiliser sweeps: one training config run with two or more stabilisers "
               "(e.g. `ftstab verify` with --stabilisers), ideally over several seeds")
METRICS = (("accuracy", "Test accuracy (models trained on S)"),
           ("failed_rate", "Failed-run rate (diverged or ≤ majority-class accuracy)"),
           ("stability", "Leave-one-out stability E_i (head: direction, full: parameters)"))


def _seed_mean_std(frame: Frame, column: str) -> tuple[float, float]:
    """Mean over datasets of the per-dataset mean and std (ddof = 1) over seeds of ``column``."""
    means, stds = [], []
    for _, group in frame.groups("dataset_id"):
        values = group[column][np.isfinite(group[column])]
        if values.size:
            means.append(values.mean())
        if values.size >= 2:
            stds.append(values.std(ddof=1))
    return (float(np.mean(means)) if means else np.nan, float(np.mean(stds)) if stds else np.nan)


def table_rows(connection: sqlite3.Connection) -> list[dict]:
    """One row per (dataset group, stabiliser): the numbers T1 shows."""
    full = with_stabiliser_label(full_units(connection))
    loo = {setting: with_stabiliser_label(loo_units(connection, measure=measure, where="r.setting = ?",
                                        params=(setting,)))
           for setting, measure in SETTING_MEASURE.items()}
    full = with_family(connection, full)
    rows = []
    for (family, setting, config), group in full.groups("family", "setting", "config"):
        group = compared_datasets(group)
        if not len(group):
            continue
        kind = group["kind"][0]
        stability_units = loo[setting].filter(
            (loo[setting]["config"] == config)
            & np.isin(loo[setting]["dataset_id"], np.unique(group["dataset_id"])))
        for (label,), runs in group.groups("label"):
            accuracy, accuracy_std = _seed_mean_std(runs, "test_accuracy")
            below = np.isfinite(runs["test_accuracy"]) & (
                runs["test_accuracy"] <= runs["majority_accuracy"])
            failed = (runs["diverged"] == 1) | below
            mine = stability_units.filter(stability_units["label"] == label)
            kept = mine["complete"] == 1
            stability, stability_std = _seed_mean_std(mine.filter(kept), "measured")
            rows.append({"group": f"{family} · {config}", "kind": kind, "setting": setting,
                         "config": config, "stabiliser": label,
                         "n_datasets": len(np.unique(runs["dataset_id"])),
                         "n_seeds": len(np.unique(runs["seed"])), "accuracy": accuracy,
                         "accuracy_std": accuracy_std,
                         "failed_rate": float(failed.mean()), "failed_runs": int(failed.sum()),
                         "n_runs": len(runs), "stability_measure": SETTING_MEASURE[setting],
                         "stability": stability, "stability_std": stability_std,
                         "stability_seeds": int(kept.sum()),
                         "stability_dropped": int((~kept).sum())})
    return rows


def _cell(row: dict | None, metric: str) -> str:
    if row is None:
        return "—"
    dropped = row.get(f"{metric}_dropped", 0)
    note = f" ({dropped}/{dropped + row[f'{metric}_seeds']} seeds dropped)" if dropped else ""
    if not np.isfinite(row[metric]):
        return "—" + note
    if metric == "failed_rate":
        return f"{100 * row[metric]:.0f}% ({row['failed_runs']}/{row['n_runs']})"
    std = row[f"{metric}_std"]
    spread = f" ± {std:.3g}" if np.isfinite(std) else " (1 seed)"
    return f"{row[metric]:.3g}{spread}{note}"


def markdown(rows: list[dict]) -> str:
    """T1 as Markdown: one table per metric, stabilisers × dataset groups."""
    groups = list(dict.fromkeys(row["group"] for row in rows))
    labels = sorted({row["stabiliser"] for row in rows}, key=lambda label: (label != "none", label))
    cells = {(row["group"], row["stabiliser"]): row for row in rows}
    lines = ["# T1 · Stabilisers × dataset groups", "",
             "Final checkpoint. Accuracy and stability: mean ± std over seeds (ddof = 1), each "
             "computed per dataset and averaged over the group's datasets. Failed: diverged or at "
             "or below the majority-class accuracy. Columns: task family (kind, and the deep "
             "tasks' teacher) · training config. Stability: a seed whose left-out estimate is partial or whose left-out models partly "
             "diverged has no E_i; \"k/n seeds dropped\" counts them (seeds over datasets).", ""]
    for metric, heading in METRICS:
        lines += [f"## {heading}", "", "| stabiliser | " + " | ".join(groups) + " |",
                  "|---" * (len(groups) + 1) + "|"]
        lines += ["| " + " | ".join([label] + [_cell(cells.get((group, label)), metric)
                                             for group in groups]) + " |" for label in labels]
        lines.append("")
    return "\n".join(lines)


def render(connection: sqlite3.Connection, out_dir: Path) -> Drawn:
    """Write T1 into ``out_dir``."""
    rows = table_rows(connection)
    if not rows:
        raise MissingData("no training config was run with two or more stabilisers")
    files = (write_csv(out_dir / f"{STEM}.csv", rows),
             write_text(out_dir / f"{STEM}.md", markdown(rows)))
    return Drawn(key=KEY, stem=STEM, title="stabilisers × dataset groups: accuracy, "
                 "failed-run rate, leave-one-out stability (mean ± std over seeds)", files=files)
