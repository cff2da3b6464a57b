"""Does MHLoss accelerate convergence? Iterations to reach a target, H heads against one.

A pair is one dataset trained with one head-tuning config twice at equal effective steps: plain
training (one head) and MHLoss with H > 1 heads in the balanced reading (each head steps as the
single head does). For three quantities of the mean head, each tracked over the checkpoints, the
target is the value plain training reaches at its last checkpoint; the statistic is the ratio of
the iterations each run needs to reach it (log-interpolated between checkpoints; plain / MHLoss,
above 1 when MHLoss is faster):

- ``seed_spread``: the seed spread of the head direction, mean_k ‖u_k − ū‖² (``head_seed_spread``;
  NULL with fewer than two seeds);
- ``margin_gap``: the certified margin γ minus the mean head's normalised margin, mean over seeds;
- ``train_loss``: the training loss of the prediction (the mean head), mean over seeds.

**The target rule, and censored pairs.** A run "reaches" the target at the first checkpoint whose
value is at most the target. Plain training always reaches its own final value (at its last
checkpoint at the latest), so only the MHLoss side can fail to, and every pair has one status:

- ``measured``: both runs reach the target after their first checkpoint; the pair has a ratio;
- ``censored``: MHLoss never reaches it by its last checkpoint T (``mhloss`` is None,
  ``mhloss_after`` = T): it needs more than T iterations, so its ratio is below ``ratio_at_most``
  = plain / T and is otherwise unknown;
- ``reached at start``: MHLoss (or plain) is already at the target at iteration 0, where the
  log-interpolated count is 0 and the ratio is undefined;
- ``no target``: plain training's value at its last checkpoint is undefined (e.g. no seed spread
  with fewer than two seeds, or every seed diverged), so there is nothing to reach.

Every pair is listed in ``pairs`` with its status and each status is counted. A censored ratio
is an inequality (MHLoss was slower there than the bound says), so the verdict must hold for
every value it could take: dropping the censored pairs would judge MHLoss only where it reached
the target, a bias towards "faster". Per quantity, two readings of the same pairs, measured and
censored together: ``median_ratio`` gives every censored ratio the value 0 (the least favourable
to MHLoss) and ``median_ratio_if_censored_at_bound`` its bound ``ratio_at_most`` (the most
favourable; an unbounded one is +inf). Each is the median ratio with a percentile bootstrap CI over
datasets (each dataset's median over its pairs). The verdict is "faster" when the least favourable
reading's CI lies above 1, "slower" when the most favourable reading's CI lies below 1, else
"inconclusive"; "no data" with fewer than two datasets with a measured or censored pair. Without
censored pairs the two readings are one. ``censored_ratio_at_most`` is the largest bound.
"""
from __future__ import annotations

import json
import math
import sqlite3
import warnings
from typing import Any

import numpy as np
from scipy.stats import DegenerateDataWarning

from theory.stability import bootstrap_ci
from verify.seeding import run_seed
from verify.verdicts.db import fetch_dicts
from verify.verdicts.stats import CONFIDENCE, N_RESAMPLES

QUANTITIES = ("seed_spread", "margin_gap", "train_loss")


def iterations_to_reach(iterations: np.ndarray, values: np.ndarray, target: float) -> float:
    """The first iteration at which ``values`` (over increasing ``iterations``) is at most
    ``target``, interpolated linearly in log t between the checkpoints around it (undefined
    values never reach it); inf if never."""
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


MEASURED, CENSORED, AT_START, NO_TARGET = "measured", "censored", "reached at start", "no target"
STATUSES = (MEASURED, CENSORED, AT_START, NO_TARGET)


def pair_outcome(plain: dict, mhloss: dict, quantity: str) -> dict:
    """One pair's target, iterations, ratio and status (module docstring: the target rule).

    Parameters
    ----------
    plain, mhloss : dict
        Curves with ``iterations`` and ``quantity``'s values over them.
    quantity : str

    Returns
    -------
    dict
        ``status`` (one of :data:`STATUSES`), ``target``, ``plain`` and ``mhloss`` (iterations to
        reach it, None where not reached or undefined), ``ratio`` (plain / MHLoss, measured pairs
        only), ``mhloss_after`` and ``ratio_at_most`` (censored pairs only).
    """
    values = np.asarray(plain[quantity], dtype=np.float64)
    outcome: dict[str, Any] = {"status": NO_TARGET, "target": None, "plain": None, "mhloss": None,
                               "ratio": None}
    if not values.size or not np.isfinite(values[-1]):
        return outcome
    target = float(values[-1])
    plain_t = iterations_to_reach(plain["iterations"], values, target)
    heads_t = iterations_to_reach(mhloss["iterations"], mhloss[quantity], target)
    outcome.update(target=target, plain=plain_t)
    if math.isinf(heads_t):
        last = float(max(mhloss["iterations"]))
        return {**outcome, "status": CENSORED, "mhloss_after": last,
                "ratio_at_most": plain_t / last if last > 0 else None}
    outcome["mhloss"] = heads_t
    if heads_t <= 0 or plain_t <= 0:
        return {**outcome, "status": AT_START}
    return {**outcome, "status": MEASURED, "ratio": plain_t / heads_t}


