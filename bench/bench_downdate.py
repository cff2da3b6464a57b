"""Least squares by structure: rank-one downdates of one Gram matrix against per-model Hessians.

    python bench/bench_downdate.py [--against REV] [--steps 2000] [--rounds 3] [--threads 1] [--json]

For the default grid's quadratic shapes (n in {40, 80, 160}, d in {4, 16, 32}, every left-out set,
M = n + 1, lr = 1/β̂, T = 2000) and the n = 256, d = 32 case of ``bench_quadratic.py``, trains with
today's :func:`verify.trainers.quadratic.train_quadratic` (one (M, d) x (d, d) GEMM and a rank-one
correction per step where d >= ``DOWNDATE_MIN_FEATURES``) and with the same function at git revision
``--against`` (one batched Hessian-vector product per step), taking turns ``--rounds`` times in one
process. Reports the best CPU seconds, ``speedup = old / new`` and the largest weight difference.
"""
from __future__ import annotations

import numpy as np
import torch

import common
from common import alternate, leave_one_out_masks, module_at_revision
from verify.trainers import quadratic
from verify.trainers.head import smoothness

# The commit before the rank-one downdates.
PREVIOUS = "8e8d8d8"
CASES = [(40, 4), (40, 32), (80, 16), (160, 4), (160, 16), (160, 32), (256, 32)]


def run(n: int, d: int, *, previous, n_steps: int, rounds: int) -> dict:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(n, d))
    y = X @ rng.normal(size=d) + 0.1 * rng.normal(size=n)
    masks = leave_one_out_masks(n)
    arguments = dict(masks=masks, w0=rng.normal(size=d), n_steps=n_steps, checkpoints=[0, 10, n_steps],
                     lr=1.0 / smoothness(X, "squared", masks=masks).max())
    traces = {}

    def trainer(name, module):
        def call():
            traces[name] = module.train_quadratic(X, y, **arguments)
        return call

    seconds = alternate({"new": trainer("new", quadratic), "old": trainer("old", previous)},
                        rounds=rounds)
    return {"case": f"n={n} d={d} M={n + 1}", "steps": n_steps, "new_s": seconds["new"],
            "old_s": seconds["old"], "speedup": seconds["old"] / seconds["new"],
            "downdated": d >= quadratic.DOWNDATE_MIN_FEATURES,
            "max_abs_diff": float(np.abs(traces["new"].weights["w"] - traces["old"].weights["w"]).max())}


def main() -> None:
    parser = common.benchmark_arguments(__doc__.splitlines()[0], steps=2000)
    parser.add_argument("--against", default=PREVIOUS, help="git revision of the previous trainer")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    previous = module_at_revision(args.against, "verify/trainers/quadratic.py", "previous_quadratic")
    for n, d in CASES:
        result = run(n, d, previous=previous, n_steps=args.steps, rounds=args.rounds)
        common.report(result, args, lambda r: (
            f"{r['case']}: T={r['steps']} new {r['new_s']:.3f} s "
            f"({'downdated' if r['downdated'] else 'dense'}), old {r['old_s']:.3f} s, "
            f"speedup {r['speedup']:.2f}x; max |new - old| {r['max_abs_diff']:.1e}"))


if __name__ == "__main__":
    main()
