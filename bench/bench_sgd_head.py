"""SGD head steps: today's trainer against an earlier revision on the default sweep's SGD call shapes.

    python bench/bench_sgd_head.py [--against REV] [--steps 2000] [--rounds 3] [--threads 1] [--json]

Cases: the seed-spread configs' calls (ten seeds, one model each, random heads, batches of 16) and
the ten-seed SGD config's (ten seeds x the model on S and 16 left-out sets: 170 models), on the
default grid's shapes, binary (logistic) and multiclass (softmax). Each case trains with
:func:`verify.trainers.head.train_heads` and with the same function at git revision ``--against``,
the two taking turns ``--rounds`` times in one process; reports the best CPU seconds of each,
``speedup = old / new``, the cost per step and the largest weight difference between the two.
"""
from __future__ import annotations

import numpy as np
import torch

import common
from bench_multiclass import blobs
from common import alternate, leave_one_out_masks, module_at_revision, separable_features
from verify.trainers import head
from verify.trainers.checkpoints import log_spaced_checkpoints

PREVIOUS = "92d4952"
CASES = [dict(n=32, d=8, C=2, left_out=0), dict(n=256, d=32, C=2, left_out=0),
         dict(n=60, d=8, C=3, left_out=0), dict(n=240, d=16, C=5, left_out=0),
         dict(n=256, d=32, C=2, left_out=16), dict(n=240, d=16, C=5, left_out=16)]
SEEDS = 10
BATCH_SIZE = 16


def problem(case: dict, n_steps: int) -> tuple[np.ndarray, np.ndarray, dict]:
    n, d, n_classes = case["n"], case["d"], case["C"]
    if n_classes == 2:
        X, y = separable_features(n, d)
        loss = "logistic"
    else:
        X, y = blobs(n, d, n_classes)
        loss = "softmax"
    block = leave_one_out_masks(n)[:case["left_out"] + 1]
    arguments = dict(masks=np.tile(block, (SEEDS, 1)), init="random", loss=loss,
                     lr=0.1 / head.smoothness(X, loss), n_steps=n_steps,
                     checkpoints=log_spaced_checkpoints(n_steps), batch_size=BATCH_SIZE,
                     seeds=np.repeat(np.arange(SEEDS), len(block)))
    return X, y, arguments


def run(case: dict, *, previous, n_steps: int, rounds: int) -> dict:
    X, y, arguments = problem(case, n_steps)
    traces = {}

    def trainer(name, module):
        def call():
            traces[name] = module.train_heads(X, y, **arguments)
        return call

    seconds = alternate({"new": trainer("new", head), "old": trainer("old", previous)}, rounds=rounds)
    difference = float(np.max(np.abs(traces["new"].weights["w"] - traces["old"].weights["w"])))
    return dict(case, models=len(arguments["masks"]), steps=n_steps, new_seconds=seconds["new"],
                old_seconds=seconds["old"], speedup=seconds["old"] / seconds["new"],
                new_step_us=1e6 * seconds["new"] / n_steps, old_step_us=1e6 * seconds["old"] / n_steps,
                weight_difference=difference)


def line(result: dict) -> str:
    return (f"n={result['n']:4d} d={result['d']:3d} C={result['C']} M={result['models']:4d}  "
            f"old {result['old_step_us']:6.1f} us/step  new {result['new_step_us']:6.1f} us/step  "
            f"speedup {result['speedup']:4.2f}x  max |dw| {result['weight_difference']:.1e}")


def main() -> None:
    parser = common.benchmark_arguments(__doc__, steps=2000)
    parser.add_argument("--against", default=PREVIOUS, help="git revision to compare with")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    previous = module_at_revision(args.against, "verify/trainers/head.py", "head_previous")
    for case in CASES:
        common.report(run(case, previous=previous, n_steps=args.steps, rounds=args.rounds), args, line)


if __name__ == "__main__":
    main()
