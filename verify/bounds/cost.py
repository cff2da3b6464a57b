"""How many CPU seconds a bound job will take, predicted from what the results file holds.

A bounds step runs its jobs in its own process when they are too few to pay for a worker pool's
start-up (:func:`verify.sweep.choice.choose_executor`). A job evaluates its pending bounds on the
task's bounded left-out rows (``runs.bound_weight`` set); per trainer its cost is modelled as

    seconds = FIXED + ROW * rows * bounds

(an MLP's bounds run Lanczos on each model's Hessian: a larger ROW). The constants are CPU
seconds of one thread, fitted by ``bench/task_cost.py --bounds DIR`` (non-negative least squares, each job
weighted by 1/sqrt(seconds), on every job of the smoke sweep, every config, 10 seeds: 112 jobs) on
this project's 2-core development machine, 2026-12-02. Only their order of magnitude matters: the
rule compares their sum with a pool's start-up of about 2 s.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from verify.run.task import trainer_of

# trainer -> (FIXED, ROW): bench/task_cost.py --bounds (see the module docstring).
# Measured 112 jobs, 6.7 CPU s; predicted 4.3 s (per job 0.07x-3.6x, median 0.7x-1.0x by trainer).
BOUND_CONSTANTS: dict[str, tuple[float, float]] = {
    "head": (0.00444, 6.63e-05),
    "quadratic": (0.05, 0.0),
    "mlp": (0.00352, 2.97e-05),
}


def bounded_rows(store: Any) -> dict[str, int]:
    """``task_key -> rows the bounds are evaluated on`` (left-out rows with a bound weight)."""
    return {row["task_key"]: int(row["n"]) for row in store.query(
        "SELECT task_key, COUNT(*) AS n FROM runs WHERE left_out IS NOT NULL "
        "AND bound_weight IS NOT NULL GROUP BY task_key")}


def job_trainer(job: Any, configs: Mapping[str, Mapping[str, Any]],
                cards: Mapping[str, Mapping[str, Any]]) -> str:
    """The trainer of a bound job's task (:func:`verify.run.task.trainer_of` of its stored config
    and dataset card): "head", "quadratic" or "mlp"."""
    config = configs[job.task_key.split("|")[1]]
    return trainer_of(config["setting"], cards.get(job.dataset_id, {}).get("kind", ""))


def job_seconds(trainer: str, rows: int, n_bounds: int,
                constants: Mapping[str, tuple[float, float]] = BOUND_CONSTANTS) -> float:
    """Predicted CPU seconds of evaluating ``n_bounds`` bounds on ``rows`` rows of one task."""
    fixed, row = constants[trainer]
    return fixed + row * rows * n_bounds
