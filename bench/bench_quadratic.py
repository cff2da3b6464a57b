"""Batched quadratic fine-tuning against the naive per-model loop (and the closed form).

    python bench/bench_quadratic.py [--n 256] [--d 32] [--steps 20000] [--naive-models 8] [--json]

Least squares from w0 on all n + 1 leave-one-out sets at lr = 1/β̂: the batched GD of
:func:`verify.trainers.quadratic.train_quadratic` (one batched Hessian-vector product per step,
2 M d² flops), the naive loop of :mod:`verify.trainers.naive` on a random subset of models
(extrapolated linearly to all), and :func:`verify.trainers.quadratic.quadratic_closed_form`. The
reference throughput is ``torch.bmm`` on the same (M, d, d) x (M, d, 1) shapes, measured in the
same process: that product reads every Hessian once per step, so it is bound by memory, not flops.
"""
from __future__ import annotations

import time

import numpy as np
import torch

import common
from common import best_seconds, leave_one_out_masks, peak_memory_mib
from verify.trainers import naive, quadratic
from verify.trainers.checkpoints import log_spaced_checkpoints
from verify.trainers.head import smoothness


def run(n: int = 256, *, d: int = 32, n_steps: int = 20_000, naive_models: int | None = 8,
        seed: int = 0) -> dict:
    """Time one quadratic case; ``naive_models=None`` runs the naive loop on every model."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    w0 = rng.normal(size=d)
    y = X @ (w0 + rng.normal(size=d) / np.sqrt(d)) + 0.1 * rng.normal(size=n)
    masks = leave_one_out_masks(n)
    n_models = len(masks)
    points = log_spaced_checkpoints(n_steps)
    arguments = dict(masks=masks, w0=w0, lr=1.0 / smoothness(X, "squared", masks=masks).max())
    left, right, out = (torch.randn(n_models, d, d, dtype=torch.float64),
                        torch.randn(n_models, d, 1, dtype=torch.float64),
                        torch.empty(n_models, d, 1, dtype=torch.float64))
    reference = 2 * n_models * d * d / best_seconds(lambda: torch.bmm(left, right, out=out),
                                                     repeats=500) / 1e9
    start = time.process_time()
    batched = quadratic.train_quadratic(X, y, n_steps=n_steps, checkpoints=points, **arguments)
    batched_seconds = time.process_time() - start
    memory = peak_memory_mib()
    start = time.process_time()
    exact = quadratic.quadratic_closed_form(X, y, iterations=points, **arguments)
    closed_seconds = time.process_time() - start
    subset = (np.arange(n_models) if naive_models is None or naive_models >= n_models
              else np.sort(rng.choice(n_models, naive_models, replace=False)))
    start = time.process_time()
    loop = naive.train_quadratic(X, y, n_steps=n_steps, checkpoints=points,
                                 **{**arguments, "masks": masks[subset]})
    naive_seconds = (time.process_time() - start) * n_models / len(subset)
    flops = 2.0 * n_models * d * d * n_steps
    return {"case": f"quadratic n={n}", "n": n, "d": d, "models": n_models, "steps": n_steps,
            "batched_s": batched_seconds, "naive_s": naive_seconds, "closed_form_s": closed_seconds,
            "naive_models_timed": int(len(subset)), "speedup": naive_seconds / batched_seconds,
            "gflops": flops / batched_seconds / 1e9, "matmul_gflops": reference,
            "max_abs_diff": float(max(np.abs(batched.weights["w"][:, subset] - loop.weights["w"]).max(),
                                      np.abs(batched.weights["w"] - exact).max())),
            "peak_mib": memory, "threads": torch.get_num_threads()}


def describe(result: dict) -> str:
    return common.describe(result, reference="torch.bmm on the same shapes",
                           detail=f", closed form {result['closed_form_s']:.2f} s",
                           compared="naive or closed form")


def main() -> None:
    parser = common.benchmark_arguments(__doc__.splitlines()[0], steps=20_000)
    parser.add_argument("--n", type=int, default=256)
    parser.add_argument("--d", type=int, default=32)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    common.report(run(args.n, d=args.d, n_steps=args.steps, naive_models=common.naive_model_count(args)),
                  args, describe)


if __name__ == "__main__":
    main()
