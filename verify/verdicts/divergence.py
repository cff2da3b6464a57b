"""Does gradient descent diverge exactly where the theory says (eta > 2/beta on a quadratic)?

On the least-squares tasks full-batch GD iterates w_t - w* = (I - eta H)^t (w0 - w*): they diverge
when eta * beta > 2 (the top eigen-direction of H is amplified by |1 - eta beta| > 1; w0 - w* has a
component along it almost surely) and converge when eta * beta < 2 (docs/theory.md, Theorem F's
corollaries). Each model trained on all of S is checked against that prediction with beta = the
exact largest eigenvalue of H_S from the dataset card.
"""
from __future__ import annotations

import json
import sqlite3

from verify.verdicts.db import FINAL_CHECKPOINT_CTE, fetch_dicts

# Too close to the edge to predict within a finite number of steps.
EDGE_BAND = 0.02


def divergence_verdict(conn: sqlite3.Connection) -> dict:
    """Compare recorded divergence with the eta * beta > 2 prediction on quadratic tasks.

    Parameters
    ----------
    conn : sqlite3.Connection
        A results database (see ``verify.verdicts.db.open_results``).

    Returns
    -------
    dict
        ``runs`` (models checked), ``predicted_diverged``, ``diverged``, ``mismatches`` (list of
        run coordinates where the record disagrees with the prediction), ``edge`` (runs within
        ``EDGE_BAND`` of eta * beta = 2, not judged) and ``verdict`` ("pass" | "fail" | "no data").
    """
    rows = fetch_dicts(conn, f"""{FINAL_CHECKPOINT_CTE}
        SELECT r.run_id, r.dataset_id, r.config, r.stabiliser, r.stabiliser_params, r.seed, r.lr,
               r.diverged, r.diverged_at, d.card
        FROM runs r JOIN final f ON f.task_key = r.task_key AND f.iteration = r.iteration
        JOIN datasets d ON d.dataset_id = r.dataset_id
        WHERE r.kind = 'quadratic' AND r.setting = 'full' AND r.left_out IS NULL
          AND r.stabiliser = 'none'""")
    checked, edge, mismatches = 0, 0, []
    predicted_total = diverged_total = 0
    for row in rows:
        beta = json.loads(row.pop("card")).get("beta")
        if beta is None or row["lr"] is None:
            continue
        product = row["lr"] * beta
        if abs(product - 2.0) <= EDGE_BAND * 2.0:
            edge += 1
            continue
        checked += 1
        predicted = product > 2.0
        predicted_total += predicted
        diverged_total += bool(row["diverged"])
        if predicted != bool(row["diverged"]):
            mismatches.append({**row, "lr_times_beta": product, "predicted_diverged": predicted})
    verdict = "no data" if checked == 0 else ("pass" if not mismatches else "fail")
    return {"runs": checked, "predicted_diverged": predicted_total, "diverged": diverged_total,
            "edge": edge, "mismatches": mismatches[:10], "n_mismatches": len(mismatches),
            "verdict": verdict}
