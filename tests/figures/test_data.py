"""The results reader and the aggregation helpers that every figure relies on."""
from __future__ import annotations

import sqlite3

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from figures.curves import MAX_DISTINCT_X, x_positions
from figures.data import (
    Frame,
    at_reference,
    kept_by_estimator,
    last_checkpoints,
    loo_units,
    on_matched_seeds,
    open_results,
    summarise,
    swept,
)


@pytest.fixture(scope="module")
def connection(known_results):
    connection = open_results(known_results.folder)
    yield connection
    connection.close()


def test_loo_units_average_the_left_out_rows_per_seed(connection, known_results):
    model = known_results.model
    units = loo_units(connection, measure="head_direction_stability", bound="theorem_h",
                      where="r.dataset_id = 'sep-g0.1-n20' AND r.stabiliser = 'none'")
    assert sorted(units["seed"]) == list(model.SEEDS)
    assert set(units["iteration"]) == {max(model.HEAD_ITERATIONS)}  # final checkpoint only
    for seed, measured, bound in zip(units["seed"], units["measured"], units["bound"]):
        values = [model.head_stability(20, 0.1, seed, i, 1000) for i in model.LEFT_OUT]
        bounds = [model.head_bound(20, 0.1, seed, i, 1000) for i in model.LEFT_OUT]
        assert measured == pytest.approx(np.mean(values), rel=1e-12)
        assert bound == pytest.approx(np.mean(bounds), rel=1e-12)
    assert set(units["bound_holds"]) == {1.0}
    assert set(units["n_left_out"]) == {len(model.LEFT_OUT)}


def test_a_violated_or_missing_bound_does_not_hold(connection):
    units = loo_units(connection, measure="parameter_stability", bound="theorem_f",
                      constants=("mu",), where="r.config IN ('full_lr1.0', 'full_lr3.0')")
    holds = dict(zip(units["config"], units["bound_holds"]))
    assert holds == {"full_lr1.0": 1.0, "full_lr3.0": 0.0}
    assert set(units["constant_mu"]) == {0.5}


def test_at_reference_keeps_the_most_common_knob_values(connection):
    units = loo_units(connection, measure="head_direction_stability",
                      where="r.setting = 'head' AND r.stabiliser = 'none'")
    reference, chosen = at_reference(units)
    assert chosen == {"lr_key": 1.0}
    assert set(reference["config"]) == {"head_gd"}
    kept, chosen = at_reference(units, vary=("lr_key",))
    assert chosen == {} and len(kept) == len(units)
    lr_swept = swept(units, "lr_key")
    assert set(lr_swept["dataset_id"]) == {"sep-g0.2-n40"}


def test_at_reference_breaks_ties_toward_the_theorems_setting():
    frame = Frame({"lr_key": np.array([0.1, 0.1, 1.0, 1.0, 3.0, 3.0]),
                   "batch_size": np.array([16.0, 16.0, 16.0, np.nan, np.nan, np.nan])})
    reference, chosen = at_reference(frame)
    assert chosen == {"lr_key": 1.0, "batch_size": None}
    assert len(reference) == 1


def test_last_checkpoints_keep_each_tasks_largest_iteration(connection, known_results):
    every = loo_units(connection, measure="head_direction_stability", final_only=False,
                      where="r.setting = 'head'")
    final = loo_units(connection, measure="head_direction_stability", where="r.setting = 'head'")
    assert len(every) == len(final) * len(known_results.model.HEAD_ITERATIONS)
    last = last_checkpoints(every)
    assert sorted(last["measured"]) == pytest.approx(sorted(final["measured"]))


@settings(max_examples=25)
@given(st.lists(st.floats(0.0, 10.0), min_size=2, max_size=30))
def test_summary_interval_brackets_the_mean_and_is_reproducible(values):
    values = np.array(values)
    summary = summarise(values, key=("test", len(values)))
    assert values.min() - 1e-9 <= summary.low <= summary.mean + 1e-9
    assert summary.mean - 1e-9 <= summary.high <= values.max() + 1e-9
    assert summary.mean == pytest.approx(values.mean())
    assert summarise(values, key=("test", len(values))) == summary


def test_summary_ignores_non_finite_units():
    summary = summarise(np.array([1.0, np.nan, np.inf, 3.0]), key=("x",))
    assert (summary.mean, summary.n) == (2.0, 2)
    assert summarise(np.array([np.nan]), key=("x",)).n == 0


