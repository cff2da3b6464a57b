"""Extreme Hessian eigenvalues of a fine-tuned MLP: theory.lanczos against scipy's ARPACK.

    python bench/bench_lanczos.py [--n 64] [--hidden 32] [--steps 400] [--repeats 3] [--json]

A tanh MLP (n_features 16 -> hidden -> hidden -> 3 classes, the default grid's larger architecture)
is trained by full-batch GD on the softmax loss from random weights, then the smallest and largest
eigenvalue of its training objective's Hessian (Hessian-vector products by double backward, as
:func:`theory.estimators.objective_functions` makes them) are computed at relative tolerance 1e-6
(the bounds' ``LANCZOS_TOL``) by both methods, alternated ``--repeats`` times in one process.
Reported: CPU seconds and Hessian-vector products per call (ARPACK runs ``which="SA"`` and
``which="LA"``, subspace 24, from the same fixed start; theory.lanczos gets both ends from one
Krylov space), the relative difference of the values, and how many distinct results each method
gave over its repeats (ARPACK's bits depend on the heap's alignment).
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from scipy.sparse.linalg import LinearOperator, eigsh
from threadpoolctl import threadpool_limits

import common
from theory.estimators import objective_functions
from theory.lanczos import lanczos_extreme_eigenvalues

TOL = 1e-6


def arpack_extreme_eigenvalues(matvec, dim: int, *, tol: float) -> tuple[float, float]:
    operator = LinearOperator((dim, dim), dtype=np.float64,
                              matvec=lambda v: np.asarray(matvec(np.ravel(v))))
    options = dict(k=1, tol=tol, v0=np.random.default_rng(0).standard_normal(dim),
                   ncv=min(dim, 24), return_eigenvectors=False)
    return (float(eigsh(operator, which="SA", **options)[0]),
            float(eigsh(operator, which="LA", **options)[0]))


def trained_objective(n: int, hidden: int, steps: int, seed: int = 0):
    """A training objective and the weights GD reached on it."""
    rng = np.random.default_rng(seed)
    X = torch.tensor(rng.standard_normal((n, 16)))
    y = (X[:, 0] > 0).long() + (X[:, 1] > 0.5).long()
    widths = [16, hidden, hidden, 3]
    layers = list(zip(widths, widths[1:]))
    size = sum(a * b + b for a, b in layers)

    def objective(w, sample_weights):
        z, k = X, 0
        for index, (a, b) in enumerate(layers):
            z = z @ w[k:k + a * b].view(a, b) + w[k + a * b:k + a * b + b]
            k += a * b + b
            if index < len(layers) - 1:
                z = torch.tanh(z)
        losses = torch.nn.functional.cross_entropy(z, y, reduction="none")
        return (sample_weights * losses).sum() / sample_weights.sum()

    w = torch.tensor(rng.standard_normal(size) / np.sqrt(hidden), requires_grad=True)
    ones = torch.ones(n, dtype=torch.float64)
    for _ in range(steps):
        (gradient,) = torch.autograd.grad(objective(w, ones), w)
        with torch.no_grad():
            w -= 0.5 * gradient
    return objective, w.detach().numpy().copy(), n


def run(n: int = 64, *, hidden: int = 32, n_steps: int = 400, repeats: int = 3) -> dict:
    objective, w, n = trained_objective(n, hidden, n_steps)
    _, hvp = objective_functions(objective, w, np.ones(n))
    products = [0]

    def counted(v):
        products[0] += 1
        return hvp(v)

    times = {"arpack": [], "lanczos": []}
    values = {"arpack": set(), "lanczos": set()}
    counts = {}
    for _ in range(repeats):
        for name, method in (("arpack", arpack_extreme_eigenvalues),
                             ("lanczos", lanczos_extreme_eigenvalues)):
            products[0] = 0
            start = time.process_time()
            values[name].add(method(counted, w.size, tol=TOL))
            times[name].append(time.process_time() - start)
            counts[name] = products[0]
    arpack, lanczos = min(values["arpack"]), min(values["lanczos"])
    scale = max(abs(v) for v in arpack)
    return dict(parameters=int(w.size), n=n, hidden=hidden,
                arpack_s=min(times["arpack"]), lanczos_s=min(times["lanczos"]),
                speedup=min(times["arpack"]) / min(times["lanczos"]),
                arpack_products=counts["arpack"], lanczos_products=counts["lanczos"],
                max_rel_diff=max(abs(a - b) for a, b in zip(arpack, lanczos)) / scale,
                arpack_distinct=len(values["arpack"]), lanczos_distinct=len(values["lanczos"]),
                smallest=lanczos[0], largest=lanczos[1])


def describe(result: dict) -> str:
    return (f"lanczos: {result['parameters']} parameters, n={result['n']}: ARPACK "
            f"{result['arpack_s']:.2f} s ({result['arpack_products']} products, "
            f"{result['arpack_distinct']} distinct results), theory.lanczos {result['lanczos_s']:.2f} s "
            f"({result['lanczos_products']} products, {result['lanczos_distinct']} distinct), speedup "
            f"{result['speedup']:.1f}x; max relative difference {result['max_rel_diff']:.1e}; "
            f"eigenvalues [{result['smallest']:.3g}, {result['largest']:.3g}]")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=64)
    parser.add_argument("--hidden", type=int, default=32)
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", action="store_true", help="print the result as one JSON line")
    args = parser.parse_args()
    torch.set_num_threads(1)
    with threadpool_limits(1):
        result = run(args.n, hidden=args.hidden, n_steps=args.steps, repeats=args.repeats)
    common.report(result, args, describe)


if __name__ == "__main__":
    main()
