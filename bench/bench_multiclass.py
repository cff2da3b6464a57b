"""Multiclass heads: the class-major layout against the previous layout, and C classes against binary.

    python bench/bench_multiclass.py [--against REV] [--steps 2000] [--rounds 3] [--threads 1] [--json]

For each case (the default grid's multiclass shapes: n in {60, 120, 240}, d in {8, 16}, C in {3, 5},
all n + 1 leave-one-out sets, softmax loss, full-batch GD from zero at lr = 1/β̂; and the ten-seed SGD
config's 170 models), trains the heads with today's :func:`verify.trainers.head.train_heads` and with
the same function at git revision ``--against`` (the layout with the classes innermost), the two
taking turns ``--rounds`` times in one process; a binary (logistic) head on the same features and
models is timed in the same rounds. Reports the best CPU seconds of each, ``speedup = old / new``,
``per_class = new / (C * binary)`` (the cost of a C-class head per class of work, relative to a
binary head) and the largest weight difference between the two revisions.
"""
from __future__ import annotations

import numpy as np
import torch

import common
from common import alternate, leave_one_out_masks, module_at_revision
from verify.trainers import head
from verify.trainers.checkpoints import log_spaced_checkpoints

# The commit before the class-major layout.
PREVIOUS = "8e8d8d8"
CASES = [dict(n=60, d=8, C=3), dict(n=120, d=16, C=5), dict(n=240, d=8, C=3), dict(n=240, d=16, C=5),
         dict(n=60, d=8, C=5, seeds=10)]


def blobs(n: int, d: int, n_classes: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    y = np.arange(n) % n_classes
    centres = rng.normal(size=(n_classes, d)) * 1.5
    return centres[y] + rng.normal(size=(n, d)), y


def run(case: dict, *, previous, n_steps: int, rounds: int) -> dict:
    n, d, n_classes, seeds = case["n"], case["d"], case["C"], case.get("seeds", 1)
    X, y = blobs(n, d, n_classes)
    if seeds == 1:
        masks, options = leave_one_out_masks(n), dict(init="zero")
    else:   # the SGD config: ten seeds x (S and 16 left-out sets), random heads, batches of 16
        block = leave_one_out_masks(n)[:17]
        masks = np.tile(block, (seeds, 1))
        options = dict(init="random", batch_size=16, seeds=np.repeat(np.arange(seeds), len(block)))
    common_arguments = dict(masks=masks, n_steps=n_steps, checkpoints=log_spaced_checkpoints(n_steps),
                            **options)
    multiclass = dict(common_arguments, loss="softmax", lr=1.0 / head.smoothness(X, "softmax"))
    binary_y = (y == 0).astype(np.int64)
    binary = dict(common_arguments, loss="logistic", lr=1.0 / head.smoothness(X, "logistic"))
    traces = {}

    def trainer(name, module, labels, arguments):
        def call():
            traces[name] = module.train_heads(X, labels, **arguments)
        return call

    seconds = alternate({"new": trainer("new", head, y, multiclass),
                         "old": trainer("old", previous, y, multiclass),
                         "binary": trainer("binary", head, binary_y, binary)}, rounds=rounds)
    difference = float(np.abs(traces["new"].weights["w"] - traces["old"].weights["w"]).max())
    return {"case": f"n={n} d={d} C={n_classes} M={len(masks)}" + (" SGD" if seeds > 1 else ""),
            "steps": n_steps, "new_s": seconds["new"], "old_s": seconds["old"],
            "binary_s": seconds["binary"], "speedup": seconds["old"] / seconds["new"],
            "per_class": seconds["new"] / (n_classes * seconds["binary"]),
            "old_per_class": seconds["old"] / (n_classes * seconds["binary"]),
            "max_abs_diff": difference}


def main() -> None:
    parser = common.benchmark_arguments(__doc__.splitlines()[0], steps=2000)
    parser.add_argument("--against", default=PREVIOUS, help="git revision of the previous trainer")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    previous = module_at_revision(args.against, "verify/trainers/head.py", "previous_head")
    for case in CASES:
        result = run(case, previous=previous, n_steps=args.steps, rounds=args.rounds)
        common.report(result, args, lambda r: (
            f"{r['case']}: T={r['steps']} new {r['new_s']:.2f} s, old {r['old_s']:.2f} s "
            f"(speedup {r['speedup']:.1f}x), binary {r['binary_s']:.2f} s; per class of work "
            f"new {r['per_class']:.2f}x binary (old {r['old_per_class']:.2f}x); "
            f"max |new - old| {r['max_abs_diff']:.1e}"))


if __name__ == "__main__":
    main()
