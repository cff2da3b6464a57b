"""MHLoss's claim itself, on fixed features: at equal effective steps (balanced reading, each head
steps as the single head does) the mean of H heads reaches a target seed spread of its direction in
fewer iterations than one head, with the same expected direction; its margin gap and training loss
converge as one head's do. The run layer sets both step sizes (verify.run.train.train_head_task)."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from synth.separable import make_separable
from verify.configs import CONFIGS
from verify.run.layout import model_layout
from verify.run.task import Task
from verify.run.train import train_head_task
from verify.stabilisers import MHLoss
from verify.verdicts.multihead import iterations_to_reach

N_SEEDS = 24


@pytest.fixture(scope="module")
def runs():
    """Plain (H = 1) and balanced MHLoss (H = 4) heads on few samples with wide features (the
    null space, where the init stays, is large), every seed on the full set."""
    dataset = make_separable(16, 24, margin=0.3, radius=1.0, random_state=0)
    config = replace(CONFIGS["head_gd_logistic_random"], n_steps=1000, n_checkpoints=16)
    out = {}
    for label, stabiliser in (("plain", None), ("mhloss", MHLoss(n_heads=4))):
        name, params = ("none", "{}") if stabiliser is None else ("mhloss", "{}")
        layout = model_layout(Task(dataset.id, config, name, params, seeds=tuple(range(N_SEEDS))),
                              np.empty(0, dtype=np.int64))
        out[label] = train_head_task(config, dataset, stabiliser, layout,
                                     layout.masks(len(dataset.X)))
    return dataset, out


def _curves(dataset, trained):
    u = trained.weights / np.linalg.norm(trained.weights, axis=-1, keepdims=True)   # (K, seeds, d)
    spread = ((u - u.mean(1, keepdims=True)) ** 2).sum(-1).mean(1)
    signs = 2 * dataset.y - 1
    gap = dataset.card["margin"] - (signs * (u @ dataset.X.T)).min(-1).mean(1)
    return {"seed_spread": spread, "margin_gap": gap, "train_loss": trained.train_loss.mean(1)}


def test_equal_effective_steps(runs):
    _, out = runs
    # The balanced reading steps each head at the single head's lr (block-diagonal curvature).
    assert out["mhloss"].lr == out["plain"].lr and out["mhloss"].head_lr == out["plain"].head_lr


def test_the_mean_of_four_heads_reaches_the_seed_spread_of_one_in_fewer_iterations(runs):
    dataset, out = runs
    plain, heads = _curves(dataset, out["plain"]), _curves(dataset, out["mhloss"])
    iterations = out["plain"].iterations
    target = plain["seed_spread"][-1]
    faster = iterations_to_reach(iterations, plain["seed_spread"], target) / iterations_to_reach(
        iterations, heads["seed_spread"], target)
    # Measured 31x (24 seeds, T = 1000; 33x with 96 seeds), and the final spread 0.26 of one
    # head's (1/H = 0.25 to first order, M.2-M.3). The spread falls like 1/log^2 t (Theorem S), so
    # a factor 4 in variance is a large factor in t. Asserted: more than 4x, and below half.
    assert faster > 4
    assert heads["seed_spread"][-1] < 0.5 * target
    # Same expected direction: the heads are single-head runs from other inits.
    mean_plain, mean_heads = (trained.weights[-1] / np.linalg.norm(trained.weights[-1], axis=-1,
                                                                    keepdims=True)
                              for trained in (out["plain"], out["mhloss"]))
    assert np.linalg.norm(mean_plain.mean(0) - mean_heads.mean(0)) < 3 * np.sqrt(target / N_SEEDS)


def test_margin_gap_and_training_loss_converge_as_one_heads(runs):
    """Not predicted to be faster, and measured not to be: iterations ratios 1.05 (margin gap) and
    1.0005 (training loss) at 24 seeds; asserted within 10% of 1."""
    dataset, out = runs
    plain, heads = _curves(dataset, out["plain"]), _curves(dataset, out["mhloss"])
    iterations = out["plain"].iterations
    for quantity in ("margin_gap", "train_loss"):
        target = plain[quantity][-1] * 1.05
        ratio = iterations_to_reach(iterations, plain[quantity], target) / iterations_to_reach(
            iterations, heads[quantity], target)
        assert 0.9 < ratio < 1.1, quantity


def test_iterations_to_reach_interpolates_in_log_t():
    iterations = np.array([1, 10, 100, 1000])
    values = np.array([1.0, 0.5, 0.25, 0.125])
    assert iterations_to_reach(iterations, values, 0.5) == pytest.approx(10)
    assert iterations_to_reach(iterations, values, 0.375) == pytest.approx(np.sqrt(10 * 100))
    assert iterations_to_reach(iterations, values, 2.0) == 1
    assert iterations_to_reach(iterations, values, 0.1) == np.inf
