"""How much memory a task needs at least, known before anything is allocated, and how much the
machine has: a sweep refuses a task that cannot fit instead of ending in a MemoryError.

The estimate is a lower bound: it counts only arrays every run of the task allocates (the models'
recorded weights at every checkpoint, the per-model scores or activations and optimiser state,
the sample masks, the dataset) and the result rows, never a guess of what else Python holds. A
task refused for its estimate could not have run.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from verify.run.task import Task, make_stabiliser, task_effects, trainer_for

FLOAT = 8  # bytes of a float64
# A result row as run_task returns it is a Python dict of ~40 columns (keys shared, values boxed):
# at least 900 B each (traced when rows had ~25 columns: about 1 KB per row; the sweep adds the card
# and task columns later, and the bound rows are made by the bounds step, not by the training task).
ROW_BYTES = 900


@dataclass(frozen=True)
class MemoryEstimate:
    """At least ``bytes`` are needed by a task of ``n_models`` models of ``n_params`` parameters."""

    bytes: int
    n_models: int
    n_params: int
    n_checkpoints: int

    def describe(self) -> str:
        return (f"at least {format_bytes(self.bytes)} ({self.n_models} models x {self.n_params} "
                f"parameters x {self.n_checkpoints} checkpoints)")


def format_bytes(n_bytes: float) -> str:
    """``1.5 GiB``-style size."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if abs(n_bytes) < 1024 or unit == "PiB":
            return f"{n_bytes:.0f} {unit}" if unit == "B" else f"{n_bytes:.1f} {unit}"
        n_bytes /= 1024
    raise AssertionError("unreachable")


def machine_memory() -> int:
    """Physical memory of this machine in bytes."""
    import psutil
    return int(psutil.virtual_memory().total)


def heads_per_model(task: Task) -> int:
    """Heads per model, as the task trains them (:func:`verify.run.task.task_effects`)."""
    return task_effects(task.config, make_stabiliser(task)).heads.n_heads


def mlp_size(params: Mapping[str, Any], n_outputs: int, n_heads: int) -> tuple[int, int]:
    """(parameters, hidden units) of the pre-trained MLP a dataset's parameters describe, with
    ``n_heads`` heads on its encoder."""
    hidden = (params["hidden"] if "hidden" in params
              else [params["width"]] * int(params.get("depth", 0)))  # the deep family's blocks
    widths = [int(params["n_features"]), *(int(h) for h in hidden)]
    encoder = sum((fan_in + 1) * fan_out for fan_in, fan_out in zip(widths, widths[1:]))
    return encoder + n_heads * (widths[-1] + 1) * n_outputs, sum(widths[1:])


def task_memory(task: Task, kind: str, params: Mapping[str, Any]) -> MemoryEstimate:
    """A lower bound on the memory of running ``task`` on a dataset of ``kind`` with generator
    parameters ``params`` (``n_samples``, ``n_features``, ``n_classes``, ``hidden``, ``n_test``)."""
    config = task.config
    n = (int(params["n_samples"]) if "n_samples" in params
         else int(params["n_per_class"]) * max(2, int(params.get("n_classes", 2))))
    d = int(params["n_features"])
    n_test = int(params.get("n_test", 0))
    n_classes = int(params.get("n_classes", 0) or 0)
    n_outputs = n_classes if n_classes > 2 else 1
    # Every sample is left out where n <= exact_left_out_up_to (verify.run.layout.choose_left_out).
    left_out = n if n <= max(config.exact_left_out_up_to, config.max_left_out) else config.max_left_out
    n_models = len(task.seeds) * (1 + left_out)
    n_checkpoints = len(config.checkpoints()) + 1  # with the initial weights
    heads = heads_per_model(task)
    trainer = trainer_for(config, kind)
    data = (n + n_test) * (d + 1) * FLOAT
    masks = n_models * n * FLOAT
    if trainer == "mlp":
        n_params, hidden = mlp_size(params, n_outputs, heads)
        # every model's weights and gradients, and its layers' activations on the batch
        batch = min(n, config.batch_size or n)
        working = n_models * (2 * n_params + batch * hidden) * FLOAT
    else:
        n_params = heads * n_outputs * d if trainer == "head" else d
        # each model's own curvature (the smoothness of its training set is a d x d matrix), and
        # for heads the scores of every sample under every model and head
        working = n_models * (d * d + (n * heads * n_outputs if trainer == "head" else 0)) * FLOAT
    recorded = n_checkpoints * n_models * n_params * FLOAT
    rows = n_models * (n_checkpoints - 1) * ROW_BYTES
    return MemoryEstimate(bytes=int(data + masks + working + recorded + rows), n_models=n_models,
                          n_params=n_params, n_checkpoints=n_checkpoints)


def check_memory(estimates: Sequence[tuple[str, MemoryEstimate]], *, workers: int,
                 available: int | None = None) -> None:
    """Refuse (ValueError, one line) a task that cannot fit in the machine's memory, or ``workers``
    of the largest tasks that cannot fit at once (a pool runs them side by side)."""
    if not estimates:
        return
    available = machine_memory() if available is None else available
    ranked = sorted(estimates, key=lambda item: item[1].bytes, reverse=True)
    key, largest = ranked[0]
    if largest.bytes > available:
        raise ValueError(f"memory: task {key} needs {largest.describe()}; this machine has "
                         f"{format_bytes(available)} (use fewer seeds, left-out sets or heads, or a "
                         f"smaller dataset)")
    side_by_side = ranked[:max(1, workers)]
    total = sum(estimate.bytes for _, estimate in side_by_side)
    if total > available:
        raise ValueError(f"memory: {len(side_by_side)} workers would run tasks needing at least "
                         f"{format_bytes(total)} at once; this machine has {format_bytes(available)} "
                         f"(use fewer --workers)")

