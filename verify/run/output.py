"""What running a task produced: its rows, and what it stores for the bounds (every model at every
checkpoint, and how it was trained).

A :class:`TaskWeights` holds enough to rebuild each left-out run's ``theory.context.RunContext``
later from the dataset alone, without training: flat weights at every checkpoint and at the start,
which model is which (seed, left-out index, model seed), the scalar RunContext fields the task
shares (model, loss, lr, batch size, penalties ...), how the MLP objective is rebuilt, and the
config (its ``bound_models`` and ``bound_last_only`` say which rows are bounded), and which left-out
models training chose to bound (the stratified sub-sample whose ``bound_weight`` the rows carry). Everything is
float64: the bounds are evaluated on exactly the weights the rows were measured on.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from verify.run.layout import ModelLayout

FORMAT = 1
_ARRAYS = ("iterations", "weights", "w_init", "seeds", "left_out", "model_seeds", "bounded")
# RunContext fields the dataset supplies when the bounds are evaluated (the MLP objective is
# rebuilt from X and y): not stored with the weights.
DATASET_FIELDS = ("X", "y", "arrays", "card", "objective")
_CONTEXT_ARRAY = "context."


@dataclass(frozen=True)
class TaskWeights:
    """A task's trained weights and what the bounds need to know about its training.

    Attributes
    ----------
    task_key : str
    setting : {"head", "full"}
    iterations : (K,) int64
        Checkpoints t >= 1.
    weights : (K, M, P) float64
        Flat weights of model m at checkpoint k (the rows' ``k * M + m``).
    w_init : (M, P) float64
        Where each model's gradient descent starts (RunContext.w0).
    layout : ModelLayout
    bounded : (M,) bool
        The left-out models the bounds are evaluated on (``verify.run.rows.add_bound_weights``: the
        rows of the others have ``bound_weight`` NULL); ``config["bound_models"]`` applies among them.
    context : dict
        The RunContext fields shared by every row except :data:`DATASET_FIELDS`
        (``verify.run.runner.bound_context``): scalars (``model, loss, lr, batch_size, n_heads, l2sp,
        weight_decay``) and arrays or None (``l2sp_anchor, l2sp_mask, weight_decay_mask``).
    objective : dict or None
        For MLPs ``{"architecture": ..., "loss": ...}``, from which
        ``verify.run.network.objective_for`` rebuilds RunContext.objective; None otherwise.
    config : dict
        The training config's definition (``TrainingConfig.to_dict()``).
    """

    task_key: str
    setting: str
    iterations: np.ndarray
    weights: np.ndarray
    w_init: np.ndarray
    layout: ModelLayout
    bounded: np.ndarray
    context: dict[str, Any]
    objective: dict[str, Any] | None
    config: dict[str, Any]

    def arrays(self) -> dict[str, np.ndarray]:
        context = {f"{_CONTEXT_ARRAY}{name}": np.asarray(value) for name, value in self.context.items()
                   if isinstance(value, np.ndarray)}
        return {**context, "iterations": np.asarray(self.iterations, dtype=np.int64),
                "weights": np.asarray(self.weights, dtype=np.float64),
                "w_init": np.asarray(self.w_init, dtype=np.float64),
                "seeds": np.asarray(self.layout.seeds, dtype=np.int64),
                "left_out": np.asarray(self.layout.left_out, dtype=np.int64),
                "model_seeds": np.asarray(self.layout.model_seeds, dtype=np.int64),
                "bounded": np.asarray(self.bounded, dtype=bool)}

    def info(self) -> dict[str, Any]:
        scalars = {name: value for name, value in self.context.items() if not isinstance(value, np.ndarray)}
        return {"format": FORMAT, "task_key": self.task_key, "setting": self.setting,
                "context": scalars, "objective": self.objective, "config": self.config}

    @classmethod
    def from_stored(cls, arrays: dict[str, np.ndarray], info: dict[str, Any]) -> TaskWeights:
        """The record :meth:`arrays` and :meth:`info` were written from (ValueError if it is not one)."""
        missing = [name for name in _ARRAYS if name not in arrays]
        if info.get("format") != FORMAT or missing:
            raise ValueError(f"weights: not a task weights file of format {FORMAT} "
                             f"(format {info.get('format')!r}, missing arrays {missing})")
        layout = ModelLayout(seeds=arrays["seeds"], left_out=arrays["left_out"],
                             model_seeds=arrays["model_seeds"])
        context = {**info["context"], **{name[len(_CONTEXT_ARRAY):]: value for name, value in arrays.items()
                                         if name.startswith(_CONTEXT_ARRAY)}}
        return cls(task_key=info["task_key"], setting=info["setting"], iterations=arrays["iterations"],
                   weights=arrays["weights"], w_init=arrays["w_init"], layout=layout,
                   bounded=np.asarray(arrays["bounded"], dtype=bool), context=context, objective=info["objective"], config=dict(info["config"]))

    def rows(self) -> list[dict[str, Any]]:
        """The coordinates of every row, checkpoint-major (row ``k * M + m``)."""
        return [{"seed": int(seed), "left_out": None if left_out < 0 else int(left_out),
                 "iteration": int(iteration)}
                for iteration in self.iterations.tolist()
                for seed, left_out in zip(self.layout.seeds.tolist(), self.layout.left_out.tolist(),
                                          strict=True)]


@dataclass
class TaskOutput:
    """What running a task produced, before the sweep adds the task's and dataset's columns.

    Attributes
    ----------
    runs : list of dict
        One per model and checkpoint: ``seed``, ``left_out`` (None for the full set S),
        ``iteration`` and the measured columns of the ``runs`` table.
    weights : TaskWeights or None
        Every model at every checkpoint, for the bounds step (None where nothing is stored: the
        real-model path, whose runs have no bounds).
    """

    runs: list[dict[str, Any]]
    weights: TaskWeights | None = None
