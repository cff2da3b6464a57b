"""Checkpoint schedules: the iterations at which a trainer records weights and training loss.

Iteration t means "after t updates": t = 0 is the initialisation, t = n_steps the last iterate.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def log_spaced_checkpoints(n_steps: int, *, num: int = 12, include_zero: bool = False) -> np.ndarray:
    """Iterations spaced evenly in log t from 1 to ``n_steps``, so one run yields the curve over t.

    Parameters
    ----------
    n_steps : int
        Number of training updates T (>= 1); always the last checkpoint.
    num : int, default=12
        Number of log-spaced points requested (>= 1); fewer are returned where rounding to integers
        makes neighbours coincide (at small t).
    include_zero : bool, default=False
        Also record t = 0 (the initial weights).

    Returns
    -------
    ndarray of int64
        Strictly increasing iterations in ``[0, n_steps]`` ending at ``n_steps``.
    """
    if isinstance(n_steps, bool) or not isinstance(n_steps, (int, np.integer)) or n_steps < 1:
        raise ValueError(f"n_steps: must be an integer >= 1, got {n_steps!r}")
    if isinstance(num, bool) or not isinstance(num, (int, np.integer)) or num < 1:
        raise ValueError(f"num: must be an integer >= 1, got {num!r}")
    points = np.rint(np.geomspace(1, n_steps, num)).astype(np.int64)
    points[-1] = n_steps
    if include_zero:
        points = np.concatenate([[0], points])
    return np.unique(points)


def check_checkpoints(checkpoints: Sequence[int] | np.ndarray, n_steps: int) -> np.ndarray:
    """Validate a checkpoint schedule against ``n_steps`` and return it as int64.

    Raises
    ------
    ValueError
        Unless ``checkpoints`` is a non-empty, strictly increasing sequence of integers in
        ``[0, n_steps]``.
    """
    points = np.asarray(checkpoints)
    if points.ndim != 1 or points.size == 0 or not np.issubdtype(points.dtype, np.integer):
        raise ValueError("checkpoints: must be a non-empty 1-d sequence of integers in "
                         f"[0, {n_steps}], got {checkpoints!r}")
    points = points.astype(np.int64)
    if points[0] < 0 or points[-1] > n_steps or np.any(np.diff(points) <= 0):
        raise ValueError(f"checkpoints: must be strictly increasing integers in [0, {n_steps}], "
                         f"got {points.tolist()}")
    return points
