"""The small-sweep rule: work predicted to finish sooner in-process than on a pool runs in-process.

The predictor (``verify.run.cost``) must order sweeps by their size; the rule
(``verify.sweep.choice``) must pick in-process below the break-even and the pool above it, never
more workers than ``--workers``, and never second-guess a Dask cluster; and where a sweep ran must
not change a stored number.
"""
from __future__ import annotations

import multiprocessing
import os
import sqlite3
import subprocess
import sys
from dataclasses import replace

import pytest

from test_sweep import StandinSource, standin_runner, standin_tasks, table
from verify.configs import CONFIGS
from verify.run.cost import COST_CONSTANTS, predicted_seconds, sweep_predictor, task_work
from verify.sweep import choice
from verify.sweep.choice import (POOL_START_SECONDS, WORKER_START_SECONDS, choose_executor,
                                 makespan)
from verify.sweep.plan import build_tasks
from verify.sweep.runner import run_sweep

# The process each task ran in, appended where it ran (a pool worker appends to its own copy).
RAN_IN: list[int] = []


def recording_runner(task, dataset):
    RAN_IN.append(os.getpid())
    return standin_runner(task, dataset)


def separable(n: int, d: int, n_classes: int = 2) -> dict:
    return {"n_samples": n, "n_features": d, "n_classes": n_classes, "n_test": 256}


def head_sweep(n_datasets: int, n: int, d: int, configs: list[str], seeds: int):
    """Tasks and their predictor for separable datasets of one shape (no data generated)."""
    entries = [(f"separable-{i}", "separable", 2) for i in range(n_datasets)]
    tasks = build_tasks(entries, [CONFIGS[name] for name in configs], [("none", {})], n_seeds=seeds)
    params = {dataset_id: ("separable", separable(n, d)) for dataset_id, _, _ in entries}
    return tasks, sweep_predictor(params)


def break_even(workers: int = 2) -> float:
    """The least start-up a cold pool of ``workers`` pays."""
    return POOL_START_SECONDS + workers * WORKER_START_SECONDS


def test_the_constants_are_measured_positive_numbers():
    assert POOL_START_SECONDS > 0 and WORKER_START_SECONDS > 0
    for model, constants in COST_CONSTANTS.items():
        assert all(value >= 0 for value in constants) and any(value > 0 for value in constants), model


def test_a_tiny_head_sweep_is_predicted_below_the_break_even_and_a_big_one_above():
    tiny, tiny_cost = head_sweep(2, 16, 2, ["head_gd_logistic"], seeds=1)
    big, big_cost = head_sweep(20, 256, 32, ["head_gd_logistic", "head_sgd_logistic_random"], seeds=10)
    tiny_seconds = sum(tiny_cost([task]) for task in tiny)
    big_seconds = sum(big_cost([task]) for task in big)
    assert 0 < tiny_seconds < break_even()
    assert big_seconds > 10 * break_even()
    assert choose_executor([tiny_cost([task]) for task in tiny], 2, n_groups=len(tiny),
                           cores=2).in_process
    assert choose_executor([big_cost([task]) for task in big], 2, n_groups=len(big),
                           cores=2).workers == 2


@pytest.mark.parametrize("grown", ["n", "d", "seeds", "steps"])
def test_more_samples_features_models_or_steps_predict_more_seconds(grown):
    # full-batch GD from random heads: every seed is a model, every sample in every step
    config = CONFIGS["head_gd_logistic_random"]

    def seconds(n=300, d=8, seeds=2, steps=config.n_steps):
        task = build_tasks([("separable-0", "separable", 2)], [replace(config, n_steps=steps)],
                           [("none", {})], n_seeds=seeds)[0]
        return predicted_seconds([task_work(task, "separable", separable(n, d))])

    base = {"n": 300, "d": 8, "seeds": 2, "steps": config.n_steps}
    assert seconds(**{grown: 4 * base[grown]}) > seconds() > 0


def test_tasks_sharing_a_trainer_call_pay_the_steps_once():
    tasks, _ = head_sweep(1, 32, 4, ["head_gd_logistic", "head_gd_logistic_lr0.1"], seeds=1)
    works = [task_work(task, "separable", separable(32, 4)) for task in tasks]
    together = predicted_seconds(works)
    apart = sum(predicted_seconds([work]) for work in works)
    step = COST_CONSTANTS[works[0].model][1]
    assert together == pytest.approx(apart - step * works[0].n_steps)


