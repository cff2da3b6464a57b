"""Leave-one-out averages E_i: exact, or an unbiased stratified estimate with its standard error."""
from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from synth.separable import make_separable
from verify.configs import CONFIGS, TrainingConfig
from verify.run.layout import EXACT, MIN_PER_STRATUM, PARTIAL, STRATIFIED, choose_left_out
from verify.run.runner import run_task
from verify.run.task import Task
from verify.sweep.plan import with_max_left_out

from tests.verify.task_bounds import bounds_of


@given(n=st.integers(1, 60), data=st.data())
def test_left_out_plan_samples_every_stratum_and_is_a_function_of_the_dataset(n, data):
    support = np.array(sorted(data.draw(st.sets(st.integers(0, n - 1)))), dtype=np.int64)
    budget = data.draw(st.integers(0, n + 3))
    plan = choose_left_out("ds", n, support, budget=budget)
    samples = plan.samples
    assert len(samples) == min(budget, n) and len(set(samples.tolist())) == len(samples)
    assert ((0 <= samples) & (samples < n)).all()
    np.testing.assert_array_equal(plan.stratum, np.isin(samples, support))
    np.testing.assert_array_equal(samples, choose_left_out("ds", n, support, budget=budget).samples)
    sizes = np.array([n - len(support), len(support)])
    np.testing.assert_array_equal(plan.stratum_sizes, sizes)
    used = plan.used()
    if budget >= n:
        assert plan.estimator == EXACT and (used == sizes).all()
    elif budget >= np.minimum(sizes, MIN_PER_STRATUM).sum():
        # Every stratum has its guaranteed share, however many support vectors there are.
        assert plan.estimator == STRATIFIED
        assert (used >= np.minimum(sizes, MIN_PER_STRATUM)).all()
    if budget:
        weights = plan.weights()
        assert math.isclose(weights.sum(), 1.0)
        if plan.estimator != PARTIAL:
            # Each stratum carries exactly its share of S.
            for h in (0, 1):
                assert math.isclose(weights[plan.stratum == h].sum(), sizes[h] / n, abs_tol=1e-12)
        if plan.estimator == EXACT:
            np.testing.assert_allclose(weights, 1.0 / n)
            assert plan.standard_error(np.arange(n, dtype=float)[samples]) == 0.0


def test_partial_plan_says_so_and_has_no_standard_error():
    plan = choose_left_out("ds", 10, np.array([0, 1, 2]), budget=1)
    assert plan.estimator == PARTIAL and plan.used().sum() == 1
    assert math.isnan(plan.standard_error(np.ones(1)))


def test_exact_up_to_leaves_out_every_sample_whatever_the_budget():
    plan = choose_left_out("ds", 40, np.arange(10), budget=4, exact_up_to=40)
    assert plan.estimator == EXACT and sorted(plan.samples.tolist()) == list(range(40))
    assert choose_left_out("ds", 41, np.arange(10), budget=4, exact_up_to=40).estimator == STRATIFIED
    assert len(choose_left_out("ds", 40, np.arange(10), budget=0).samples) == 0


