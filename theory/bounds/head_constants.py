"""Constants of the head-tuning bounds for one left-out run (binary labels, linear head, no bias)."""
from __future__ import annotations

import numpy as np

from theory.bounds.base import flag
from theory.context import RunContext
from theory.estimators import (is_binary, loo_max_margin_solution, max_margin_solution,
                               normalised_margin, radius, signed_points)
from theory.implicit_bias import EXPONENTIAL_TAILED, mean_loss


def head_constants(run: RunContext) -> dict[str, float]:
    """γ_S, γ_{S\\i}, the support-vector term, measured normalised margins, R, ‖w0‖, L(w0), flags."""
    n, i = len(run.X), int(run.left_out)
    base = dict(n=float(n), lr=float(run.lr), iteration=float(run.iteration),
                binary=flag(is_binary(run.y)),
                linear_head=flag(run.model == "linear" and np.size(run.w_full) == run.X.shape[1]),
                full_batch=flag(run.gradient_descent), single_head=flag(int(run.n_heads) == 1),
                exponential_tailed=flag(run.loss in EXPONENTIAL_TAILED),
                logistic=flag(run.loss == "logistic"))
    nan = dict(gamma=np.nan, gamma_loo=np.nan, support_term=np.nan, margin_full=np.nan,
               margin_loo=np.nan, radius=np.nan, init_norm=np.nan, init_loss=np.nan,
               init_loss_loo=np.nan, separable=0.0)
    if not (base["binary"] and base["linear_head"]):
        return {**base, **nan}
    Z = signed_points(run.X, run.y)
    Z_loo = np.delete(Z, i, axis=0)
    full, loo = max_margin_solution(Z), loo_max_margin_solution(Z, i)
    w0 = np.asarray(run.w0, dtype=np.float64)
    loss = run.loss if run.loss in EXPONENTIAL_TAILED else "logistic"
    return {**base, "separable": flag(full.separable), "gamma": full.gamma, "gamma_loo": loo.gamma,
            "support_term": float(np.linalg.norm(full.direction - loo.direction)),
            "margin_full": normalised_margin(Z, np.asarray(run.w_full, float)),
            "margin_loo": normalised_margin(Z_loo, np.asarray(run.w_loo, float)),
            "radius": radius(run.X), "init_norm": float(np.linalg.norm(w0)),
            "init_loss": mean_loss(loss, Z @ w0), "init_loss_loo": mean_loss(loss, Z_loo @ w0)}


def head_assumptions(c: dict[str, float]) -> list[str]:
    """Violated assumptions shared by every head bound."""
    violated = []
    if not c["binary"]:
        violated.append("binary")
    if not c["linear_head"]:
        violated.append("linear_head")
    if not c["separable"]:
        violated.append("separable")
    return violated