def test_the_rule_compares_in_process_with_start_up_plus_the_pools_makespan():
    start = break_even(2)
    assert choose_executor([0.1] * 4, 1, n_groups=4).in_process            # --workers 1
    assert choose_executor([100.0], 4, n_groups=1).in_process              # nothing to share
    assert choose_executor(None, 3, n_groups=5).workers == 3               # no prediction: the pool
    assert choose_executor(None, 8, n_groups=5).workers == 5               # never more than the work
    below = choose_executor([start / 4] * 2, 2, n_groups=2, cores=2)
    assert below.in_process and below.label == "in-process (small sweep)"
    above = choose_executor([2 * start] * 2, 2, n_groups=2, cores=2)
    assert above.workers == 2 and above.label == "2 workers"
    # one long group: a pool cannot finish before it, so its start-up is not paid back
    assert choose_executor([10 * start, start / 10], 2, n_groups=2, cores=2).in_process
    # a warm fork server leaves only the workers' start: the same work then pays for a pool
    same = [0.6 * start] * 2
    assert choose_executor(same, 2, n_groups=2, cores=2).in_process
    assert choose_executor(same, 2, n_groups=2, cores=2, pool_warm=True).workers == 2
    # on one core a pool cannot run anything side by side
    assert choose_executor([2 * start] * 2, 2, n_groups=2, cores=1).in_process
    with pytest.raises(ValueError, match="workers"):
        choose_executor([1.0], 0, n_groups=1)


def test_makespan_is_longest_first_to_the_first_free_worker():
    assert makespan([3, 3, 2, 2, 2], 2) == 7
    assert makespan([5, 1, 1], 3) == 5
    assert makespan([1, 2, 3], 1) == 6


def standin_sweep(out, expected, workers=2):
    return run_sweep(standin_tasks(), StandinSource(3), out, n_seeds=2, workers=workers,
                     runner=recording_runner, progress=False, expected_seconds=expected)


def test_a_small_sweep_with_two_workers_runs_in_process_and_a_large_one_on_the_pool(tmp_path):
    RAN_IN.clear()
    before = set(multiprocessing.active_children())
    small = standin_sweep(tmp_path / "small", lambda group: 0.01)
    assert small.executor.startswith("in-process (small sweep): 0.1 CPU s predicted")
    assert RAN_IN == [os.getpid()] * 6 and set(multiprocessing.active_children()) == before
    RAN_IN.clear()
    large = standin_sweep(tmp_path / "large", lambda group: 1000.0)
    assert large.executor.startswith("2 workers: 6000.0 CPU s predicted")
    assert RAN_IN == [] and (large.done, large.failed) == (6, 0)    # every task ran in a worker
    for name in ("runs", "datasets", "tasks"):
        assert table(tmp_path / "small", name) == table(tmp_path / "large", name)


def test_without_a_prediction_two_workers_still_mean_a_pool(tmp_path):
    RAN_IN.clear()
    summary = standin_sweep(tmp_path, None)
    assert summary.executor == "2 workers" and RAN_IN == [] and summary.done == 6


def test_a_dask_client_is_used_however_small_the_sweep(tmp_path):
    distributed = pytest.importorskip("distributed")
    RAN_IN.clear()
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False, protocol="tcp",
                                  host="127.0.0.1", dashboard_address=None) as cluster, \
            distributed.Client(cluster.scheduler_address) as client:
        summary = run_sweep(standin_tasks(), StandinSource(3), tmp_path, n_seeds=2, workers=2,
                            client=client, runner=_record_thread, progress=False,
                            expected_seconds=lambda group: 0.0)
    # in-process, every task would run on this thread, which consumes the outcomes
    assert summary.executor == "Dask cluster" and summary.done == 6
    assert len(RAN_IN) == 6 and "MainThread" not in RAN_IN


def _record_thread(task, dataset):
    import threading
    RAN_IN.append(threading.current_thread().name)
    return standin_runner(task, dataset)


def test_the_pool_always_fixture_switches_the_rule_off(pool_always):
    assert choice.POOL_START_SECONDS == float("-inf")
    assert choose_executor([0.0] * 2, 2, n_groups=2, cores=2).workers == 2


def test_the_cli_says_where_the_sweep_and_its_bounds_ran(tmp_path):
    # a fresh process: no fork server yet (this one may hold a warm one, which pays for a pool)
    grid = tmp_path / "grid.toml"
    grid.write_text('[[block]]\ngenerator = "make_separable"\n'
                    'fixed = { n_samples = 16, n_features = 2, random_state = 1 }\n'
                    'vary = { margin = [0.1, 0.3] }\n')
    result = subprocess.run(
        [sys.executable, "-m", "verify.cli", "verify", "--grid", str(grid), "--out", str(tmp_path / "out"),
         "--configs", "head_gd_logistic,head_gd_exponential", "--workers", "2"],
        capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "4 tasks: 0 already done, 4 run, 0 failed" in lines[0]
    assert "(in-process (small sweep): " in lines[0]
    assert lines[2].startswith("  bounds:") and "(in-process (small sweep): " in lines[2]
    assert "verify, in-process (small sweep)" in result.stderr     # the progress bar
    with sqlite3.connect(tmp_path / "out" / "results.sqlite") as conn:
        assert conn.execute("SELECT COUNT(*) FROM tasks WHERE status = 'done'").fetchone()[0] == 4
