"""Does MHLoss accelerate convergence? Iterations to reach a target, H heads against one.

A pair is one dataset trained with one head-tuning config twice at equal effective steps: plain
training (one head, two or more seeds) and MHLoss with H > 1 heads in the balanced reading (each
head steps as the single head does). For three quantities of the mean head, each tracked over the
checkpoints, the target is the value plain training reaches at its last checkpoint; the statistic is
the ratio of the iterations each run needs to reach it (log-interpolated between checkpoints;
plain / MHLoss, above 1 when MHLoss is faster):

- ``seed_spread``: the seed spread of the head direction, mean_k ‖u_k − ū‖² (``head_seed_spread``);
- ``margin_gap``: the certified margin γ minus the mean head's normalised margin, mean over seeds;
- ``train_loss``: the training loss of the prediction (the mean head), mean over seeds.

Per quantity: the median ratio over pairs with a bootstrap CI over datasets, and a verdict
("faster": the CI lies above 1; "slower": below; else "inconclusive"; "no data").
"""
from __future__ import annotations

import json
import math
import sqlite3
import warnings

import numpy as np
from scipy.stats import DegenerateDataWarning

from theory.stability import bootstrap_ci
from verify.seeding import run_seed
from verify.verdicts.db import fetch_dicts
from verify.verdicts.stats import CONFIDENCE, N_RESAMPLES

QUANTITIES = ("seed_spread", "margin_gap", "train_loss")


def iterations_to_reach(iterations: np.ndarray, values: np.ndarray, target: float) -> float:
    """The first iteration at which ``values`` (over increasing ``iterations``) is at most
    ``target``, interpolated linearly in log t between the checkpoints around it; inf if never."""
    iterations = np.asarray(iterations, dtype=np.float64)
    values = np.asarray(values, dtype=np.float64)
    reached = np.flatnonzero(values <= target)
    if not reached.size:
        return math.inf
    k = int(reached[0])
    if k == 0 or iterations[k - 1] <= 0:
        return float(iterations[k])
    before, after = values[k - 1], values[k]
    share = (before - target) / (before - after) if before > after else 1.0
    low, high = np.log(iterations[k - 1]), np.log(iterations[k])
    return float(np.exp(low + share * (high - low)))


def _curves(conn: sqlite3.Connection) -> dict[tuple, dict]:
    """(dataset, config, stabiliser, params) -> iterations and the three quantities' curves."""
    rows = fetch_dicts(conn, """
        SELECT dataset_id, config, stabiliser, stabiliser_params, iteration, n_heads,
               AVG(head_seed_spread) AS seed_spread, AVG(margin - normalised_margin) AS margin_gap,
               AVG(train_loss) AS train_loss, COUNT(DISTINCT seed) AS n_seeds
        FROM runs
        WHERE left_out IS NULL AND setting = 'head' AND diverged = 0
              AND stabiliser IN ('none', 'mhloss')
        GROUP BY dataset_id, config, stabiliser, stabiliser_params, iteration
        ORDER BY iteration""")
    curves: dict[tuple, dict] = {}
    for row in rows:
        key = (row["dataset_id"], row["config"], row["stabiliser"], row["stabiliser_params"])
        curve = curves.setdefault(key, {"iterations": [], "n_heads": row["n_heads"],
                                        "n_seeds": row["n_seeds"], **{q: [] for q in QUANTITIES}})
        curve["iterations"].append(row["iteration"])
        for quantity in QUANTITIES:
            curve[quantity].append(np.nan if row[quantity] is None else row[quantity])
    return curves


def _balanced(params: str) -> bool:
    values = json.loads(params or "{}")
    return values.get("reduction") == "balanced" and values.get("curvature", "trained") == "trained"


def mhloss_convergence(conn: sqlite3.Connection) -> dict:
    """Iterations to reach plain training's final seed spread, margin gap and training loss: MHLoss
    (balanced, H > 1) against plain training at equal effective steps (module docstring).

    Returns
    -------
    dict
        quantity -> {"n_pairs", "n_datasets", "configs", "n_heads", "median_ratio" ({value, low,
        high} or None), "verdict", "pairs": [{dataset_id, config, n_heads, target, plain, mhloss,
        ratio}]}.
    """
    curves = _curves(conn)
    plain = {(d, c): curve for (d, c, s, _), curve in curves.items()
             if s == "none" and curve["n_seeds"] >= 2}
    result = {}
    for quantity in QUANTITIES:
        pairs = []
        for (dataset, config, name, params), curve in sorted(curves.items()):
            reference = plain.get((dataset, config))
            if name != "mhloss" or reference is None or curve["n_heads"] <= 1 or not _balanced(params):
                continue
            values = np.asarray(reference[quantity])
            if not np.isfinite(values[-1]):
                continue
            target = float(values[-1])
            plain_t = iterations_to_reach(reference["iterations"], values, target)
            heads_t = iterations_to_reach(curve["iterations"], curve[quantity], target)
            pairs.append({"dataset_id": dataset, "config": config, "n_heads": curve["n_heads"],
                          "target": target, "plain": plain_t, "mhloss": heads_t,
                          "ratio": plain_t / heads_t if heads_t > 0 else math.inf})
        result[quantity] = _summary(quantity, pairs)
    return result


def _summary(quantity: str, pairs: list[dict]) -> dict:
    datasets = sorted({pair["dataset_id"] for pair in pairs})
    by_dataset = np.array([np.median([p["ratio"] for p in pairs if p["dataset_id"] == dataset])
                           for dataset in datasets])
    median, verdict = None, "no data"
    if by_dataset.size >= 2 and np.isfinite(by_dataset).all():
        # A run that never reaches the target has ratio 0; the median's percentile interval
        # takes it as it is (no logarithm).
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DegenerateDataWarning)
            warnings.simplefilter("ignore", RuntimeWarning)
            interval = bootstrap_ci(by_dataset, np.median, confidence=CONFIDENCE,
                                    n_resamples=N_RESAMPLES,
                                    random_state=run_seed("verdicts", "mhloss_convergence", quantity))
        median = {"value": float(np.median([p["ratio"] for p in pairs])),
                  "low": float(interval.low), "high": float(interval.high)}
        verdict = ("faster" if median["low"] > 1 else "slower" if median["high"] < 1
                   else "inconclusive")
    return {"n_pairs": len(pairs), "n_datasets": len(datasets),
            "configs": sorted({pair["config"] for pair in pairs}),
            "n_heads": sorted({pair["n_heads"] for pair in pairs}),
            "median_ratio": median, "verdict": verdict, "pairs": pairs}
