"""The sweep machinery with a stand-in task: resume after SIGKILL, failures, worker-count invariance.

The stand-in runner computes rows from the task's coordinates only (as the real one must), so any
difference between runs is the machinery's fault. Real training is covered by test_tasks.py.
"""
from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from verify.configs import CONFIGS, TrainingConfig
from verify.run.layout import ModelLayout
import verify.run.task
from verify.run.task import Task
from verify.run.output import TaskOutput, TaskWeights
from verify.store import RESULTS_FILE, ResultStore, open_results
from verify.sweep.plan import build_tasks, check_sweep, with_max_left_out
from verify.sweep.runner import run_sweep

HERE = Path(__file__).resolve().parent

STANDIN_CONFIGS = (
    TrainingConfig(name="standin_gd", setting="head", kinds=("separable",), loss="logistic",
                   init="zero", lr_scale=1.0, n_steps=100, n_checkpoints=3, max_left_out=2, with_stabilisers=True),
    TrainingConfig(name="standin_sgd", setting="head", kinds=("separable",), loss="logistic",
                   init="random", lr_scale=1.0, n_steps=100, n_checkpoints=3, batch_size=4,
                   max_left_out=2, with_stabilisers=True),
)


@dataclass(frozen=True)
class StandinSource:
    """Datasets that are only cards; ``n_datasets`` of kind separable."""

    n_datasets: int

    def entries(self):
        return [(f"ds{i}", "separable", 2) for i in range(self.n_datasets)]

    def load(self, dataset_id):
        return SimpleNamespace(card={"id": dataset_id, "kind": "separable", "n_samples": 10,
                                     "n_features": 2, "n_classes": 2, "margin": 0.1, "radius": 1.0})

    def cards(self):
        return []


def standin_runner(task, dataset):
    """Rows that are a pure function of the task; stabiliser params steer sleeping and crashing."""
    params = json.loads(task.stabiliser_params)
    if params.get("crash") and not os.environ.get("STANDIN_HEALED"):
        raise RuntimeError(f"stand-in crash on {task.key}")
    time.sleep(params.get("sleep", 0.0))
    rng = np.random.default_rng(task.model_seed(0) % 2**32)
    runs = []
    for seed in task.seeds:
        for left_out in (None, 3, 7):
            for iteration in task.config.checkpoints():
                value = float(rng.random())
                runs.append({"seed": seed, "left_out": left_out, "iteration": int(iteration), "lr": 0.5,
                             "train_loss": value, "test_accuracy": 1 - value, "diverged": 0,
                             "parameter_stability": None if left_out is None else value / 2})
    if params.get("ballast"):  # a large outcome takes long to send back (not a runs column: not stored)
        runs[0]["ballast"] = "x" * params["ballast"]
    seeds = np.repeat(np.asarray(task.seeds), 3)
    layout = ModelLayout(seeds=seeds, left_out=np.tile([-1, 3, 7], len(task.seeds)),
                         model_seeds=np.array([task.model_seed(int(seed)) for seed in seeds]))
    iterations = task.config.checkpoints()
    weights = TaskWeights(task_key=task.key, setting="head", iterations=iterations,
                          weights=rng.random((len(iterations), len(seeds), 2)),
                          w_init=np.zeros((len(seeds), 2)), layout=layout,
                          bounded=layout.left_out >= 0, context={"lr": 0.5},
                          objective=None, config=task.config.to_dict())
    return TaskOutput(runs=runs, weights=weights)


def standin_tasks(n_datasets=3, stabilisers=(("none", {}),), n_seeds=2):
    return build_tasks(StandinSource(n_datasets).entries(), STANDIN_CONFIGS, list(stabilisers),
                       n_seeds=n_seeds)


def table(path: Path, name: str) -> list[tuple]:
    with sqlite3.connect(path / RESULTS_FILE) as conn:
        columns = [row[1] for row in conn.execute(f"PRAGMA table_info({name})")]
        keep = [c for c in columns if c not in ("seconds", "finished_at")]
        return conn.execute(f"SELECT {', '.join(keep)} FROM {name} ORDER BY {keep[0]}, {keep[1]}").fetchall()