@settings(max_examples=25)
@given(st.lists(st.floats(1e-3, 1e3), min_size=1, max_size=60), st.booleans())
def test_x_positions_bin_continuous_values_in_order(values, log):
    x = np.array(values)
    positions = x_positions(x, log=log)
    distinct = np.unique([float(f"{value:.4g}") for value in x])
    if distinct.size <= MAX_DISTINCT_X:
        np.testing.assert_allclose(positions, x, rtol=1e-3)
        return
    assert np.unique(positions).size <= 8
    assert np.all(positions >= x.min() * (1 - 1e-12)) and np.all(positions <= x.max() * (1 + 1e-12))
    order = np.argsort(x, kind="stable")
    assert np.all(np.diff(positions[order]) >= -1e-9 * x.max())  # binning keeps the order of x


def test_x_positions_merge_float_noise_into_one_point():
    x = np.array([0.1, 0.1 + 1e-12, 1.0, 1.0 - 1e-13])
    positions = x_positions(x, log=True)
    assert np.unique(positions).size == 2
    assert positions[0] == pytest.approx(0.1) and positions[2] == pytest.approx(1.0)


def test_x_positions_drop_non_positive_values_on_a_log_axis():
    positions = x_positions(np.array([0.0, -1.0, 2.0, np.nan]), log=True)
    assert np.isnan(positions[[0, 1, 3]]).all() and positions[2] == 2.0


def test_left_out_weights_make_e_i_a_weighted_mean(known_results, tmp_path):
    weighted = tmp_path / "results.sqlite"
    weighted.write_bytes((known_results.folder / "results.sqlite").read_bytes())
    writer = sqlite3.connect(weighted)
    writer.execute("UPDATE runs SET left_out_weight = CASE left_out WHEN 0 THEN 0.7 ELSE 0.1 END "
                   "WHERE left_out IS NOT NULL")
    writer.commit()
    writer.close()
    model = known_results.model
    connection = open_results(tmp_path)
    units = loo_units(connection, measure="head_direction_stability", bound="theorem_h",
                      where="r.dataset_id = 'sep-g0.4-n40' AND r.stabiliser = 'none'")
    connection.close()
    weights = np.array([0.7 if i == 0 else 0.1 for i in model.LEFT_OUT])
    for seed, measured, bound in zip(units["seed"], units["measured"], units["bound"]):
        values = np.array([model.head_stability(40, 0.4, seed, i, 1000) for i in model.LEFT_OUT])
        bounds = np.array([model.head_bound(40, 0.4, seed, i, 1000) for i in model.LEFT_OUT])
        assert measured == pytest.approx(np.average(values, weights=weights), rel=1e-12)
        assert bound == pytest.approx(np.average(bounds, weights=weights), rel=1e-12)


def test_non_finite_constants_in_the_stores_standard_json_are_read(known_results, tmp_path):
    from verify.store import jsontext
    copy = tmp_path / "results.sqlite"
    copy.write_bytes((known_results.folder / "results.sqlite").read_bytes())
    writer = sqlite3.connect(copy)
    writer.execute("UPDATE bounds SET constants = ? WHERE bound = 'theorem_f'",
                   (jsontext.dumps({"mu": np.inf, "rho": np.nan, "D": -np.inf}),))
    writer.commit()
    writer.close()
    connection = open_results(tmp_path)
    units = loo_units(connection, measure="parameter_stability", bound="theorem_f",
                      constants=("mu", "rho", "D"), where="r.config = 'full_gd'")
    connection.close()
    assert len(units) and np.all(units["constant_mu"] == np.inf)
    assert np.all(units["constant_D"] == -np.inf) and np.all(np.isnan(units["constant_rho"]))


def test_matched_seeds_drop_a_seed_under_every_variant_where_the_rule_drops_it():
    units = Frame({"dataset_id": np.array(["a", "a", "a", "a", "b", "b"], dtype=object),
                   "config": np.array(["c"] * 6, dtype=object),
                   "seed": np.array([0.0, 0.0, 1.0, 1.0, 0.0, 0.0]),
                   "iteration": np.full(6, 10.0),
                   "stabiliser": np.array(["none", "surt"] * 3, dtype=object),
                   "diverged": np.array([0.0, 0.0, 0.0, 1.0, 0.0, 0.0]),
                   "complete": np.array([1.0, 0.0, 1.0, 0.0, 1.0, 1.0])})
    assert kept_by_estimator(units).tolist() == [True, False, True, False, True, True]
    matched, dropped = on_matched_seeds(units)
    assert dropped == 4
    assert matched["dataset_id"].tolist() == ["b", "b"]
    assert kept_by_estimator(Frame({"diverged": np.array([0.0, 1.0])})).tolist() == [True, False]
