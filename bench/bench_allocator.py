"""glibc's default allocator against the sweep's heap-retaining settings (verify.sweep.allocator).

    python bench/bench_allocator.py --data DIR --grid GRID [--configs A,B] [--stabilisers LIST]
                                    [--rounds 2] [--json]

Runs the same sweep (``ftstab verify --grid GRID --data DIR --workers 1 --no-bounds``, 10 seeds) in a
fresh process per arm, the arms taking turns ``--rounds`` times: ``glibc default`` (the settings
switched off) and ``retained`` (as the sweep runs). One worker, in the arm's own process, so that
its user and system CPU seconds, minor page faults and peak resident memory (``getrusage``) are
the whole sweep's. Also checks that both arms stored the same numbers (a digest of the ``runs``
table's measured columns). ``DIR`` is a ``ftstab synth`` output folder for the grid.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from common import best_of_rounds, run_sweep_arm, stored_digest

ARM = """
import json, resource, time
from verify.sweep import executors
if {arm!r} == "glibc default":
    executors.retain_freed_memory = lambda: False
from verify.cli import main
start = time.perf_counter()
code = main(["verify", "--grid", {grid!r}, "--data", {data!r}, "--out", {out!r}, "--configs", {configs!r},
             "--stabilisers", {stabilisers!r}, "--workers", "1", "--seeds", "10", "--no-bounds"])
wall = time.perf_counter() - start
usage = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({{"code": code, "wall_s": wall, "user_s": usage.ru_utime, "sys_s": usage.ru_stime,
                  "minor_faults": usage.ru_minflt, "peak_mib": usage.ru_maxrss / 1024}}))
"""
ARMS = ("glibc default", "retained")


def run_arm(arm: str, args: argparse.Namespace, out: Path) -> dict:
    code = ARM.format(arm=arm, grid=args.grid, data=args.data, out=str(out), configs=args.configs,
                      stabilisers=args.stabilisers)
    return {**run_sweep_arm(arm, code), "digest": stored_digest(out)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--grid", required=True)
    parser.add_argument("--configs", default="full_deep_adamw_nobc_val")
    parser.add_argument("--stabilisers", default="none,mmr")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    best = best_of_rounds(ARMS, lambda arm, out: run_arm(arm, args, out), rounds=args.rounds,
                          key="wall_s")
    base = best["glibc default"]["wall_s"]
    for arm, result in best.items():
        print(json.dumps({"arm": arm, **result}) if args.json else
              f"{arm:14s} wall {result['wall_s']:6.1f} s ({base / result['wall_s']:.2f}x)  "
              f"user {result['user_s']:6.1f} s  sys {result['sys_s']:6.1f} s  "
              f"minor faults {result['minor_faults']:>10,}  peak {result['peak_mib']:6.0f} MiB")
    same = len({result["digest"] for result in best.values()}) == 1
    print(f"stored numbers identical across arms: {same}")


if __name__ == "__main__":
    main()
