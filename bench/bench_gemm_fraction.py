"""How close the head trainer gets to the machine's matrix products, in the sweep's actual calls.

    python bench/bench_gemm_fraction.py [--steps 2000] [--threads 1] [--json]

For each head call shape of the default main job (binary logistic GD from zero, d in {8, 32},
n in {64, 128, 256}; M = n + 1 for the exact leave-one-out GD configs, 4 (n + 1) for the four
learning-rate configs in one call, 170 for the ten-seed SGD config with 16 left-out sets, 10 for the
seed-spread configs), times one trainer step (CPU seconds of ``--steps`` steps) and, in the same
process, float64 matrix products: ``torch.mm`` and ``numpy.matmul`` on exactly the step's two
shapes ``(n, d) x (d, M)`` and ``(d, n) x (n, M)`` (the same-shape reference), and on square
1024 x 1024 matrices (the square peak). Reports the trainer's GFLOP/s (4 M n d flops per step) and
its fraction of each reference. ``OPENBLAS_CORETYPE`` is reported as found (numpy's OpenBLAS kernel
choice depends on it), never set.
"""
from __future__ import annotations

import os
import time

import numpy as np
import torch

import common
from common import best_seconds, separable_features
from verify.trainers import head

# call -> (models per call, trainer options): GD from zero on S and every S\i; the four lr configs'
# models in one call; SGD (batches of 16) from ten seeds' random heads, S and 16 S\i each; GD from
# ten random heads on S alone.
CALLS = {"exact LOO": (lambda n: n + 1, dict(init="zero")),
         "4 lr configs": (lambda n: 4 * (n + 1), dict(init="zero")),
         "SGD 10x17": (lambda n: 170, dict(init="random", batch_size=16,
                                           seeds=np.repeat(np.arange(10), 17))),
         "seed spread": (lambda n: 10, dict(init="random", seeds=np.arange(10)))}
SIZES = [(64, 8), (128, 8), (256, 8), (64, 32), (128, 32), (256, 32)]
SQUARE = 1024


def products_gflops(shapes, library: str, repeats: int) -> float:
    """GFLOP/s of float64 products on the given ``(a, b)`` shape pairs, in turn."""
    make = (lambda shape: torch.randn(shape, dtype=torch.float64)) if library == "torch" else (
        lambda shape: np.random.default_rng(0).normal(size=shape))
    product = torch.mm if library == "torch" else np.matmul
    operands = [(make(a), make(b), make((a[0], b[1]))) for a, b in shapes]

    def run():
        for left, right, out in operands:
            product(left, right, out=out)

    flops = sum(2 * a[0] * a[1] * b[1] for a, b in shapes)
    return flops / best_seconds(run, repeats=repeats) / 1e9


def trainer_gflops(n: int, d: int, n_models: int, n_steps: int, options: dict) -> float:
    X, y = separable_features(n, d)
    masks = np.ones((n_models, n), dtype=bool)
    left_out = np.flatnonzero(np.arange(n_models) % 17 != 0 if "batch_size" in options
                              else np.arange(n_models) % (n + 1) != 0)
    masks[left_out, np.arange(len(left_out)) % n] = False
    lr = 1.0 / head.smoothness(X, "logistic")
    start = time.process_time()
    head.train_heads(X, y, masks=masks, loss="logistic", lr=lr, n_steps=n_steps,
                     checkpoints=[0, n_steps], **options)
    return 4.0 * n_models * n * d * n_steps / (time.process_time() - start) / 1e9


def main() -> None:
    parser = common.benchmark_arguments(__doc__.splitlines()[0], steps=2000)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    square = [((SQUARE, SQUARE), (SQUARE, SQUARE))]
    peaks = {library: products_gflops(square, library, repeats=3) for library in ("torch", "numpy")}
    print(f"OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', 'unset')}; square {SQUARE}^2 "
          f"float64 peak: torch {peaks['torch']:.1f} GFLOP/s, numpy {peaks['numpy']:.1f} GFLOP/s")
    for (n, d) in SIZES:
        for call, (models, options) in CALLS.items():
            n_models = models(n)
            shapes = [((n, d), (d, n_models)), ((d, n), (n, n_models))]
            repeats = max(20, int(2e7 / (4 * n_models * n * d)))
            same = {library: products_gflops(shapes, library, repeats) for library in ("torch", "numpy")}
            achieved = trainer_gflops(n, d, n_models, args.steps, options)
            result = {"n": n, "d": d, "call": call, "models": n_models, "gflops": achieved,
                      "same_shape_torch": same["torch"], "same_shape_numpy": same["numpy"],
                      "square_torch": peaks["torch"], "square_numpy": peaks["numpy"]}
            common.report(result, args, lambda r: (
                f"n={r['n']:3d} d={r['d']:2d} {r['call']:12s} M={r['models']:4d}: "
                f"{r['gflops']:5.1f} GFLOP/s = {r['gflops'] / r['same_shape_torch']:4.0%} of torch "
                f"({r['same_shape_torch']:.1f}), {r['gflops'] / r['same_shape_numpy']:4.0%} of numpy "
                f"({r['same_shape_numpy']:.1f}) same-shape; {r['gflops'] / r['square_torch']:4.0%} / "
                f"{r['gflops'] / r['square_numpy']:4.0%} of the square peak (torch / numpy)"))


if __name__ == "__main__":
    main()
