"""Size of the stored weights (DIR/weights/) of a sweep, predicted from its plan without training.

A task's weights file holds float64 ``weights`` (K, M, P) and ``w_init`` (M, P), int64 ``iterations``
(K,) and layout (3 × M), for MLP tasks the L2-SP anchor (P float64) and two masks (P bool), and its
JSON ``info``; K, M and P follow from the config, the seeds, the left-out count and the dataset's
shape, so the size of every file is known from the plan. ``--check DIR`` compares the prediction
with the files of a finished results folder (its grid, configs and seeds given the same way).

    .venv/bin/python bench/weights_size.py --grid smoke --seeds 3 --check /tmp/results
    .venv/bin/python bench/weights_size.py --main     # the main job: default grid + stabiliser sweep
"""
from __future__ import annotations

import argparse
import json
import sqlite3
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from synth.dataset import bind_params  # noqa: E402
from synth.grids import GENERATORS, load_grid  # noqa: E402
from synth.mlp import build_model  # noqa: E402
from verify.configs import CONFIGS  # noqa: E402
from verify.run.task import make_stabiliser  # noqa: E402
from verify.sweep.cli import _split, _stabiliser_applies, parse_stabilisers  # noqa: E402
from verify.sweep.plan import build_tasks  # noqa: E402
from verify.trainers.checkpoints import log_spaced_checkpoints  # noqa: E402

# Per file beyond the arrays' bytes: a 128-byte .npy header and about 100 bytes of zip entry per
# member, and the info JSON stored as UTF-32 text (measured on the smoke sweep: see --check).
MEMBER_OVERHEAD = 128 + 110
INFO_BYTES = 4 * 700
STABILISER_CONFIGS = "head_gd_logistic,head_sgd_logistic_random,full_quadratic_gd,full_mlp_sgd"


def _n_parameters(params: dict) -> int:
    architecture = {"n_features": params["n_features"], "hidden": list(params["hidden"]),
                    "n_classes": params.get("n_classes", 2)}
    return sum(parameter.numel() for parameter in build_model(architecture).parameters())


def predicted_bytes(task, params: dict, kind: str) -> int:
    config = task.config
    n_steps = config.n_steps
    stabiliser = make_stabiliser(task)
    if stabiliser is not None:
        _, n_steps = stabiliser.adjust_schedule(1.0, n_steps)
    n_checkpoints = len(log_spaced_checkpoints(int(n_steps), num=config.n_checkpoints, include_zero=True)) - 1
    n_models = len(task.seeds) * (1 + min(config.max_left_out, params["n_samples"]))
    classes = params.get("n_classes", 2)
    if kind == "mlp":
        n_weights, extra = _n_parameters(params), 3
    else:
        n_weights = params["n_features"] * (classes if kind == "separable" and classes > 2 else 1)
        extra = 0
    size = 8 * (n_checkpoints + 1) * n_models * n_weights + 8 * (n_checkpoints + 3 * n_models)
    size += (10 * n_weights if kind == "mlp" else 0)
    return size + (6 + extra + 1) * MEMBER_OVERHEAD + INFO_BYTES


def plan(grid: str, seeds: int, stabilisers: str, configs: str | None):
    specs = load_grid(grid)
    params = {spec.id: bind_params(GENERATORS[spec.generator].function, spec.params) for spec in specs}
    kinds = {spec.id: spec.kind for spec in specs}
    entries = [(spec.id, spec.kind, int(params[spec.id].get("n_classes", 0) if spec.kind != "quadratic" else 0))
               for spec in specs]
    chosen = [CONFIGS[name] for name in (_split(configs) if configs else CONFIGS)]
    tasks = build_tasks(entries, chosen, parse_stabilisers(stabilisers), n_seeds=seeds,
                        applies=_stabiliser_applies)
    return [(task, predicted_bytes(task, params[task.dataset_id], kinds[task.dataset_id])) for task in tasks]


def report(planned, label: str) -> int:
    by_config: dict[str, list[int]] = {}
    for task, size in planned:
        by_config.setdefault(task.config.name, []).append(size)
    total = sum(size for _, size in planned)
    print(f"{label}: {len(planned)} tasks, {total / 2**20:.1f} MiB of weights "
          f"({total / max(len(planned), 1) / 1024:.1f} KiB per task)")
    for name, sizes in sorted(by_config.items()):
        print(f"  {name:28s} {len(sizes):5d} tasks  mean {np.mean(sizes) / 1024:8.1f} KiB  "
              f"max {max(sizes) / 1024:8.1f} KiB  total {sum(sizes) / 2**20:8.1f} MiB")
    return total


def check(planned, folder: Path) -> None:
    connection = sqlite3.connect(f"file:{folder / 'results.sqlite'}?mode=ro", uri=True)
    actual = dict(connection.execute("SELECT task_key, weights FROM tasks WHERE weights IS NOT NULL"))
    errors = []
    for task, size in planned:
        if task.key in actual:
            real = (folder / "weights" / f"{actual[task.key]}.npz").stat().st_size
            errors.append((size - real) / real)
    print(f"check against {folder}: {len(errors)} files, prediction error "
          f"{100 * min(errors):+.1f}% .. {100 * max(errors):+.1f}%")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--grid", default="default")
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--stabilisers", default="none")
    parser.add_argument("--configs")
    parser.add_argument("--check", type=Path, metavar="DIR")
    parser.add_argument("--main", action="store_true", help="the main job's two sweeps (tasks.py main)")
    args = parser.parse_args()
    if args.main:
        total = report(plan("default", args.seeds, "none", None), f"default grid, --seeds {args.seeds}")
        total += report(plan("stabilisers", args.seeds, "all", STABILISER_CONFIGS),
                        f"stabiliser sweep, --seeds {args.seeds}")
        print(f"main job: {total / 2**30:.2f} GiB of weights")
        return
    planned = plan(args.grid, args.seeds, args.stabilisers, args.configs)
    report(planned, json.dumps({"grid": args.grid, "seeds": args.seeds}))
    if args.check:
        check(planned, args.check)


if __name__ == "__main__":
    main()
