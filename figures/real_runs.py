"""The final test accuracy of every full fine-tuning run of the real text suites, by task and method.

Shared by T2 and F12: runs on all of S (``left_out IS NULL``) at each task's last checkpoint, of the
practitioners' protocol (configs ``real_ft_*``), with the task's name from the dataset card. A run
has failed when it diverged or ends at or below the majority-class accuracy of its test set; failed
runs stay in every number (their accuracy is what it is) and are counted separately.
"""
from __future__ import annotations

import sqlite3
from dataclasses import dataclass

import numpy as np

from figures.data import MissingData

METHOD_ORDER = ("none", "mmr", "mhloss", "surt", "l2sp", "mixout", "llrd", "reinit_top", "small_lr_long")
METHOD_LABEL = {"none": "plain", "mmr": "MMR", "mhloss": "MHLoss", "surt": "SURT", "l2sp": "L2-SP",
                "mixout": "Mixout", "llrd": "LLRD", "reinit_top": "re-init", "small_lr_long": "small lr × long"}
PRODUCED_BY = "`ftstab real --suite NAME` (full fine-tuning of text encoders under the practitioners' protocol)"


@dataclass(frozen=True)
class Run:
    config: str
    task: str
    method: str
    seed: int
    accuracy: float
    majority: float
    diverged: bool

    @property
    def failed(self) -> bool:
        return self.diverged or not np.isfinite(self.accuracy) or self.accuracy <= self.majority + 1e-12


def method_sort_key(method: str) -> tuple[int, str]:
    return (METHOD_ORDER.index(method) if method in METHOD_ORDER else len(METHOD_ORDER), method)


def real_runs(connection: sqlite3.Connection) -> list[Run]:
    """Every such run; raises MissingData when there is none."""
    sql = ("SELECT r.config, json_extract(d.card, '$.params.task'), r.stabiliser, r.seed, r.test_accuracy, "
           "r.majority_accuracy, r.diverged FROM runs AS r "
           "JOIN (SELECT task_key, MAX(iteration) AS last FROM runs GROUP BY task_key) AS f "
           "ON f.task_key = r.task_key AND r.iteration = f.last "
           "JOIN datasets AS d ON d.dataset_id = r.dataset_id "
           "WHERE r.left_out IS NULL AND r.kind = 'real-text' AND r.setting = 'full' "
           "AND r.config LIKE 'real_ft_%' ORDER BY r.config, r.dataset_id, r.stabiliser, r.seed")
    runs = [Run(config, task, method, int(seed), np.nan if accuracy is None else float(accuracy),
                float(majority), bool(diverged))
            for config, task, method, seed, accuracy, majority, diverged in connection.execute(sql)]
    if not runs:
        raise MissingData("no full fine-tuning runs of the real text suites")
    return runs
