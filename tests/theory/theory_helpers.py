"""Independent reference computations for the theory tests (plain numpy GD, constructed instances)."""
from __future__ import annotations

import numpy as np

from theory.context import RunContext


def least_squares_gd(X, y, w0, *, l2sp, lr, steps, weight_decay=0.0):
    """Full-batch GD on (1/2n)‖Xw − y‖² + (λ/2)‖w − w0‖² + (λ_wd/2)‖w‖², step by step."""
    n = len(X)
    w = w0.copy()
    for _ in range(steps):
        w = w - lr * (X.T @ (X @ w - y) / n + l2sp * (w - w0) + weight_decay * w)
    return w


def least_squares_instance(seed, *, n, d, l2sp, lr_scale, steps, left_out=0, weight_decay=0.0):
    """A random least-squares fine-tuning run of S and S\\i with η = lr_scale / max(β_S, β_{S\\i})."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)) * rng.uniform(0.2, 2.0, size=d)
    w0 = rng.normal(size=d)
    y = X @ (w0 + rng.normal(size=d)) + 0.5 * rng.normal(size=n)
    keep = np.delete(np.arange(n), left_out)
    beta = max(np.linalg.eigvalsh(X.T @ X / n)[-1],
               np.linalg.eigvalsh(X[keep].T @ X[keep] / (n - 1))[-1]) + l2sp + weight_decay
    lr = lr_scale / beta
    w_full = least_squares_gd(X, y, w0, l2sp=l2sp, lr=lr, steps=steps, weight_decay=weight_decay)
    w_loo = least_squares_gd(X[keep], y[keep], w0, l2sp=l2sp, lr=lr, steps=steps,
                             weight_decay=weight_decay)
    return RunContext(setting="full", model="linear", loss="squared", X=X, y=y, left_out=left_out,
                      lr=lr, iteration=steps, batch_size=None, w0=w0, w_full=w_full, w_loo=w_loo,
                      l2sp=l2sp, weight_decay=weight_decay)


def certified_separable(seed, *, n, d, gamma, n_support):
    """Signed points with max margin γ and direction u* certified by the KKT cone construction.

    Support vectors z_j = γu* + v_j with v_j ⊥ u* and Σ v_j = 0 (so u* = Σ z_j / (kγ) lies in their
    cone and every constraint there is active); the rest sit strictly beyond γ.
    """
    rng = np.random.default_rng(seed)
    u = rng.normal(size=d)
    u /= np.linalg.norm(u)
    project = np.eye(d) - np.outer(u, u)
    v = rng.normal(size=(n_support, d)) @ project
    v -= v.mean(axis=0)
    support = gamma * u + v
    rest = ((gamma + rng.uniform(0.1, 1.0, size=(n - n_support, 1))) * u
            + rng.normal(size=(n - n_support, d)) @ project)
    Z = np.vstack([support, rest])
    signs = rng.choice([-1.0, 1.0], size=n)
    signs[0], signs[1 % n] = 1.0, -1.0
    return Z, signs, u


def exponential_tailed_gd(Z, w0, *, loss, lr, checkpoints):
    """Full-batch GD on the mean loss over signed points Z; weights at each checkpoint."""
    w = w0.copy()
    out, step = {}, 0
    for target in sorted(checkpoints):
        while step < target:
            margins = Z @ w
            slope = np.exp(-margins) if loss == "exponential" else np.exp(-np.logaddexp(0.0, margins))
            w = w + lr * (slope @ Z) / len(Z)
            step += 1
        out[target] = w.copy()
    return out