def _curves(conn: sqlite3.Connection) -> dict[tuple, dict]:
    """(dataset, config, stabiliser, params) -> iterations and the three quantities' curves."""
    rows = fetch_dicts(conn, """
        SELECT dataset_id, config, stabiliser, stabiliser_params, iteration, n_heads,
               AVG(head_seed_spread) AS seed_spread, AVG(margin - normalised_margin) AS margin_gap,
               AVG(train_loss) AS train_loss
        FROM runs
        WHERE left_out IS NULL AND setting = 'head' AND diverged = 0
              AND stabiliser IN ('none', 'mhloss')
        GROUP BY dataset_id, config, stabiliser, stabiliser_params, iteration
        ORDER BY iteration""")
    curves: dict[tuple, dict] = {}
    for row in rows:
        key = (row["dataset_id"], row["config"], row["stabiliser"], row["stabiliser_params"])
        curve = curves.setdefault(key, {"iterations": [], "n_heads": row["n_heads"],
                                        **{q: [] for q in QUANTITIES}})
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
        quantity -> {"n_pairs", "n_measured", "n_censored", "n_reached_at_start", "n_no_target",
        "n_datasets" (datasets with a measured or censored pair), "configs", "n_heads",
        "median_ratio" ({value, low, high}, censored ratios read as 0, or None),
        "median_ratio_if_censored_at_bound" (the same, censored ratios at their bound, or None),
        "censored_ratio_at_most" (the largest bound of the censored pairs' ratios, or None),
        "verdict", "pairs": [{dataset_id, config,
        n_heads, status, target, plain, mhloss, ratio, and for a censored pair mhloss_after and
        ratio_at_most}]}.
    """
    curves = _curves(conn)
    plain = {(d, c): curve for (d, c, s, _), curve in curves.items() if s == "none"}
    result = {}
    for quantity in QUANTITIES:
        pairs = []
        for (dataset, config, name, params), curve in sorted(curves.items()):
            reference = plain.get((dataset, config))
            if name != "mhloss" or reference is None or curve["n_heads"] <= 1 or not _balanced(params):
                continue
            pairs.append({"dataset_id": dataset, "config": config, "n_heads": curve["n_heads"],
                          **pair_outcome(reference, curve, quantity)})
        result[quantity] = _summary(quantity, pairs)
    return result


def _summary(quantity: str, pairs: list[dict]) -> dict:
    judged = [pair for pair in pairs if pair["status"] in (MEASURED, CENSORED)]
    datasets = sorted({pair["dataset_id"] for pair in judged})
    bounds = [pair["ratio_at_most"] for pair in pairs
              if pair["status"] == CENSORED and pair["ratio_at_most"] is not None]
    least, most, verdict = None, None, "no data"
    if len(datasets) >= 2:
        least = _median_ratio(quantity, judged, datasets, censored_at=lambda pair: 0.0)
        most = _median_ratio(quantity, judged, datasets, censored_at=lambda pair: (
            math.inf if pair["ratio_at_most"] is None else pair["ratio_at_most"]))
        verdict = ("faster" if least["low"] > 1 else "slower" if most["high"] < 1
                   else "inconclusive")
    counts = {status: sum(pair["status"] == status for pair in pairs) for status in STATUSES}
    return {"n_pairs": len(pairs), "n_measured": counts[MEASURED], "n_censored": counts[CENSORED],
            "n_reached_at_start": counts[AT_START], "n_no_target": counts[NO_TARGET],
            "n_datasets": len(datasets),
            "configs": sorted({pair["config"] for pair in pairs}),
            "n_heads": sorted({pair["n_heads"] for pair in pairs}),
            "median_ratio": least, "median_ratio_if_censored_at_bound": most,
            "censored_ratio_at_most": max(bounds) if bounds else None,
            "verdict": verdict, "pairs": pairs}


def _median_ratio(quantity: str, pairs: list[dict], datasets: list[str], *, censored_at) -> dict:
    """Median ratio over ``pairs`` and its bootstrap CI over datasets, a censored pair's ratio
    read as ``censored_at(pair)``."""
    ratio = {id(pair): pair["ratio"] if pair["status"] == MEASURED else censored_at(pair)
             for pair in pairs}
    by_dataset = np.array([np.median([ratio[id(p)] for p in pairs if p["dataset_id"] == dataset])
                           for dataset in datasets])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DegenerateDataWarning)
        warnings.simplefilter("ignore", RuntimeWarning)
        interval = bootstrap_ci(by_dataset, np.median, confidence=CONFIDENCE,
                                n_resamples=N_RESAMPLES,
                                random_state=run_seed("verdicts", "mhloss_convergence", quantity))
    return {"value": float(np.median(list(ratio.values()))),
            "low": float(interval.low), "high": float(interval.high)}