def test_stratified_estimate_is_unbiased_and_its_standard_error_is_the_sampling_spread():
    # More support vectors (12) than the budget (8): the old choice took support vectors only, whose
    # mean (about 6) is far from the mean over S (about 2).
    n, support, budget = 40, np.arange(5, 17), 8
    values = np.random.default_rng(0).random(n) + np.isin(np.arange(n), support) * 5.0
    estimates, errors = [], []
    for draw in range(1000):
        plan = choose_left_out(f"ds{draw}", n, support, budget=budget)
        estimates.append(plan.weights() @ values[plan.samples])
        errors.append(plan.standard_error(values[plan.samples]))
    estimates, errors = np.array(estimates), np.array(errors)
    # The exact sampling variance of the stratified mean: sum_h (N_h/N)^2 (1 - n_h/N_h) S_h^2 / n_h.
    plan = choose_left_out("ds0", n, support, budget=budget)
    variance = 0.0
    for h, size in enumerate(plan.stratum_sizes):
        population = values[np.isin(np.arange(n), support) == bool(h)]
        n_h = plan.used()[h]
        variance += (size / n) ** 2 * (1 - n_h / size) * population.var(ddof=1) / n_h
    # The mean of 1000 independent draws is normal within 4 of its standard deviations
    # (two-sided probability 6e-5 of a false alarm).
    assert abs(estimates.mean() - values.mean()) <= 4 * math.sqrt(variance / len(estimates))
    # SE^2 is unbiased for the variance; its own spread over draws sets the tolerance.
    spread = (errors**2).std(ddof=1) / math.sqrt(len(errors))
    assert abs((errors**2).mean() - variance) <= 4 * spread


@pytest.fixture(scope="module")
def many_support_vectors():
    # n_support = min(d, n // 4) = 8 support vectors, as many as the budget below.
    return make_separable(32, 8, margin=0.1, radius=1.0, random_state=3)


def test_stored_e_i_is_the_exact_mean_over_all_samples_within_its_standard_error(many_support_vectors):
    dataset = many_support_vectors
    k_support = len(dataset.arrays["support"])
    config = TrainingConfig(name="test_loo_budget", setting="head", kinds=("separable",),
                            loss="logistic", init="zero", lr_scale=1.0, n_steps=300, n_checkpoints=4,
                            max_left_out=8)
    assert k_support >= config.max_left_out
    sampled = run_task(Task(dataset.id, config), dataset).runs
    exact = run_task(Task(dataset.id, with_max_left_out([config], len(dataset.X))[0]), dataset).runs
    measure = "head_direction_stability"
    checked = 0
    for iteration in sorted({row["iteration"] for row in sampled}):
        rows = [row for row in sampled if row["left_out"] is not None and row["iteration"] == iteration]
        all_rows = [row for row in exact if row["left_out"] is not None and row["iteration"] == iteration]
        assert {row["left_out_estimator"] for row in rows} == {STRATIFIED}
        assert {row["left_out_estimator"] for row in all_rows} == {EXACT}
        assert {(row["left_out_n_support"], row["left_out_n_other"]) for row in rows} == {(2, 6)}
        estimate = sum(row["left_out_weight"] * row[measure] for row in rows)
        truth = np.mean([row[measure] for row in all_rows])
        error = rows[0][f"{measure}_se"]
        assert all(row[f"{measure}_se"] == error for row in rows) and error > 0
        assert all_rows[0][f"{measure}_se"] == 0.0
        # Data and left-out draw are fixed (random_state=3): measured |estimate - exact| / SE <= 0.5
        # at every checkpoint here, so 4 leaves a margin of 8. Why not 2: with two support vectors
        # left out the stratum's variance has one degree of freedom, so the ratio has t_1 tails
        # (random_state 0-5 reach 4.2), where a normal estimate would leave 4 SE with p = 6e-5.
        assert abs(estimate - truth) <= 4 * error, (iteration, estimate, truth, error)
        support_only = np.mean([row[measure] for row in rows if row["left_out_support"]])
        checked += abs(support_only - truth) > 4 * error
    # The support-vector-only mean (the old estimate) is outside 4 SE at some checkpoint.
    assert checked > 0


def test_deterministic_head_configs_leave_out_every_sample_up_to_256():
    for config in CONFIGS.values():
        if config.setting == "head" and config.max_left_out and not config.stochastic:
            assert config.exact_left_out_up_to == 256
    config = CONFIGS["head_gd_logistic"]
    assert choose_left_out("d", 256, np.arange(32), budget=config.max_left_out,
                           exact_up_to=config.exact_left_out_up_to).estimator == EXACT
    override = with_max_left_out([config], 4)[0]
    assert choose_left_out("d", 256, np.arange(32), budget=override.max_left_out,
                           exact_up_to=override.exact_left_out_up_to).estimator == STRATIFIED
    assert replace(config, max_left_out=3).exact_left_out_up_to == 256


