"""Size of the stored weights (DIR/weights/) of a sweep, predicted from its plan without training.

A task's weights file holds float64 ``weights`` (K, M, P) and ``w_init`` (M, P), int64 ``iterations``
(K,) and layout (3 × M), the bounded models (M bool), for MLP tasks the L2-SP anchor (P float64) and
two masks (P bool), and its JSON ``info``; K, M and P follow from the config, the seeds, the left-out
count (every sample where n <= max(exact_left_out_up_to, max_left_out), else max_left_out) and the
dataset's shape, so the size of every file is known from the plan. ``--check DIR`` compares the prediction
with the files of a finished results folder (its grid, configs and seeds given the same way).

    .venv/bin/python bench/weights_size.py --grid smoke --seeds 3 --check /tmp/results
    .venv/bin/python bench/weights_size.py --main     # tasks.py main: every sweep of the main job
    .venv/bin/python bench/weights_size.py --main --grid smoke --check /tmp/golden/results
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from synth.dataset import bind_params  # noqa: E402
from synth.grids import GENERATORS, load_grid  # noqa: E402
from synth.backbones import build_network  # noqa: E402
from synth.deep_backbone import FAMILY as DEEP_FAMILY  # noqa: E402
from tasks import INSTABILITY_GRID, STABILISER_CONFIGS, STABILITY_COMPARISON  # noqa: E402
from verify.configs import CONFIGS  # noqa: E402
from verify.run.task import make_stabiliser  # noqa: E402
from verify.run.train import schedule  # noqa: E402
from verify.store import open_results  # noqa: E402
from verify.sweep.cli import _split, _stabiliser_applies, parse_stabilisers  # noqa: E402
from verify.sweep.plan import build_tasks  # noqa: E402
from verify.sweep.sources import GridSource  # noqa: E402

# Per file beyond the arrays' bytes: a 128-byte .npy header and about 100 bytes of zip entry per
# member, and the info JSON stored as UTF-32 text (measured on the smoke sweep: see --check).
MEMBER_OVERHEAD = 128 + 110
INFO_BYTES = 4 * 860


def _n_parameters(params: dict) -> int:
    if "depth" in params:  # synth.deep_tasks: the LayerNorm backbone
        architecture = {"family": DEEP_FAMILY, "n_features": params["n_features"],
                        "width": params["width"], "depth": params["depth"],
                        "n_classes": params.get("n_classes", 2)}
    else:
        architecture = {"n_features": params["n_features"], "hidden": list(params["hidden"]),
                        "n_classes": params.get("n_classes", 2)}
    return sum(parameter.numel() for parameter in build_network(architecture).parameters())


def _n_samples(params: dict) -> int:
    if "n_samples" in params:
        return int(params["n_samples"])
    return int(params["n_per_class"]) * int(params.get("n_classes", 2))


def n_left_out(config, n_samples: int) -> int:
    """Left-out models per seed (``verify.run.layout.choose_left_out``)."""
    exact = n_samples <= max(config.exact_left_out_up_to or 0, config.max_left_out)
    return n_samples if exact else config.max_left_out


def predicted_bytes(task, params: dict, kind: str) -> int:
    config = task.config
    # The stabiliser's schedule change as the trainers apply it (the step size does not matter here).
    _, _, checkpoints = schedule(config, make_stabiliser(task), 1.0)
    n_checkpoints = len(checkpoints) - 1
    n_models = len(task.seeds) * (1 + n_left_out(config, _n_samples(params)))
    classes = params.get("n_classes", 2)
    if kind in ("mlp", "deep_mlp"):
        n_weights, extra = _n_parameters(params), 3
    else:
        n_weights = params["n_features"] * (classes if kind == "separable" and classes > 2 else 1)
        extra = 0
    size = 8 * (n_checkpoints + 1) * n_models * n_weights + 8 * (n_checkpoints + 3 * n_models) + n_models
    size += (10 * n_weights if kind in ("mlp", "deep_mlp") else 0)
    return size + (7 + extra + 1) * MEMBER_OVERHEAD + INFO_BYTES


def plan(grid: str, seeds: int, stabilisers: str, configs: str | None):
    specs = load_grid(grid)
    params = {spec.id: bind_params(GENERATORS[spec.generator].function, spec.params) for spec in specs}
    kinds = {spec.id: spec.kind for spec in specs}
    chosen = [CONFIGS[name] for name in (_split(configs) if configs else CONFIGS)]
    tasks = build_tasks(GridSource(tuple(specs)).entries(), chosen, parse_stabilisers(stabilisers),
                        n_seeds=seeds, applies=_stabiliser_applies)
    return [(task, predicted_bytes(task, params[task.dataset_id], kinds[task.dataset_id])) for task in tasks]


def main_job(grid: str, seeds: int):
    """The tasks of ``tasks.py main --grid GRID``: its sweeps into one results folder (a task two
    sweeps plan is trained and stored once): the plain sweep, every stabiliser on the stabiliser
    slice, and the deep stabiliser comparison over the strength grids (on the default grid: the
    instability grid's training configs, then every stabiliser's grid)."""
    stabiliser_grid = "stabilisers" if grid == "default" else grid
    sweeps = [(grid, "none", None), (stabiliser_grid, "all", STABILISER_CONFIGS)]
    if grid == "default":
        sweeps += [(INSTABILITY_GRID, "none", None), (INSTABILITY_GRID, "grid", STABILITY_COMPARISON)]
    else:
        sweeps.append((grid, "none,mmr:grid,mhloss:grid,surt:grid", STABILITY_COMPARISON))
    planned = {}
    for sweep_grid, stabilisers, configs in sweeps:
        planned.update((task.key, (task, size))
                       for task, size in plan(sweep_grid, seeds, stabilisers, configs))
    return list(planned.values())


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
    with open_results(folder) as results:
        actual = {row["task_key"]: row["weights"] for row in results.tasks(status="done")
                  if row["weights"] is not None}
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
        planned = main_job(args.grid, args.seeds)
        total = report(planned, f"main job on grid {args.grid}, --seeds {args.seeds}")
        print(f"main job: {total / 2**30:.3f} GiB of weights")
    else:
        planned = plan(args.grid, args.seeds, args.stabilisers, args.configs)
        report(planned, json.dumps({"grid": args.grid, "seeds": args.seeds}))
    if args.check:
        check(planned, args.check)


if __name__ == "__main__":
    main()