def sweep(out, *, tasks=None, workers=1, **kwargs):
    tasks = standin_tasks() if tasks is None else tasks
    return run_sweep(tasks, StandinSource(3), out, n_seeds=2, workers=workers, runner=standin_runner,
                     progress=False, **kwargs)


def test_tasks_cross_configs_and_give_deterministic_configs_one_seed():
    tasks = standin_tasks(n_datasets=2, stabilisers=(("none", {}), ("l2sp", {"strength": 0.1})), n_seeds=3)
    assert len(tasks) == 2 * 2 * 2
    assert {t.seeds for t in tasks if t.config.name == "standin_gd"} == {(0,)}
    assert {t.seeds for t in tasks if t.config.name == "standin_sgd"} == {(0, 1, 2)}
    assert len({t.key for t in tasks}) == len(tasks)


def test_rerun_skips_done_tasks_and_changes_nothing(tmp_path):
    first = sweep(tmp_path)
    assert (first.done, first.failed, first.skipped) == (6, 0, 0)
    before = table(tmp_path, "runs"), table(tmp_path, "tasks")
    second = sweep(tmp_path)
    assert (second.done, second.skipped) == (0, 6)
    assert (table(tmp_path, "runs"), table(tmp_path, "tasks")) == before


def test_identical_results_for_one_and_two_workers(tmp_path):
    sweep(tmp_path / "one", workers=1)
    sweep(tmp_path / "two", workers=2)
    for name in ("runs", "datasets", "tasks"):
        assert table(tmp_path / "one", name) == table(tmp_path / "two", name)
    weights = sorted(path.name for path in (tmp_path / "one" / "weights").iterdir())
    assert len(weights) == 6 and weights == sorted(path.name for path in (tmp_path / "two" / "weights").iterdir())


def test_crashing_task_is_recorded_as_failed_and_retried(tmp_path, monkeypatch):
    tasks = standin_tasks(stabilisers=(("none", {}), ("standin", {"crash": True})))
    summary = sweep(tmp_path, tasks=tasks)
    assert (summary.done, summary.failed) == (6, 6)
    with open_results(tmp_path) as store:
        failed = store.tasks(status="failed")
        assert len(failed) == 6
        assert all("RuntimeError: stand-in crash" in task["error"] and "Traceback" in task["error"]
                   for task in failed)
        assert store.runs(stabiliser="standin") == []
    monkeypatch.setenv("STANDIN_HEALED", "1")
    retry = sweep(tmp_path, tasks=tasks)
    assert (retry.done, retry.failed, retry.skipped) == (6, 0, 6)
    sweep(tmp_path / "clean", tasks=tasks)
    assert table(tmp_path, "runs") == table(tmp_path / "clean", "runs")


def test_rerun_with_other_seed_count_is_refused(tmp_path):
    sweep(tmp_path)
    with pytest.raises(ValueError, match="seeds"):
        run_sweep(standin_tasks(n_seeds=3), StandinSource(3), tmp_path, n_seeds=3, workers=1,
                  runner=standin_runner, progress=False)


# The script sets its own Ctrl-C disposition: a suite started with SIGINT ignored (nohup, `cmd &`)
# hands that to its children, and Python then installs no KeyboardInterrupt handler.
KILLED_SWEEP = """
import signal, sys
signal.signal(signal.SIGINT, signal.default_int_handler)
sys.path.insert(0, {here!r})
from test_sweep import standin_tasks, StandinSource, standin_runner
from verify.sweep.runner import run_sweep
tasks = standin_tasks(n_datasets=4, stabilisers=[("standin", {{"sleep": 0.3}})])
try:
    run_sweep(tasks, StandinSource(4), {out!r}, n_seeds=2, workers={workers}, runner=standin_runner,
              progress=False)
except KeyboardInterrupt:
    sys.exit(130)
"""


def _done_count(out: Path) -> int:
    """Done tasks so far; read-only, so that polling never creates an empty results file before
    the sweep does (a 0-byte results.sqlite is refused)."""
    if not (out / RESULTS_FILE).is_file():
        return 0
    try:
        with sqlite3.connect(f"{(out / RESULTS_FILE).as_uri()}?mode=ro", uri=True, timeout=5) as conn:
            return conn.execute("SELECT COUNT(*) FROM tasks WHERE status = 'done'").fetchone()[0]
    except sqlite3.OperationalError:
        return 0