def test_full_set_rows_carry_the_seed_spread_of_the_head_direction(many_support_vectors):
    from theory.stability import head_direction_spread
    dataset = many_support_vectors
    config = replace(CONFIGS["head_gd_logistic_random"], n_steps=200, n_checkpoints=3)
    output = run_task(Task(dataset.id, config, seeds=(0, 1, 2, 3)), dataset)
    assert all(row["left_out"] is None for row in output.runs), "seed-spread configs train no S\\i"
    by_iteration = {}
    for row in output.runs:
        by_iteration.setdefault(row["iteration"], []).append(row)
    spreads = []
    for iteration, rows in sorted(by_iteration.items()):
        values = {row["head_seed_spread"] for row in rows}
        assert len(values) == 1 and len(rows) == 4
        spread = values.pop()
        assert 0 < spread <= 1 and rows[0]["head_seed_spread_low"] <= spread <= rows[0]["head_seed_spread_high"]
        spreads.append(spread)
    # GD from different random heads on one S: the directions come together as t grows.
    assert spreads[-1] < spreads[0]
    # Deterministic tasks have one seed and no spread.
    single = run_task(Task(dataset.id, replace(config, init="zero")), dataset)
    assert {row["head_seed_spread"] for row in single.runs} == {None}
    assert callable(head_direction_spread)


def test_seed_spread_configs_compare_sgd_steps_at_one_eta_t():
    sgd = [config for config in CONFIGS.values() if config.setting == "head" and config.batch_size
           and config.init == "random" and not config.max_left_out]
    assert len(sgd) >= 2
    eta_t = {config.lr_scale * config.n_steps for config in sgd}
    assert eta_t == {CONFIGS["head_sgd_logistic_random"].lr_scale * CONFIGS["head_sgd_logistic_random"].n_steps}
    assert len({config.lr_scale for config in sgd}) == len(sgd)


def test_bounds_are_evaluated_on_a_weighted_stratified_subset_of_the_left_out_sets(many_support_vectors):
    dataset = many_support_vectors
    config = replace(CONFIGS["head_gd_logistic"], n_steps=50, n_checkpoints=2, bound_left_out=6)
    output = run_task(Task(dataset.id, config), dataset)
    last = max(row["iteration"] for row in output.runs)
    left_out = [row for row in output.runs if row["left_out"] is not None and row["iteration"] == last]
    assert len(left_out) == len(dataset.X) and {row["left_out_estimator"] for row in left_out} == {EXACT}
    bounded = [row for row in left_out if row["bound_weight"] is not None]
    assert len(bounded) == 6 and math.isclose(sum(row["bound_weight"] for row in bounded), 1.0)
    # Both strata carry their share of S in the bounds' E_i too.
    support_share = sum(row["bound_weight"] for row in bounded if row["left_out_support"])
    assert math.isclose(support_share, len(dataset.arrays["support"]) / len(dataset.X))
    rows_bounded = {bound["row"] for bound in bounds_of(output, dataset)}
    assert {output.runs[r]["left_out"] for r in rows_bounded} == {row["left_out"] for row in bounded}


def test_seed_spread_configs_run_on_multiclass_data():
    dataset = make_separable(30, 4, n_classes=3, margin=0.2, radius=1.0, random_state=0)
    for name in ("head_gd_logistic_random", "head_sgd_logistic_random_lr0.1"):
        config = replace(CONFIGS[name], n_steps=20, n_checkpoints=2)
        output = run_task(Task(dataset.id, config, seeds=(0, 1)), dataset)
        assert output.runs and all(row["left_out"] is None for row in output.runs)
        assert all(row["head_seed_spread"] is not None for row in output.runs)
