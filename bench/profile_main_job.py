"""Where a main job's time and memory go: each step of ``tasks.py main`` under cProfile.

    python bench/profile_main_job.py --grid smoke --out /tmp/profile [--workers 1] [--top 25]

Runs the main job's own step list (``tasks.cmd_main``: synth, verify, the stabiliser sweep, ...,
figures, report), each step in its own process under :mod:`cProfile`, and reports per step its CPU
seconds, wall seconds and peak resident memory (``wait4``'s rusage of that process), then the
cumulative CPU seconds of the functions that say where the work is: training per trainer, rows
(measures), bound constants, storage, verdicts, figures, imports. With ``--workers 1`` (the
default) every task runs in the step's own process, so the profile sees all of it; the results
are the same as with any worker count (seeds and run ids come from coordinates), so the folder can
be checked against a golden file with ``ftstab check``.
"""
from __future__ import annotations

import argparse
import os
import pstats
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
import tasks  # noqa: E402  (the main job's step list lives in tasks.py)

# label -> substrings of "file:line(function)" whose cumulative time is reported (first match wins
# per function; nested matches are not added twice because each label takes the largest one).
WHERE = {
    "train heads": ["train.py", "(train_head_task)"],
    "train least squares": ["train.py", "(train_quadratic_task)"],
    "train MLP": ["train.py", "(train_mlp_task)"],
    "rows (measures)": ["rows.py", "(trace_rows)"],
    "bound constants": ["evaluate.py", "(bound_rows)"],
    "storage (write)": ["store", "(write_done)"],
    "verdicts": ["verdicts", "(write_verdicts)"],
    "figures": ["figures/cli.py", "(run)"],
    "imports": ["<frozen importlib._bootstrap>", "(_find_and_load)"],
}

WRAPPER = ("import cProfile, sys; from verify.cli import main; stats = sys.argv[1]; "
           "sys.argv = ['ftstab'] + sys.argv[2:]; profile = cProfile.Profile(); "
           "code = profile.runcall(main, sys.argv[1:]); profile.dump_stats(stats); sys.exit(code)")


def profiled_runner(out: Path, steps: list[dict]):
    """A stand-in for ``tasks.run`` that profiles each ``ftstab`` step and records its rusage."""
    def run(cmd: list[str], env: dict[str, str] | None = None) -> int:
        index = len(steps)
        stats = out / f"step{index}.prof"
        command = [str(tasks.PYTHON), "-c", WRAPPER, str(stats), *cmd[1:]]
        print(f"[profile] step {index}: ftstab {' '.join(cmd[1:])}", flush=True)
        start = time.perf_counter()
        process = subprocess.Popen(command, cwd=tasks.ROOT, env={**os.environ, **(env or {})})
        _, status, usage = os.wait4(process.pid, 0)
        steps.append({"step": " ".join(cmd[1:3]), "wall_s": time.perf_counter() - start,
                      "cpu_s": usage.ru_utime + usage.ru_stime, "peak_mib": usage.ru_maxrss / 1024,
                      "stats": stats})
        return os.waitstatus_to_exitcode(status)
    return run


def where(stats_file: Path) -> dict[str, float]:
    stats = pstats.Stats(str(stats_file)).stats
    found = {}
    for (file, line, function), (_, _, _, cumulative, _) in stats.items():
        name = f"{file}:{line}({function})"
        for label, parts in WHERE.items():
            if all(part in name for part in parts):
                found[label] = max(found.get(label, 0.0), cumulative)
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--grid", default="smoke")
    parser.add_argument("--out", required=True)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--seeds", type=int, default=10)
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    steps: list[dict] = []
    tasks.run = profiled_runner(out, steps)
    tasks.ensure_venv = lambda extras="test": None
    code = tasks.cmd_main(argparse.Namespace(grid=args.grid, out=str(out), workers=args.workers,
                                             seeds=args.seeds))
    print(f"\n{'step':28s} {'cpu_s':>8s} {'wall_s':>8s} {'peak_mib':>9s}")
    for step in steps:
        print(f"{step['step']:28s} {step['cpu_s']:8.1f} {step['wall_s']:8.1f} {step['peak_mib']:9.0f}")
    print(f"{'total':28s} {sum(s['cpu_s'] for s in steps):8.1f} {sum(s['wall_s'] for s in steps):8.1f}")
    print("\ncumulative seconds inside each step (profiled):")
    for step in steps:
        if step["stats"].exists():
            found = where(step["stats"])
            print(f"  {step['step']}: " + ", ".join(f"{label} {seconds:.1f}"
                                                    for label, seconds in found.items()))
    return code


if __name__ == "__main__":
    sys.exit(main())
