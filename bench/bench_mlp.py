"""Batched full fine-tuning of a pre-trained MLP against the naive per-model loop.

    python bench/bench_mlp.py [--n 64] [--seeds 5] [--steps 200] [--naive-models 8] [--json]

A tanh MLP 8 -> 16 -> 16 -> 2 (synth.mlp's architecture, random "pre-trained" weights) fine-tuned by
full-batch GD with the softmax loss on all n + 1 leave-one-out sets for every seed (M = seeds x
(n + 1)): :func:`verify.trainers.mlp.train_mlp` (vmap over models of functional_call + grad) against
:func:`verify.trainers.naive_mlp.train_mlp` on a random subset of models, extrapolated linearly to
all (each model's loop is independent). FLOPs counted: forward and backward matrix products,
3 x 2 n sum(fan_in x fan_out) per model and step. The reference throughput is ``torch.bmm`` on the
forward pass's (M, n, fan_in) x (M, fan_in, fan_out) shapes, measured in the same process.
"""
from __future__ import annotations

import time

import numpy as np
import torch

import common
from common import best_seconds, leave_one_out_masks, peak_memory_mib
from synth.mlp import build_model, init_pretraining_params
from verify.trainers import mlp, naive_mlp
from verify.trainers.checkpoints import log_spaced_checkpoints

ARCHITECTURE = {"n_features": 8, "hidden": [16, 16], "n_classes": 2}


def run(n: int = 64, *, n_seeds: int = 5, n_steps: int = 200, naive_models: int | None = 8,
        seed: int = 0) -> dict:
    """Time one case; ``naive_models=None`` runs the naive loop on every model."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, ARCHITECTURE["n_features"]))
    y = (X[:, 0] + X[:, 1] ** 2 > 1).astype(np.int64)
    model = build_model(ARCHITECTURE)
    pretrained = init_pretraining_params(ARCHITECTURE, rng)
    masks = np.tile(leave_one_out_masks(n), (n_seeds, 1)).astype(np.float64)
    seeds = np.repeat(np.arange(n_seeds), n + 1)
    n_models = len(masks)
    arguments = dict(lr=0.5, n_steps=n_steps, checkpoints=log_spaced_checkpoints(n_steps))
    widths = [ARCHITECTURE["n_features"], *ARCHITECTURE["hidden"], ARCHITECTURE["n_classes"]]
    operands = [(torch.randn(n_models, n, a, dtype=torch.float64),
                 torch.randn(n_models, a, b, dtype=torch.float64),
                 torch.empty(n_models, n, b, dtype=torch.float64)) for a, b in zip(widths, widths[1:])]

    def forward_products():
        for left, right, out in operands:
            torch.bmm(left, right, out=out)

    layer_flops = 2 * n_models * n * sum(a * b for a, b in zip(widths, widths[1:]))
    reference = layer_flops / best_seconds(forward_products, repeats=50) / 1e9
    mlp.train_mlp(model, pretrained, X, y, masks=masks[:2], seeds=seeds[:2], lr=0.5, n_steps=2,
                  checkpoints=[2])  # warm-up: torch.func's first call imports and traces
    start = time.process_time()
    batched = mlp.train_mlp(model, pretrained, X, y, masks=masks, seeds=seeds, **arguments)
    batched_seconds = time.process_time() - start
    memory = peak_memory_mib()
    subset = (np.arange(n_models) if naive_models is None or naive_models >= n_models
              else np.sort(rng.choice(n_models, naive_models, replace=False)))
    start = time.process_time()
    loop = naive_mlp.train_mlp(model, pretrained, X, y, masks=masks[subset], seeds=seeds[subset],
                               **arguments)
    naive_seconds = (time.process_time() - start) * n_models / len(subset)
    difference = max(float(np.abs(batched.weights[name][:, subset] - loop.weights[name]).max())
                     for name in loop.weights)
    return {"case": f"mlp n={n}", "n": n, "models": n_models, "steps": n_steps,
            "batched_s": batched_seconds, "naive_s": naive_seconds,
            "naive_models_timed": int(len(subset)), "speedup": naive_seconds / batched_seconds,
            "gflops": 3 * layer_flops * n_steps / batched_seconds / 1e9,
            "matmul_gflops": reference, "max_abs_diff": difference, "peak_mib": memory,
            "threads": torch.get_num_threads()}


def describe(result: dict) -> str:
    return common.describe(result, reference="torch.bmm on the forward shapes", precision=2)


def main() -> None:
    parser = common.benchmark_arguments(__doc__.splitlines()[0], steps=200)
    parser.add_argument("--n", type=int, default=64)
    parser.add_argument("--seeds", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    result = run(args.n, n_seeds=args.seeds, n_steps=args.steps,
                 naive_models=common.naive_model_count(args))
    if result["max_abs_diff"] > 1e-10:
        raise SystemExit(f"batched and naive differ by {result['max_abs_diff']:.1e} > 1e-10")
    common.report(result, args, describe)


if __name__ == "__main__":
    main()
