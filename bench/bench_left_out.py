"""What exact leave-one-out averages cost: one whole head task with every sample left out against a
budget of 16 stratified left-out sets.

    python bench/bench_left_out.py [--n 256] [--d 32] [--steps 10000] [--config head_gd_logistic] [--json]

Runs :func:`verify.run.runner.run_task` (training, every measured row, the bounds) on one separable
dataset (``synth.separable.make_separable``, margin 0.1) under a default head config, once as
configured (n <= 256: all n left-out sets, exact E_i) and once with ``--max-left-out 16`` (a
stratified sample, the old default budget), and reports both CPU times and their ratio. The bounds are
evaluated on 16 left-out sets per seed in both (``bound_left_out``), so the ratio is the price of
exact E_i in training and rows.
"""
from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace

import torch

from synth.separable import make_separable
from verify.configs import CONFIGS
from verify.run.runner import run_task
from verify.run.task import Task
from verify.sweep.plan import with_max_left_out


def run(n: int, *, d: int = 32, n_steps: int = 10_000, config: str = "head_gd_logistic") -> dict:
    dataset = make_separable(n, d, margin=0.1, radius=1.0, random_state=0)
    exact_config = replace(CONFIGS[config], n_steps=n_steps)
    budget_config = with_max_left_out([exact_config], 16)[0]
    seconds = {}
    for name, chosen in (("exact", exact_config), ("budget16", budget_config)):
        seeds = tuple(range(10)) if chosen.stochastic else (0,)
        start = time.process_time()
        output = run_task(Task(dataset.id, chosen, seeds=seeds), dataset)
        seconds[name] = time.process_time() - start
        seconds[f"{name}_rows"] = len(output.runs)
    return {"case": f"{config} n={n} d={d} T={n_steps}", "exact_s": seconds["exact"],
            "budget16_s": seconds["budget16"], "ratio": seconds["exact"] / seconds["budget16"],
            "exact_rows": seconds["exact_rows"], "budget16_rows": seconds["budget16_rows"],
            "threads": torch.get_num_threads()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=256)
    parser.add_argument("--d", type=int, default=32)
    parser.add_argument("--steps", type=int, default=10_000)
    parser.add_argument("--config", default="head_gd_logistic", choices=sorted(
        name for name, config in CONFIGS.items() if config.setting == "head" and config.max_left_out))
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    result = run(args.n, d=args.d, n_steps=args.steps, config=args.config)
    print(json.dumps(result) if args.json else
          f"{result['case']}: exact E_i {result['exact_s']:.1f} s ({result['exact_rows']} rows), "
          f"16 left-out sets {result['budget16_s']:.1f} s ({result['budget16_rows']} rows), "
          f"ratio {result['ratio']:.1f}x")


if __name__ == "__main__":
    main()