@pytest.mark.slow
@pytest.mark.parametrize("workers, how, inherited", [(2, signal.SIGKILL, signal.SIG_DFL),
                                                     (2, signal.SIGINT, signal.SIG_DFL),
                                                     (2, signal.SIGINT, signal.SIG_IGN)])
def test_sigkill_or_ctrl_c_midway_then_rerun_gives_the_uninterrupted_results(tmp_path, workers, how,
                                                                              inherited):
    killed = tmp_path / "killed"
    script = KILLED_SWEEP.format(here=str(HERE), out=str(killed), workers=workers)
    # SIG_IGN: the suite itself was started with Ctrl-C ignored, which children inherit
    previous = signal.signal(signal.SIGINT, inherited)
    try:
        process = subprocess.Popen([sys.executable, "-c", script], start_new_session=True,
                                   env={**os.environ, "OMP_NUM_THREADS": "1"})
    finally:
        signal.signal(signal.SIGINT, previous)
    deadline = time.monotonic() + 60
    while _done_count(killed) < 2 and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.05)
    os.killpg(process.pid, how)  # the whole process group, as a terminal's Ctrl-C does
    assert process.wait(timeout=30) == (130 if how == signal.SIGINT else -signal.SIGKILL)
    assert 2 <= _done_count(killed) < 8, "the signal should land mid-sweep"

    tasks = standin_tasks(n_datasets=4, stabilisers=[("standin", {"sleep": 0.3})])
    resumed = run_sweep(tasks, StandinSource(4), killed, n_seeds=2, workers=1, runner=standin_runner,
                        progress=False)
    assert resumed.skipped >= 2
    run_sweep(tasks, StandinSource(4), tmp_path / "clean", n_seeds=2, workers=1,
              runner=standin_runner, progress=False)
    for name in ("runs", "tasks"):
        assert table(killed, name) == table(tmp_path / "clean", name)
    # what a kill left of the weights is reused or removed: exactly the referenced files remain
    referenced = {row[0] for row in sqlite3.connect(killed / RESULTS_FILE).execute("SELECT weights FROM tasks")}
    assert {path.name for path in (killed / "weights").iterdir()} == {f"{sha}.npz" for sha in referenced}
    runs = table(killed, "runs")
    assert len(runs) == len(set(runs)) == 4 * (1 + 2) * 3 * 3  # datasets × seeds × left-outs × checkpoints


TERMINATED_SWEEP = """
import signal, sys
sys.path.insert(0, {here!r})
from test_sweep import standin_tasks, StandinSource, standin_runner
from verify.sweep.runner import run_sweep

def interrupt(signum, frame):
    raise KeyboardInterrupt

signal.signal(signal.SIGTERM, interrupt)
tasks = standin_tasks(n_datasets=8, stabilisers=[("standin", {{"ballast": 40_000_000}})])
try:
    run_sweep(tasks, StandinSource(8), {out!r}, n_seeds=2, workers=2, runner=standin_runner,
              progress=False)
except KeyboardInterrupt:
    sys.exit(130)
"""


def _children(pid: int) -> list[int]:
    listed = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
    return [int(child) for child in listed]


def _alive(pid: int) -> bool:
    try:
        return "zombie" not in Path(f"/proc/{pid}/status").read_text().lower()
    except FileNotFoundError:
        return False


@pytest.mark.slow
def test_sigterm_while_workers_send_results_ends_the_process_and_every_worker(tmp_path):
    # Workers ended mid-send used to leave the pool's manager thread waiting for the rest of a
    # message for ever, and the interpreter joins that thread at exit: the process never ended.
    out = tmp_path / "terminated"
    process = subprocess.Popen([sys.executable, "-c", TERMINATED_SWEEP.format(here=str(HERE), out=str(out))],
                               env={**os.environ, "OMP_NUM_THREADS": "1"})
    try:
        deadline = time.monotonic() + 60
        while _done_count(out) < 1 and time.monotonic() < deadline and process.poll() is None:
            time.sleep(0.05)
        children = _children(process.pid)
        process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 30
        while process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert process.poll() == 130, "the sweep did not exit within 30 s of SIGTERM"
        deadline = time.monotonic() + 10
        while any(_alive(child) for child in children) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert children and not any(_alive(child) for child in children)
        assert 1 <= _done_count(out) < 16
    finally:
        for child in _children(process.pid):
            os.kill(child, signal.SIGKILL)
        process.kill()
        process.wait()


