"""The memory estimate of a task is a lower bound on what running it allocates, and a sweep that
cannot fit is refused with the estimate and the machine's memory."""
from __future__ import annotations

import tracemalloc
from dataclasses import replace

import pytest

from synth.dataset import bind_params
from synth.separable import make_separable
from verify.configs import CONFIGS
from verify.run.memory import MemoryEstimate, check_memory, format_bytes, task_memory
from verify.run.runner import run_task
from verify.run.task import Task


def test_estimate_is_below_what_a_head_task_allocates():
    params = dict(n_samples=20, n_features=3, margin=0.25, n_test=32, random_state=0)
    dataset = make_separable(**params)
    config = replace(CONFIGS["head_sgd_logistic_random"], n_steps=50, max_left_out=20)
    task = Task(dataset.card["id"], config, seeds=(0, 1, 2))
    estimate = task_memory(task, "separable", bind_params(make_separable, params))
    assert estimate.n_models == 3 * 21
    tracemalloc.start()
    try:
        output = run_task(task, dataset)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(output.runs) == estimate.n_models * (estimate.n_checkpoints - 1)
    # torch's buffers (scores) are not traced: the traced peak alone must already exceed the
    # estimate less those
    scores = estimate.n_models * params["n_samples"] * 8
    assert estimate.bytes - scores <= peak


def test_estimate_grows_with_seeds_heads_and_left_out_sets():
    params = bind_params(make_separable, dict(n_samples=50, n_features=4, margin=0.1))
    config = CONFIGS["head_sgd_logistic_random"]
    base = task_memory(Task("d", config, seeds=(0,)), "separable", params).bytes
    assert task_memory(Task("d", config, seeds=(0, 1)), "separable", params).bytes > 1.9 * base
    heads = task_memory(Task("d", config, "mhloss", '{"n_heads":4}', (0,)), "separable", params)
    assert heads.n_params == 4 * 4 and heads.bytes > base
    fewer = task_memory(Task("d", replace(config, max_left_out=1), seeds=(0,)), "separable", params)
    assert fewer.bytes < base


def test_refusal_names_the_estimate_and_the_machine():
    small = MemoryEstimate(bytes=600, n_models=2, n_params=3, n_checkpoints=4)
    big = MemoryEstimate(bytes=2000, n_models=10, n_params=3, n_checkpoints=4)
    check_memory([("a", small), ("b", small)], workers=1, available=1000)
    with pytest.raises(ValueError, match=r"^memory: task b needs at least 2.0 KiB \(10 models x 3 "
                                         r"parameters x 4 checkpoints\); this machine has 1000 B"):
        check_memory([("a", small), ("b", big)], workers=1, available=1000)
    with pytest.raises(ValueError, match=r"^memory: 2 workers would run tasks needing at least "
                                         r"1.2 KiB at once; this machine has 1000 B"):
        check_memory([("a", small), ("b", small)], workers=2, available=1000)
    assert format_bytes(3 * 2**30) == "3.0 GiB"
