"""The door from verify into theory: evaluate bounds on a task's left-out rows."""
from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from theory.context import RunContext
from verify.run.layout import ModelLayout

if TYPE_CHECKING:
    from theory.bounds.base import Bound


def bound_rows(rows: list[dict], *, weights: np.ndarray, w_init: np.ndarray, layout: ModelLayout,
               context: dict, setting: str, bounds: Sequence[Bound], max_models: int | None = None,
               last_only: bool = False, models: np.ndarray | None = None) -> list[dict]:
    """Evaluate each of ``bounds`` whose setting is ``setting`` on every left-out row.

    Parameters
    ----------
    rows : list of dict
        From :func:`trace_rows` (checkpoint-major: row ``k * M + m`` is model m at checkpoint k).
    weights : (K, M, P), w_init : (M, P)
        The flat weights the rows were measured on.
    layout : ModelLayout
    context : dict
        The RunContext fields shared by every row: ``model, loss, X, y, lr, batch_size, l2sp,
        objective, arrays, card``.
    setting : {"head", "full"}
    bounds : sequence of Bound
        E.g. the values of ``theory.bounds.BOUNDS``; those of another setting are skipped.
    max_models : int or None
        Bound only the first this many left-out models in layout order (None: all).
    models : (M,) bool or None
        Bound only these models (None: every left-out model); ``max_models`` applies among them.
    last_only : bool
        Bound the last checkpoint only (where constants are costly, e.g. Lanczos on an MLP).

    Returns
    -------
    list of dict
        ``row, bound, measure, measured, value, violated, constants``. A bound whose estimate fails
        is recorded with value NaN and ``violated = ["estimate_failed: <error>"]``; the measured row
        is kept either way.
    """

    applicable = [bound for bound in bounds if bound.setting == setting]
    full = layout.full_model()
    n_models = layout.n_models
    last = max(row["iteration"] for row in rows) if rows else 0
    eligible = layout.left_out >= 0 if models is None else (layout.left_out >= 0) & models
    bounded = set(np.flatnonzero(eligible)[:max_models].tolist())
    out = []
    for r, row in enumerate(rows):
        k, m = divmod(r, n_models)
        if m not in bounded or (last_only and row["iteration"] != last):
            continue
        run = RunContext(setting=setting, left_out=row["left_out"], iteration=row["iteration"],
                         w0=w_init[m], w_full=weights[k, full[m]], w_loo=weights[k, m], **context)
        for bound in applicable:
            try:
                constants = bound.estimate_constants(run)
                value, violated = bound.value(**constants), list(bound.assumptions(**constants))
            except Exception as exc:  # recorded, never fatal: the measurement stands without its bound
                constants, value = {}, np.nan
                violated = [f"estimate_failed: {type(exc).__name__}: {exc}"]
            out.append({"row": r, "bound": bound.name, "measure": bound.measure,
                        "measured": row.get(bound.measure), "value": float(value), "violated": violated,
                        "constants": {key: float(v) for key, v in constants.items()}})
    return out