def warmth_runner(task, dataset):
    """One row saying what the worker had imported before its first task ran."""
    import sys as worker_sys
    return TaskOutput(runs=[{"seed": 0, "left_out": None, "iteration": 0,
                             "torch": "torch" in worker_sys.modules,
                             "runner": "verify.run.runner" in worker_sys.modules}])


def test_pool_workers_start_with_torch_and_the_task_runner_already_imported():
    # Workers are forked from a fork server that imported torch and the task runner once
    # (verify.sweep.preload), instead of each importing them on its first task; the stand-in
    # runner and this module import neither.
    from verify.sweep.executors import _run_on_pool, each_task, pool_context
    if pool_context().get_start_method() != "forkserver":
        pytest.skip("no fork server on this platform: workers are spawned")
    groups = [[task] for task in standin_tasks(n_datasets=2)[:4]]
    outcomes = list(_run_on_pool(groups, StandinSource(2), partial(each_task, warmth_runner), 2))
    assert [outcome["status"] for outcome in outcomes] == ["done"] * 4
    assert all(outcome["runs"][0]["torch"] and outcome["runs"][0]["runner"] for outcome in outcomes)


def test_tasks_group_by_key_in_order_and_without_a_key_alone():
    from verify.sweep.plan import group_tasks
    tasks = standin_tasks(n_datasets=2, stabilisers=(("none", {}), ("l2sp", {"strength": 0.1})))
    keyed = group_tasks(tasks, lambda task: task.dataset_id if task.stabiliser == "none" else None)
    assert [task for group in keyed for task in group] != [] and sum(map(len, keyed)) == len(tasks)
    for group in keyed:
        assert len({task.dataset_id for task in group}) == 1
        assert len(group) == 1 or {task.stabiliser for task in group} == {"none"}
    assert sorted(len(group) for group in keyed) == [1, 1, 1, 1, 2, 2]
    assert keyed[0][0] is tasks[0]
    assert group_tasks(tasks, None) == [[task] for task in tasks]


def test_max_left_out_sets_the_budget_of_left_out_configs_and_leaves_seed_spread_configs_alone():
    loo, spread = CONFIGS["head_gd_logistic"], CONFIGS["head_sgd_logistic_random_lr0.1"]
    assert loo.max_left_out > 0 and loo.exact_left_out_up_to > 0 and spread.max_left_out == 0
    capped, kept = with_max_left_out([loo, spread], 4)
    assert (capped.max_left_out, capped.exact_left_out_up_to) == (4, 0)
    assert kept == spread
    assert with_max_left_out([loo, spread], None) == [loo, spread]
    # Exact up to E but no stratified budget still leaves samples out: the budget applies.
    [exact_only] = with_max_left_out([replace(spread, exact_left_out_up_to=64)], 4)
    assert (exact_only.max_left_out, exact_only.exact_left_out_up_to) == (4, 0)


def test_tasks_whose_run_ids_would_share_a_prefix_are_refused_before_running(tmp_path, monkeypatch):
    config = CONFIGS["head_gd_logistic"]
    tasks = [Task(f"separable-{i}", config, "none", "{}") for i in range(40)]
    with ResultStore(tmp_path / "results.sqlite") as store:
        assert check_sweep(store, tasks, 1)["n_seeds"] == "1"  # 40-bit prefixes: all distinct
        monkeypatch.setattr(verify.run.task, "TASK_BITS", 4)  # 16 prefixes for 40 tasks
        with pytest.raises(ValueError, match=r"tasks: .* have the same run-id prefix"):
            check_sweep(store, tasks, 1)
