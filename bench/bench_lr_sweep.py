"""More models per call: a dataset's learning-rate sweep trained in one call against one call per task.

    python bench/bench_lr_sweep.py [--steps 10000] [--rounds 2] [--threads 1] [--json]

For default-grid datasets (binary n in {64, 256}, d in {8, 32}; 5-class n = 120, d = 16), runs the
four plain GD configs that differ only in their step (``head_gd_logistic`` and its lr0.1, lr0.3,
lr3 variants, every left-out set) through :func:`verify.run.runner.run_tasks` (one trainer call
with one step size per model) and through :func:`verify.run.runner.run_task` once per task, the
two taking turns ``--rounds`` times. Reports the best CPU seconds of each (whole tasks: training
and rows; the bounds are a later step of the sweep), the training alone in each arm (profiled), ``speedup = alone / merged`` and the
largest relative difference of any number in the rows.
"""
from __future__ import annotations

import math
import time
from dataclasses import replace

import torch

import common
from synth.separable import make_separable
from verify.configs import CONFIGS
from verify.run import train
from verify.run.runner import run_task, run_tasks
from verify.run.task import Task

NAMES = ("head_gd_logistic", "head_gd_logistic_lr0.1", "head_gd_logistic_lr0.3", "head_gd_logistic_lr3")
CASES = [dict(n=64, d=8), dict(n=64, d=32), dict(n=256, d=8), dict(n=256, d=32),
         dict(n=120, d=16, n_classes=5)]


def largest_difference(merged, alone) -> float:
    worst = 0.0
    for a, b in zip(merged, alone, strict=True):
        for row_a, row_b in zip(a.runs, b.runs, strict=True):
            for key, value in row_b.items():
                if isinstance(value, float) and math.isfinite(value):
                    worst = max(worst, abs(row_a[key] - value) / max(1.0, abs(value)))
    return worst


def main() -> None:
    parser = common.benchmark_arguments(__doc__.splitlines()[0], steps=10_000)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    training = {"seconds": 0.0}
    inner = train.train_head_tasks

    def timed(*a, **k):
        start = time.process_time()
        try:
            return inner(*a, **k)
        finally:
            training["seconds"] += time.process_time() - start
    train.train_head_tasks = timed
    import verify.run.runner as runner_module
    runner_module.train_head_tasks = timed
    for case in CASES:
        dataset = make_separable(case["n"], case["d"], n_classes=case.get("n_classes", 2), margin=0.1,
                                 random_state=0)
        tasks = [Task(dataset.id, replace(CONFIGS[name], n_steps=args.steps)) for name in NAMES]
        outputs, trained_seconds = {}, {}

        def arm(name, function):
            def call():
                training["seconds"] = 0.0
                outputs[name] = function()
                trained_seconds[name] = training["seconds"]
            return call
        seconds = common.alternate({
            "merged": arm("merged", lambda: run_tasks(tasks, dataset)),
            "alone": arm("alone", lambda: [run_task(task, dataset) for task in tasks])},
            rounds=args.rounds)
        result = {"case": f"n={case['n']} d={case['d']} C={case.get('n_classes', 2)}",
                  "steps": args.steps, "merged_s": seconds["merged"], "alone_s": seconds["alone"],
                  "merged_training_s": trained_seconds["merged"],
                  "alone_training_s": trained_seconds["alone"],
                  "speedup": seconds["alone"] / seconds["merged"],
                  "max_rel_diff": largest_difference(outputs["merged"], outputs["alone"])}
        common.report(result, args, lambda r: (
            f"{r['case']}: T={r['steps']} merged {r['merged_s']:.2f} s (training "
            f"{r['merged_training_s']:.2f}), one call per task {r['alone_s']:.2f} s (training "
            f"{r['alone_training_s']:.2f}); speedup {r['speedup']:.2f}x whole tasks, "
            f"{r['alone_training_s'] / r['merged_training_s']:.2f}x training; "
            f"max relative row difference {r['max_rel_diff']:.1e}"))


if __name__ == "__main__":
    main()
