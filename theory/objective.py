"""The exact training objective of a network run, as the theory differentiates it.

``RunContext.objective`` is the data loss alone (weighted mean over samples); the trainers add their
penalties to it on parameter groups: L2-SP ½λ‖(w − w_ref)_A‖² on the groups A it anchors (the encoder
by default) and weight decay ½λ_wd‖w_B‖² on the groups B it decays (every parameter by default;
decoupled decay equals this penalty for plain GD). The constants of the full fine-tuning bounds must
be those of this sum, with each penalty only where it acts: adding λ to every curvature value, as if
L2-SP covered the head too, is another objective.
"""
from __future__ import annotations

import functools
from collections.abc import Callable

import numpy as np

from theory.context import RunContext
from theory.estimators import ArrayKey


def _mask(mask: np.ndarray | None, size: int, label: str) -> np.ndarray:
    if mask is None:
        return np.ones(size, dtype=bool)
    mask = np.asarray(mask, dtype=bool).ravel()
    if mask.size != size:
        raise ValueError(f"{label} must have one entry per weight ({size}), got {mask.size}")
    return mask


@functools.lru_cache(maxsize=64)
def _penalised(data_objective: Callable, l2sp: float, anchor_key: ArrayKey, weight_decay: float,
               masks_key: ArrayKey) -> Callable:
    import torch

    anchor = torch.as_tensor(anchor_key.arrays[0])
    anchored, decayed = (torch.as_tensor(mask) for mask in masks_key.arrays)  # 0/1 floats

    def objective(w: torch.Tensor, sample_weights: torch.Tensor) -> torch.Tensor:
        value = data_objective(w, sample_weights)
        if l2sp:
            value = value + 0.5 * l2sp * (anchored * (w - anchor) ** 2).sum()
        if weight_decay:
            value = value + 0.5 * weight_decay * (decayed * w ** 2).sum()
        return value

    return objective


def penalised_objective(data_objective: Callable, *, l2sp: float, weight_decay: float,
                        l2sp_anchor: np.ndarray, l2sp_mask: np.ndarray | None = None,
                        weight_decay_mask: np.ndarray | None = None) -> Callable:
    """``(w_flat, sample_weights) -> data loss + ½λ‖(w − anchor)_A‖² + ½λ_wd‖w_B‖²``.

    ``l2sp_mask`` (A) and ``weight_decay_mask`` (B) are boolean over the flat weights (None: all);
    the result is cached on the arrays' content, so equal inputs give the same function.

    Raises
    ------
    ValueError
        When a mask does not have one entry per weight of the anchor.
    """
    anchor = np.asarray(l2sp_anchor, dtype=np.float64).ravel()
    size = anchor.size
    masks = ArrayKey(_mask(l2sp_mask, size, "l2sp_mask").astype(np.float64),
                     _mask(weight_decay_mask, size, "weight_decay_mask").astype(np.float64))
    return _penalised(data_objective, float(l2sp), ArrayKey(anchor), float(weight_decay), masks)


def training_objective(run: RunContext) -> Callable:
    """``(w_flat, sample_weights) -> data loss + penalties``: the objective the run's trainer minimised.

    With one-hot ``sample_weights`` it is the regularised per-sample objective f_i = ℓ_i + penalties
    (Lemma F.1's g_i is its gradient at w*); with all ones it is F_S.

    Raises
    ------
    ValueError
        When ``run.objective`` is None or a mask or anchor does not match the weights.
    """
    if run.objective is None:
        raise ValueError("run.objective must be given for model 'mlp' (Hessian-vector products)")
    size = np.size(run.w_full)
    anchor = np.asarray(run.w0 if run.l2sp_anchor is None else run.l2sp_anchor, dtype=np.float64).ravel()
    if anchor.size != size:
        raise ValueError(f"l2sp_anchor must have one entry per weight ({size}), got {anchor.size}")
    return penalised_objective(run.objective, l2sp=run.l2sp, weight_decay=run.weight_decay,
                               l2sp_anchor=anchor, l2sp_mask=run.l2sp_mask,
                               weight_decay_mask=run.weight_decay_mask)
