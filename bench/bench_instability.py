"""Seed instability of plain fine-tuning on the ``instability`` grid, per knob value.

    python bench/bench_instability.py [--grid instability] [--seeds 10] [--workers 2]
                                      [--configs NAME ...] [--json]

For every dataset of the grid and every ``full_deep_*`` training config, fine-tunes the dataset's
pre-trained backbone once per seed (no leave-one-out sets) and records the std over seeds of the
test accuracy and the failed-run rate (at or below the majority-class accuracy). Prints, per value
of each data knob (depth, samples per class, teacher) under plain fine-tuning
(``full_deep_adamw_nobc``) and per training config, the mean seed std, the mean failed-run rate and
the share of datasets with std >= 0.05 and failed rate >= 10% ("unstable"). Times: wall seconds of
the whole run (generation included), and CPU seconds (``time.process_time``, one thread per worker,
so that other work on a shared machine does not count) of generation and of each config's training,
summed over datasets.
"""
from __future__ import annotations

import argparse
import json
import time
from concurrent.futures import ProcessPoolExecutor

import numpy as np

PLAIN = "full_deep_adamw_nobc"
KNOBS = ("depth", "n_per_class", "teacher")
UNSTABLE_STD, UNSTABLE_FAILED = 0.05, 0.10


def deep_configs(chosen=None):
    from verify.configs import CONFIGS
    return [name for name, config in CONFIGS.items() if "deep_mlp" in config.kinds
            and (chosen is None or name in chosen)]


def one_dataset(spec_and_seeds):
    import torch

    from synth.grids import load_grid
    from verify.configs import CONFIGS
    from verify.trainers.seed_runs import seed_runs

    torch.set_num_threads(1)
    grid, index, n_seeds, chosen = spec_and_seeds
    spec = load_grid(grid)[index]
    start = time.process_time()
    dataset = spec.generate()
    generated = time.process_time() - start
    out = {"id": spec.id, **{knob: spec.params.get(knob) for knob in KNOBS},
           "generate_s": generated, "configs": {}}
    for name in deep_configs(chosen):
        start = time.process_time()
        runs = seed_runs(dataset, CONFIGS[name], range(n_seeds))
        out["configs"][name] = {"std": runs.std, "failed_rate": runs.failed_rate,
                                "mean": float(runs.accuracy.mean()),
                                "train_s": time.process_time() - start}
    return out


def summarise(rows, select, config):
    chosen = [row["configs"][config] for row in rows if select(row)]
    std = np.array([c["std"] for c in chosen])
    failed = np.array([c["failed_rate"] for c in chosen])
    return {"n": len(chosen), "mean_std": float(std.mean()), "failed_rate": float(failed.mean()),
            "unstable_share": float(np.mean((std >= UNSTABLE_STD) & (failed >= UNSTABLE_FAILED))),
            "mean_accuracy": float(np.mean([c["mean"] for c in chosen]))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--grid", default="instability")
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--configs", nargs="+", default=None,
                        help="full_deep_* configs to run (default: all)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    from synth.grids import load_grid

    n = len(load_grid(args.grid))
    start = time.perf_counter()
    with ProcessPoolExecutor(args.workers) as pool:
        rows = list(pool.map(one_dataset, [(args.grid, i, args.seeds, args.configs)
                                           for i in range(n)]))
    wall = time.perf_counter() - start
    table = []
    configs = deep_configs(args.configs)
    for knob in KNOBS if PLAIN in configs else ():
        for value in sorted({row[knob] for row in rows}, key=str):
            table.append({"axis": knob, "value": value,
                          **summarise(rows, lambda r: r[knob] == value, PLAIN)})
    for name in configs:
        table.append({"axis": "config", "value": name, **summarise(rows, lambda r: True, name)})
    times = {"wall_s": wall, "generate_cpu_s": sum(r["generate_s"] for r in rows),
             **{f"train_cpu_s[{name}]": sum(r["configs"][name]["train_s"] for r in rows)
                for name in configs}}
    if args.json:
        print(json.dumps({"table": table, "times": times, "rows": rows}, indent=1))
        return
    print(f"{'axis':12} {'value':32} {'n':>3} {'mean_std':>9} {'failed':>7} {'unstable':>9} {'acc':>6}")
    for line in table:
        print(f"{line['axis']:12} {str(line['value']):32} {line['n']:3d} {line['mean_std']:9.3f} "
              f"{line['failed_rate']:7.3f} {line['unstable_share']:9.2f} {line['mean_accuracy']:6.3f}")
    for key, value in times.items():
        print(f"{key}: {value:.1f}")


if __name__ == "__main__":
    main()
