"""Batched head tuning against the naive per-model loop on the same leave-one-out runs.

    python bench/bench_head.py --n 128 [--steps 20000] [--naive-models 8] [--threads 1] [--json]

Trains all n + 1 leave-one-out sets (logistic loss, full-batch GD from zero, lr = 1/β̂, d = 32) with
:func:`verify.trainers.head.train_heads`, then the naive loop of :mod:`verify.trainers.naive` on a
random subset of the models (its time is extrapolated linearly to all models; ``--naive-models all``
runs every one), checks both give the same weights, and reports the speedup, the achieved GFLOP/s of
the batched trainer (its two matrix products per step: 4 M n d flops) next to the float64 throughput
of ``torch.mm`` on exactly those shapes measured in the same process, and the peak memory.
"""
from __future__ import annotations

import time

import numpy as np
import torch

import common
from common import leave_one_out_masks, matmul_gflops, peak_memory_mib, separable_features
from verify.trainers import head, naive
from verify.trainers.checkpoints import log_spaced_checkpoints


def run(n: int, *, d: int = 32, n_steps: int = 20_000, naive_models: int | None = 8,
        seed: int = 0) -> dict:
    """Time one head-tuning case; ``naive_models=None`` runs the naive loop on every model."""
    X, y = separable_features(n, d, seed=seed)
    masks = leave_one_out_masks(n)
    n_models = len(masks)
    arguments = dict(init="zero", loss="logistic", lr=1.0 / head.smoothness(X, "logistic"),
                     n_steps=n_steps, checkpoints=log_spaced_checkpoints(n_steps))
    matmul = matmul_gflops([((n, d), (d, n_models)), ((d, n), (n, n_models))])
    start = time.process_time()
    batched = head.train_heads(X, y, masks=masks, **arguments)
    batched_seconds = time.process_time() - start
    memory = peak_memory_mib()
    subset = (np.arange(n_models) if naive_models is None or naive_models >= n_models
              else np.sort(np.random.default_rng(seed).choice(n_models, naive_models, replace=False)))
    start = time.process_time()
    loop = naive.train_heads(X, y, masks=masks[subset], **arguments)
    naive_seconds = (time.process_time() - start) * n_models / len(subset)
    flops = 4.0 * n_models * n * d * n_steps
    return {"case": f"head n={n}", "n": n, "d": d, "models": n_models, "steps": n_steps,
            "batched_s": batched_seconds, "naive_s": naive_seconds,
            "naive_models_timed": int(len(subset)), "speedup": naive_seconds / batched_seconds,
            "gflops": flops / batched_seconds / 1e9, "matmul_gflops": matmul,
            "max_abs_diff": float(np.abs(batched.weights["w"][:, subset] - loop.weights["w"]).max()),
            "peak_mib": memory, "threads": torch.get_num_threads()}


def describe(result: dict) -> str:
    return common.describe(result, reference="torch.mm on the same shapes")


def main() -> None:
    parser = common.benchmark_arguments(__doc__.splitlines()[0], steps=20_000)
    parser.add_argument("--n", type=int, default=128)
    parser.add_argument("--d", type=int, default=32)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    common.report(run(args.n, d=args.d, n_steps=args.steps, naive_models=common.naive_model_count(args)),
                  args, describe)


if __name__ == "__main__":
    main()
