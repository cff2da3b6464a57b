"""Scale-out: one sweep run with 1 local worker, 2 local workers and a 2-worker Dask LocalCluster.

    python bench/bench_dask.py --data DIR [--grid smoke] [--configs A,B|all] [--rounds 1] [--json]

Runs the same sweep (``ftstab verify --grid G --data DIR --configs ...``, 10 seeds; ``--configs all``: every
config the grid trains) in a fresh
process per arm, the arms taking turns ``--rounds`` times: ``1 worker`` (in-process), ``2 workers``
(the local pool) and ``dask`` (a ``distributed.LocalCluster`` of 2 single-threaded worker processes
started cold inside the arm, the sweep pointed at it with ``--scheduler``). Reports each arm's
wall seconds of the sweep and, for ``dask``, the seconds to start the cold cluster, and checks
that every arm stored the same numbers (a digest of the ``runs`` table's measured columns). ``DIR``
is a ``ftstab synth`` output folder for the grid.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from common import best_of_rounds, run_sweep_arm, stored_digest

ARM = """
import json, time
start = time.perf_counter()
cluster = None
if {arm!r} == "dask":
    from distributed import LocalCluster
    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None)
started = time.perf_counter() - start
from verify.cli import main
argv = ["verify", "--grid", {grid!r}, "--data", {data!r}, "--out", {out!r}, "--seeds", "10"]
argv += ["--configs", {configs!r}] if {configs!r} != "all" else []
argv += ["--scheduler", cluster.scheduler_address] if cluster else ["--workers", {workers!r}]
start = time.perf_counter()
code = main(argv)
wall = time.perf_counter() - start
if cluster:
    cluster.close()
print(json.dumps({{"code": code, "wall_s": wall, "cluster_start_s": started}}))
"""
ARMS = {"1 worker": "1", "2 workers": "2", "dask": None}


def run_arm(arm: str, args: argparse.Namespace, out: Path) -> dict:
    code = ARM.format(arm=arm, grid=args.grid, data=args.data, out=str(out), configs=args.configs,
                      workers=ARMS[arm])
    return {**run_sweep_arm(arm, code), "digest": stored_digest(out)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--grid", default="smoke")
    parser.add_argument("--configs", default="head_gd_logistic,head_sgd_logistic_random,"
                                             "full_quadratic_gd,full_mlp_sgd")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    best = best_of_rounds(ARMS, lambda arm, out: run_arm(arm, args, out), rounds=args.rounds,
                          key="wall_s")
    same = len({result["digest"] for result in best.values()}) == 1
    for arm, result in best.items():
        print(json.dumps({"arm": arm, **result}) if args.json else
              f"{arm:10s} sweep wall {result['wall_s']:6.1f} s"
              + (f"  (cold cluster start {result['cluster_start_s']:.1f} s)" if arm == "dask" else ""))
    print(f"stored numbers identical across arms: {same}")


if __name__ == "__main__":
    main()
