"""Verdicts on hand-made results databases whose right answers are known."""
from __future__ import annotations

import dataclasses
import json
import sqlite3
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from theory.stability import Estimate
from verify.cli import main
from verify.store.schema import SCHEMA_VERSION, ddl
from verify.verdicts import write as verdicts_module
from verify.verdicts.corollaries import COROLLARIES, INCREASE, corollary_verdicts
from verify.verdicts.claims import claim_rows
from verify.verdicts.db import open_results
from verify.verdicts.datasets import UNSTABLE_FAILED_RATE, UNSTABLE_STD, is_unstable
from verify.verdicts.report import render_markdown
from verify.verdicts.stats import (
    granulated_kendall_tau,
    rank_correlations,
    trend_verdict,
    weighted_kendall_tau_b,
    weighted_spearman_rho,
)
from verify.verdicts.write import (compute_verdicts, load_verdicts, results_sha256,
                                   write_verdicts)

RUN_DEFAULTS = dict(
    dataset_id="d0", seed=0, left_out=0, iteration=100, kind="separable", n_samples=20,
    n_features=3, n_classes=2, margin=0.1, radius=1.0, setting="head", config="head_gd",
    loss="logistic", init="zero", lr=0.5, lr_scale=1.0, n_steps=100, n_heads=1, stabiliser="none",
    stabiliser_params="{}", test_accuracy=0.9, majority_accuracy=0.5, diverged=0)


def make_results(folder: Path, runs: list[dict], bounds: list[dict] = (),
                 failed_tasks: list[dict] = ()) -> Path:
    """Write ``folder/results.sqlite`` (the store's schema, ``verify.store.schema``): runs (defaults
    above; left-out rows weigh 1 in E_i unless given), bounds (``run`` = index into runs), one done
    task per task key and failed tasks."""
    conn = sqlite3.connect(folder / "results.sqlite")
    conn.executescript(ddl())
    conn.execute("INSERT INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
    for run_id, run in enumerate(runs):
        row = {**RUN_DEFAULTS, **run, "run_id": run_id}
        if row["left_out"] is not None:
            row.setdefault("left_out_weight", 1.0)
        row.setdefault("task_key", f"{row['dataset_id']}/{row['config']}/{row['stabiliser']}"
                                   f"/{row['stabiliser_params']}")
        conn.execute(f"INSERT INTO runs ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})",
                     list(row.values()))
        conn.execute("INSERT OR IGNORE INTO tasks VALUES (?, ?, ?, ?, ?, '[0]', 'done', NULL, 1, '', NULL)",
                     (row["task_key"], row["dataset_id"], row["config"], row["stabiliser"],
                      row["stabiliser_params"]))
    for bound in bounds:
        conn.execute("INSERT INTO bounds VALUES (?, ?, ?, ?, ?, ?, ?)",
                     (bound["run"], bound.get("bound", "theorem_h"),
                      bound.get("measure", "head_direction_stability"), bound["measured"],
                      bound["value"], json.dumps(bound.get("violated", [])),
                      json.dumps(bound.get("constants", {}))))
    for task in failed_tasks:
        conn.execute("INSERT INTO tasks VALUES (?, 'd9', 'head_gd', 'none', '{}', '[0]', 'failed', "
                     "?, 1, '', NULL)", (task["task_key"], task["error"]))
    conn.commit()
    conn.close()
    return folder / "results.sqlite"


def judge(folder: Path, runs, bounds=(), failed_tasks=()) -> dict:
    return compute_verdicts(make_results(folder, runs, bounds, failed_tasks))


# -- bounds ---------------------------------------------------------------------------------------

def test_violation_is_counted_and_reported_with_its_coordinates(tmp_path):
    runs = [dict(dataset_id="d0", seed=0, left_out=0), dict(dataset_id="d1", seed=2, left_out=5),
            dict(dataset_id="d1", seed=2, left_out=6)]
    bounds = [dict(run=0, measured=1.0, value=2.0),
              dict(run=1, measured=3.0, value=2.0),
              # round-off above the bound is not a counter-example
              dict(run=2, measured=2.0 * (1 + 1e-12), value=2.0)]
    verdicts = judge(tmp_path, runs, bounds)
    verdict = verdicts["bounds"]["theorem_h"]
    assert verdict["violations"] == 1 and verdicts["summary"]["violations"] == 1
    [worst] = verdict["worst_violations"]
    assert (worst["dataset_id"], worst["seed"], worst["left_out"], worst["iteration"],
            worst["config"], worst["measured"], worst["value"]) == ("d1", 2, 5, 100, "head_gd",
                                                                   3.0, 2.0)
    assert verdicts["tightest"] == []  # a violated bound is never the tightest


def test_runs_with_violated_assumptions_are_excluded_and_counted_by_kind(tmp_path):
    bounds = [dict(run=0, measured=5.0, value=1.0, violated=["eta_le_1_over_beta"]),
              dict(run=1, measured=5.0, value=1.0, violated=["eta_le_1_over_beta", "separable"]),
              dict(run=2, measured=0.5, value=1.0)]
    verdict = judge(tmp_path, [dict(left_out=i) for i in range(3)], bounds)["bounds"]["theorem_h"]
    assert verdict["violations"] == 0
    assert verdict["runs_evaluated"] == 3 and verdict["runs_assumptions_hold"] == 1
    assert verdict["assumption_failures"] == {"eta_le_1_over_beta": 2, "separable": 1}
    assert verdict["tightness"] == {"n": 1, "median": 0.5, "p90": 0.5, "worst": 0.5}


@settings(max_examples=15)
@given(pairs=st.lists(st.tuples(st.floats(0, 10), st.floats(0.01, 10)), min_size=1, max_size=12),
       n_vacuous=st.integers(0, 2), n_violated_assumptions=st.integers(0, 2))
def test_tightness_matches_numpy_over_assumption_holding_runs(pairs, n_vacuous,
                                                              n_violated_assumptions):
    bounds = [dict(run=i, measured=min(m, v), value=v) for i, (m, v) in enumerate(pairs)]
    bounds += [dict(run=len(bounds) + i, measured=1.0, value=np.inf) for i in range(n_vacuous)]
    bounds += [dict(run=len(bounds) + i, measured=100.0, value=1.0, violated=["mu_positive"])
               for i in range(n_violated_assumptions)]
    with tempfile.TemporaryDirectory() as folder:
        verdicts = judge(Path(folder), [dict(left_out=i) for i in range(len(bounds))], bounds)
    verdict = verdicts["bounds"]["theorem_h"]
    # theorem_h bounds a distance of unit vectors: a value >= 2 says nothing (vacuous), and
    # tightness is over the other values only.
    informative = [(m, v) for m, v in pairs if v < 2.0]
    ratios = np.array([min(m, v) / v for m, v in informative])
    assert verdict["tightness"]["n"] == len(informative)
    if informative:
        assert verdict["tightness"]["median"] == pytest.approx(np.median(ratios), rel=1e-12)
        assert verdict["tightness"]["p90"] == pytest.approx(np.quantile(ratios, 0.9), rel=1e-12)
        assert verdict["tightness"]["worst"] == pytest.approx(ratios.max(), rel=1e-12)
    n_vacuous_total = n_vacuous + len(pairs) - len(informative)
    assert verdict["vacuous"] == n_vacuous_total and verdict["violations"] == 0
    assert verdict["non_vacuous"] == len(informative)
    assert verdict["vacuous_share"] == pytest.approx(n_vacuous_total / (len(pairs) + n_vacuous))
    assert verdict["a_posteriori"] and verdict["trivial"] == 2.0


def test_tightest_bound_is_the_valid_one_with_median_ratio_closest_to_one(tmp_path):
    runs = [dict(left_out=i) for i in range(2)]
    bounds = [dict(run=0, bound="loose", measured=0.1, value=1.0),
              dict(run=0, bound="tight", measured=0.8, value=1.0),
              dict(run=1, bound="loose", measured=0.1, value=1.0),
              dict(run=1, bound="tight", measured=0.6, value=1.0),
              dict(run=0, bound="broken", measured=1.0, value=1.0),
              dict(run=1, bound="broken", measured=1.5, value=1.0)]
    verdicts = judge(tmp_path, runs, bounds)
    assert verdicts["tightest"] == [{"setting": "head", "measure": "head_direction_stability",
                                     "bound": "tight", "median_ratio": pytest.approx(0.7)}]


# -- granulated Kendall tau and trend verdicts ----------------------------------------------------

def test_granulated_tau_is_the_equal_weight_mean_of_group_taus():
    # group a: perfectly decreasing (tau = -1); group b: 5 concordant, 1 discordant pair
    # (tau = 4/6); group c holds one value of the quantity and does not count.
    quantity = np.array([1, 2, 3, 1, 2, 3, 4, 7, 7], dtype=float)
    measure = np.array([3, 2, 1, 1, 3, 2, 4, 0, 1], dtype=float)
    keys = ["a"] * 3 + ["b"] * 4 + ["c"] * 2
    result = granulated_kendall_tau(quantity, measure, keys, random_state=0)
    assert result.group_taus.tolist() == pytest.approx([-1.0, 2 / 3])
    assert result.tau.value == pytest.approx((-1 + 2 / 3) / 2)
    assert result.group_sizes.tolist() == [3, 4]
    # a quarter of the group resamples draw group a twice, a quarter group b twice
    assert (result.tau.low, result.tau.high) == pytest.approx((-1.0, 2 / 3))


@settings(max_examples=25)
@given(pairs=st.lists(st.tuples(st.integers(0, 4), st.integers(0, 4)), min_size=2, max_size=15)
       .filter(lambda p: len({q for q, _ in p}) >= 2 and len({m for _, m in p}) >= 2))
def test_granulated_tau_of_one_group_is_scipy_kendall_tau(pairs):
    quantity, measure = np.array(pairs, dtype=float).T
    result = granulated_kendall_tau(quantity, measure, ["g"] * len(pairs), random_state=0)
    expected = stats.kendalltau(quantity, measure).statistic
    assert result.tau.value == pytest.approx(expected, abs=1e-12)
    assert result.tau.low == result.tau.high == result.tau.value


def test_no_group_varying_the_quantity_is_no_data():
    assert granulated_kendall_tau(np.ones(4), np.arange(4.0), list("aabb"), random_state=0) is None
    assert trend_verdict(None, -1) == "no data"


@pytest.mark.parametrize("interval, sign, verdict", [
    (Estimate(-0.5, -0.8, -0.2), -1, "pass"), (Estimate(-0.5, -0.8, -0.2), 1, "fail"),
    (Estimate(0.1, -0.2, 0.4), -1, "inconclusive"), (Estimate(0.0, 0.0, 0.0), 1, "inconclusive")])
def test_trend_verdict_needs_the_whole_interval_on_one_side(interval, sign, verdict):
    assert trend_verdict(interval, sign) == verdict


def test_trend_verdict_rejects_a_sign_that_is_not_plus_or_minus_one():
    with pytest.raises(ValueError, match="predicted_sign"):
        trend_verdict(Estimate(0, 0, 0), 0)


def margin_sweep(measure_of, n_groups=4):
    """Head runs on datasets that differ only in margin, one group per n_samples value."""
    runs, bounds = [], []
    for group in range(n_groups):
        n_samples = 20 + 10 * group
        for step, margin in enumerate((0.05, 0.1, 0.2, 0.4)):
            for left_out in range(2):
                runs.append(dict(dataset_id=f"n{n_samples}_m{margin}", n_samples=n_samples,
                                 margin=margin, left_out=left_out, lr=0.5 / (1 + step),
                                 head_direction_stability=measure_of(group, step, left_out)))
                # Below 2, the trivial value of a head-direction distance (vacuous from there on).
                bounds.append(dict(run=len(runs) - 1, measured=0.0, value=0.05 / margin))
    return runs, bounds


HEAD_MARGIN = next(c for c in COROLLARIES if c.name == "head_margin")


def head_margin(verdicts):
    return next(c for c in verdicts if c["name"] == "head_margin")


def test_monotone_decreasing_trend_passes_decrease_and_fails_increase(tmp_path):
    runs, bounds = margin_sweep(lambda group, step, left_out: 1.0 / (1 + step) + 0.01 * group)
    conn = open_results(make_results(tmp_path, runs, bounds))
    decrease = head_margin(corollary_verdicts(conn))
    increase = corollary_verdicts(conn, corollaries=(
        dataclasses.replace(HEAD_MARGIN, predicted_sign=INCREASE),))[0]
    conn.close()
    assert decrease["predicted"] == "decrease"
    assert decrease["measured"] == {"tau": -1.0, "low": -1.0, "high": -1.0, "n_groups": 4,
                                    "n_rows": 16, "rounding_level": 0, "verdict": "pass"}
    assert decrease["bounds"]["theorem_h"]["verdict"] == "pass"
    assert decrease["bounds"]["theorem_h"]["claimed"]
    assert increase["measured"]["verdict"] == "fail"
    assert increase["bounds"]["theorem_h"]["verdict"] == "fail"


def test_flat_or_noisy_trend_is_inconclusive(tmp_path):
    flat, _ = margin_sweep(lambda group, step, left_out: 0.3)
    noisy, _ = margin_sweep(lambda group, step, left_out: step if group % 2 else -step)
    (tmp_path / "flat").mkdir()
    (tmp_path / "noisy").mkdir()
    for folder, runs in (("flat", flat), ("noisy", noisy)):
        verdict = head_margin(judge(tmp_path / folder, runs)["corollaries"])
        assert verdict["measured"]["verdict"] == "inconclusive"
        assert verdict["measured"]["tau"] == pytest.approx(0.0)


def test_corollary_without_a_varied_quantity_has_no_data(tmp_path):
    verdicts = judge(tmp_path, [dict(left_out=0, head_direction_stability=0.1)])
    assert all(c["measured"]["verdict"] == "no data" for c in verdicts["corollaries"])
    assert verdicts["summary"]["corollaries_measured"]["no data"] == len(COROLLARIES)


def test_strength_corollary_uses_plain_runs_as_strength_zero_for_each_other_setting(tmp_path):
    runs = [dict(dataset_id="q0", kind="quadratic", setting="full", config="full_gd",
                 stabiliser="none", parameter_stability=1.0)]
    for include_head in (False, True):
        for strength in (0.1, 1.0):
            params = json.dumps({"include_head": include_head, "strength": strength})
            runs.append(dict(dataset_id="q0", kind="quadratic", setting="full", config="full_gd",
                             stabiliser="l2sp", stabiliser_params=params,
                             parameter_stability=1 / (1 + 10 * strength) / (1 + include_head)))
    runs.append(dict(dataset_id="q0", kind="quadratic", setting="full", config="full_gd",
                     stabiliser="mixout", stabiliser_params='{"p": 0.1}', parameter_stability=99.0))
    verdict = next(c for c in judge(tmp_path, runs)["corollaries"] if c["name"] == "full_l2sp")
    # the plain run is the strength-0 point of both include_head groups; mixout takes no part
    assert verdict["measured"] == {"tau": -1.0, "low": -1.0, "high": -1.0, "n_groups": 2,
                                   "n_rows": 6, "rounding_level": 0, "verdict": "pass"}


@pytest.mark.parametrize("rising, verdict", [(True, "pass"), (False, "fail")])
def test_lr_times_iteration_uses_the_absolute_step_of_each_run(tmp_path, rising, verdict):
    # corrected Theorem F: the instability is 0 at T = 0 and grows with eta*T towards its limit
    def instability(scale, iteration):
        decay = np.exp(-scale / 2 * iteration)
        return 1 - decay if rising else decay

    runs = [dict(dataset_id="q0", kind="quadratic", setting="full", config=f"full_lr{scale}",
                 lr_scale=scale, lr=scale / 2, iteration=iteration, n_steps=100,
                 parameter_stability=instability(scale, iteration))
            for scale in (0.1, 0.3, 1.0) for iteration in (1, 10, 100)]
    result = next(c for c in judge(tmp_path, runs)["corollaries"]
                  if c["name"] == "full_lr_iteration")
    assert result["predicted"] == "increase"
    assert result["measured"]["tau"] == (1.0 if rising else -1.0)
    assert result["measured"]["n_rows"] == 9
    assert result["measured"]["verdict"] == verdict


@pytest.mark.parametrize("recorded", [True, False])
def test_configs_with_an_absolute_step_take_no_part_in_the_step_unit_corollaries(tmp_path, recorded):
    # lr_scale of an lr_unit="absolute" config is the learning rate itself, not a multiple of
    # 1/beta: its rows would reverse both trends here if they were taken in.
    absolute = (["my_adamw_a", "my_adamw_b", "my_adamw_c"] if recorded else  # else the registry's
                ["full_deep_adamw_nobc", "full_deep_adamw_nobc_lr1e-2", "full_deep_recipe"])
    steps = {**{f"step{scale}": scale for scale in (0.1, 0.3, 1.0)},
             **dict(zip(absolute, (0.01, 0.05, 0.5)))}
    runs = [dict(dataset_id="q0", kind="quadratic", setting="full", config=config, lr_scale=scale,
                 lr=scale / 2, iteration=iteration, n_steps=100,
                 parameter_stability=(np.exp(-scale * iteration) if config in absolute
                                      else 1 - np.exp(-scale / 2 * iteration)))
            for config, scale in steps.items() for iteration in (1, 10, 100)]
    runs += [dict(dataset_id="h0", config=config, lr_scale=scale, iteration=100,
                  head_direction_stability=scale if config in absolute else 1 / scale)
             for config, scale in steps.items()]
    database = make_results(tmp_path, runs)
    if recorded:
        conn = sqlite3.connect(database)
        conn.execute("INSERT INTO meta VALUES ('configs', ?)", (json.dumps(
            {**{name: {"lr_unit": "absolute"} for name in absolute},
             **{name: {"lr_unit": "inverse_beta"} for name in steps if name not in absolute}}),))
        conn.commit()
        conn.close()
    verdicts = compute_verdicts(database)
    full = _corollary(verdicts, "full_lr_iteration")["measured"]
    assert full["n_rows"] == 9 and full["tau"] == 1.0 and full["verdict"] == "pass"
    head = _corollary(verdicts, "head_lr")["measured"]
    assert head["n_rows"] == 3 and head["tau"] == -1.0 and head["verdict"] == "pass"


def divergence_runs(*, diverged_at_lr: float) -> list[dict]:
    """Quadratic full fine-tuning runs on one dataset with beta = 4 at eta*beta in 0.4..8.8;
    runs with lr >= diverged_at_lr are recorded as diverged."""
    return [dict(dataset_id="q0", kind="quadratic", setting="full", config=f"full_lr{scale}",
                 lr_scale=scale, lr=scale / 4, left_out=None, iteration=100, n_steps=100,
                 diverged=int(scale / 4 >= diverged_at_lr))
            for scale in (0.4, 1.0, 1.9, 2.0, 2.2, 8.8)]


def add_card(database: Path, dataset_id: str, card: dict) -> None:
    conn = sqlite3.connect(database)
    conn.execute("INSERT INTO datasets VALUES (?, 'quadratic', ?)", (dataset_id, json.dumps(card)))
    conn.commit()
    conn.close()


def test_divergence_beyond_two_over_beta_passes_when_the_record_matches(tmp_path):
    database = make_results(tmp_path, divergence_runs(diverged_at_lr=2.2 / 4))
    add_card(database, "q0", {"beta": 4.0})
    divergence = compute_verdicts(database)["divergence"]
    # eta*beta = 2.0 sits on the edge and is not judged
    assert divergence == {"runs": 5, "predicted_diverged": 2, "diverged": 2, "edge": 1,
                          "mismatches": [], "n_mismatches": 0, "verdict": "pass"}


def test_divergence_is_reported_where_a_stable_step_blew_up(tmp_path):
    database = make_results(tmp_path, divergence_runs(diverged_at_lr=1.9 / 4))
    add_card(database, "q0", {"beta": 4.0})
    verdicts = write_verdicts(tmp_path)
    divergence = verdicts["divergence"]
    assert divergence["verdict"] == "fail" and divergence["n_mismatches"] == 1
    assert divergence["mismatches"][0]["lr_times_beta"] == pytest.approx(1.9)
    assert "disagreements: 1" in (tmp_path / "verdicts.md").read_text()


def test_divergence_without_quadratic_runs_has_no_data(tmp_path):
    assert judge(tmp_path, [dict(left_out=None)])["divergence"]["verdict"] == "no data"


def test_diverged_runs_are_left_out_of_trends(tmp_path):
    runs, _ = margin_sweep(lambda group, step, left_out: 1.0 / (1 + step))
    for run in runs:  # diverged runs at the largest margin would reverse the trend
        if run["margin"] == 0.4:
            run.update(diverged=1, head_direction_stability=50.0)
    verdict = head_margin(judge(tmp_path, runs)["corollaries"])
    assert verdict["measured"]["verdict"] == "pass" and verdict["measured"]["n_rows"] == 12


@pytest.mark.parametrize("weighted, verdict", [(True, "pass"), (False, "fail")])
def test_left_out_weights_make_the_mean_over_i_where_the_store_records_them(tmp_path, weighted,
                                                                            verdict):
    # the heavily weighted left-out run decreases with the margin, the light one increases; only
    # the weighted mean decreases
    runs, _ = margin_sweep(lambda group, step, left_out: step if left_out else 1.0 / (1 + step))
    if weighted:
        for run in runs:
            run["left_out_weight"] = 0.01 if run["left_out"] else 0.99
    assert head_margin(judge(tmp_path, runs)["corollaries"])["measured"]["verdict"] == verdict


# -- across datasets ------------------------------------------------------------------------------

def test_rank_correlations_match_scipy():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=12), rng.normal(size=12)
    result = rank_correlations(x, y, [f"d{i}" for i in range(12)], random_state=0,
                               n_resamples=200)
    assert result["kendall_tau"].value == pytest.approx(stats.kendalltau(x, y).statistic)
    assert result["spearman_rho"].value == pytest.approx(stats.spearmanr(x, y).statistic)
    for interval in result.values():
        assert -1 <= interval.low <= interval.value <= interval.high <= 1


def test_cluster_bootstrap_keeps_the_rows_of_a_dataset_together():
    # two datasets with perfectly concordant rows inside each, discordant between them: every
    # resample that draws both datasets sees the same negative tau, one alone sees +1
    x = np.array([0.0, 1.0, 10.0, 11.0])
    y = np.array([10.0, 11.0, 0.0, 1.0])
    result = rank_correlations(x, y, ["a", "a", "b", "b"], random_state=0, n_resamples=400)
    point = stats.kendalltau(x, y).statistic
    assert result["kendall_tau"].value == pytest.approx(point)
    assert (result["kendall_tau"].low, result["kendall_tau"].high) == pytest.approx((point, 1.0))


@settings(max_examples=25)
@given(rows=st.lists(st.tuples(st.sampled_from([0.0, 1.0, 2.5, np.inf]), st.integers(0, 3),
                               st.integers(0, 3)), min_size=3, max_size=10))
def test_weighted_rank_correlations_equal_scipy_on_repeated_rows(rows):
    x, y, counts = (np.array(column, dtype=float) for column in zip(*rows))
    x_repeated, y_repeated = np.repeat(x, counts.astype(int)), np.repeat(y, counts.astype(int))
    tau = weighted_kendall_tau_b(x, y, counts[None])[0]
    rho = weighted_spearman_rho(x, y, counts[None])[0]
    if np.unique(x_repeated).size < 2 or np.unique(y_repeated).size < 2:
        assert np.isnan(tau) and np.isnan(rho)
    else:
        assert tau == pytest.approx(stats.kendalltau(x_repeated, y_repeated).statistic, abs=1e-12)
        assert rho == pytest.approx(stats.spearmanr(x_repeated, y_repeated).statistic, abs=1e-12)


def dataset_panel(rng):
    """Six datasets, 3 seeds, 2 left-out runs, two checkpoints; the last one is the one that counts."""
    bound_value, measured, accuracies = rng.uniform(1, 2, 6), rng.uniform(0, 1, 6), {}
    runs, bounds = [], []
    for d in range(6):
        accuracies[d] = rng.uniform(0.5, 1.0, 3)
        for seed in range(3):
            for iteration in (10, 100):
                final = iteration == 100
                runs.append(dict(dataset_id=f"d{d}", seed=seed, left_out=None, iteration=iteration,
                                 test_accuracy=accuracies[d][seed] if final else 0.0))
                for left_out in range(2):
                    runs.append(dict(dataset_id=f"d{d}", seed=seed, left_out=left_out,
                                     iteration=iteration))
                    bounds.append(dict(run=len(runs) - 1,
                                       measured=measured[d] + 0.1 * left_out if final else 9.0,
                                       # / 10: below 2, the trivial value of the measure
                                       value=(bound_value[d] + seed) / 10 if final else -float(d)))
    return runs, bounds, bound_value, measured, accuracies


def test_rank_correlation_across_datasets_uses_final_checkpoint_means(tmp_path):
    runs, bounds, bound_value, measured, accuracies = dataset_panel(np.random.default_rng(1))
    correlations = judge(tmp_path, runs, bounds)["rank_correlations"]["theorem_h"]
    mean_value, mean_measured = bound_value + 1, measured + 0.05
    seed_std = [np.std(accuracies[d], ddof=1) for d in range(6)]
    loo, by_seed = correlations["leave_one_out"], correlations["seed_std"]
    assert loo["n_units"] == loo["n_datasets"] == 6
    assert loo["kendall_tau"]["value"] == pytest.approx(
        stats.kendalltau(mean_value, mean_measured).statistic)
    assert loo["spearman_rho"]["value"] == pytest.approx(
        stats.spearmanr(mean_value, mean_measured).statistic)
    assert by_seed["kendall_tau"]["value"] == pytest.approx(
        stats.kendalltau(mean_value, seed_std).statistic)



def test_rank_correlation_leaves_out_a_unit_whose_left_out_models_partly_diverged(tmp_path):
    # one left-out model of d0's seed 0 diverged: the mean over d0's other rows would be the E_i of
    # its stable models only, so d0 is left out and counted, as the corollaries leave such groups out
    runs, bounds, bound_value, measured, _ = dataset_panel(np.random.default_rng(1))
    diverged = next(i for i, run in enumerate(runs) if run["dataset_id"] == "d0"
                    and run["iteration"] == 100 and run["left_out"] == 1 and run["seed"] == 0)
    runs[diverged].update(diverged=1)
    for bound in bounds:
        if bound["run"] == diverged:
            bound["measured"] = None
    verdicts = judge(tmp_path, runs, bounds)
    correlations = verdicts["rank_correlations"]["theorem_h"]
    loo = correlations["leave_one_out"]
    assert loo["n_units"] == 5  # not 6: d0 averaged over its surviving rows
    assert correlations["diverged_units"] == 1
    assert loo["kendall_tau"]["value"] == pytest.approx(
        stats.kendalltau(bound_value[1:], measured[1:]).statistic)
    assert "1 units with a diverged left-out model left out" in render_markdown(verdicts)


def test_stabiliser_leave_one_out_has_no_e_i_for_a_seed_whose_left_out_models_partly_diverged(
        tmp_path):
    from verify.verdicts.stabilisers import paired_units

    runs = []
    for seed in range(2):
        runs.append(dict(seed=seed, left_out=None))
        for left_out, value in enumerate((0.2, 0.4)):
            runs.append(dict(seed=seed, left_out=left_out, head_direction_stability=value))
    runs[2].update(diverged=1, head_direction_stability=None)  # seed 0's second left-out model
    conn = open_results(make_results(tmp_path, runs))
    (unit,) = paired_units(conn)
    conn.close()
    assert np.isnan(unit.leave_one_out[0])  # not 0.2, the E_i of the stable model alone
    assert unit.leave_one_out[1] == pytest.approx(0.3)
    assert unit.mean_leave_one_out == pytest.approx(0.3)


def test_stabiliser_leave_one_out_is_matched_on_seeds_and_counts_the_dropped_ones(tmp_path):
    # Plain E_i is 1 on seeds 0-2 and 4 on seed 3 of six datasets; MMR's equals it on every seed
    # it estimates, but on d0-d3 one left-out model of seed 3 diverged, so the rule drops that
    # seed's E_i group. Matched, MMR's ratio is exactly 1; on each side's own kept seeds it would
    # read (4 * 1 + 2 * 1.75) / (6 * 1.75) = 0.71, the diverging stabiliser "more stable".
    runs = []
    for d in range(6):
        for stabiliser, params in (("none", "{}"), ("mmr", '{"strength":0.1,"temperature":0.05}')):
            common = dict(dataset_id=f"d{d}", stabiliser=stabiliser, stabiliser_params=params)
            for seed, value in enumerate((1.0, 1.0, 1.0, 4.0)):
                runs.append(dict(common, seed=seed, left_out=None, test_accuracy=0.7 + 0.05 * seed))
                for left_out in range(2):
                    runs.append(dict(common, seed=seed, left_out=left_out,
                                     head_direction_stability=value))
                if stabiliser == "mmr" and seed == 3 and d < 4:
                    runs[-1].update(diverged=1, head_direction_stability=None)
    verdicts = compute_verdicts(make_results(tmp_path, runs))
    [row] = [r for r in verdicts["stabilisers"] if r["stabiliser"] == "mmr" and r["is_default"]]
    loo = row["measures"]["leave_one_out"]
    assert loo["value"] == pytest.approx(1.0)
    assert (loo["stabilised_kept"], loo["stabilised_dropped"]) == (20, 4)
    assert (loo["plain_kept"], loo["plain_dropped"]) == (24, 0)
    assert (loo["matched_seeds"], loo["left_out_pairs"], loo["n_pairs"]) == (20, 0, 6)
    [line] = [r for r in verdicts_module.render_markdown(verdicts).splitlines()
              if r.startswith("| mmr | separable | default")]
    assert "seeds kept/dropped: stabilised 20/4, plain 24/0; 20 matched" in line

def test_seed_instability_and_failed_runs_per_dataset(tmp_path):
    accuracy = [0.9, 0.5, 0.7, 0.4]
    runs = [dict(seed=seed, left_out=None, test_accuracy=a, majority_accuracy=0.5)
            for seed, a in enumerate(accuracy)]
    [unit] = judge(tmp_path, runs)["seed_instability"]
    assert unit["n_seeds"] == 4
    assert unit["accuracy_std"]["value"] == pytest.approx(np.std(accuracy, ddof=1))
    assert unit["failed_rate"]["value"] == 0.5  # 0.5 and 0.4 are at or below the majority
    assert unit["failed_rate"]["low"] <= 0.5 <= unit["failed_rate"]["high"]



def test_seed_instability_counts_the_datasets_unstable_by_both_thresholds(tmp_path):
    # d0: std 0.22 and half the seeds fail (unstable); d1: 3 of 4 seeds fail but the std is 0.041;
    # d2: std 0.17 and no seed fails
    accuracies = {"d0": [0.9, 0.5, 0.7, 0.4], "d1": [0.5, 0.45, 0.55, 0.5],
                  "d2": [0.9, 0.6, 0.95, 0.7]}
    runs = [dict(dataset_id=d, seed=seed, left_out=None, test_accuracy=a, majority_accuracy=0.5)
            for d, accuracy in accuracies.items() for seed, a in enumerate(accuracy)]
    verdicts = judge(tmp_path, runs)
    units = sorted(verdicts["seed_instability"], key=lambda u: u["dataset_id"])
    assert [u["unstable"] for u in units] == [True, False, False]
    assert is_unstable(UNSTABLE_STD, UNSTABLE_FAILED_RATE)
    assert not is_unstable(np.nextafter(UNSTABLE_STD, 0), UNSTABLE_FAILED_RATE)
    assert not is_unstable(UNSTABLE_STD, np.nextafter(UNSTABLE_FAILED_RATE, 0))
    assert not is_unstable(None, 1.0)
    text = render_markdown(verdicts)
    [line] = [r for r in text.splitlines() if r.endswith(" of 3 |")]
    assert line.endswith("| 3 | 0.1426 | 0.4167 | 1 of 3 |"), line
    assert "at least 0.05 and at least 10% of its seeds fail" in text

# -- E_i at rounding level -------------------------------------------------------------------------

# The rounding floor of the defaults' head direction: 8 sqrt(P) eps with P = 3 features x 2 classes.
HEAD_FLOOR = 8 * np.sqrt(6) * np.finfo(float).eps


@pytest.mark.parametrize("scale, verdict", [(1.0, "pass"), (100.0, "inconclusive")])
def test_head_directions_at_rounding_level_are_ties_at_zero(tmp_path, scale, verdict):
    # the smallest margin is resolved, the others are rounding in the reverse of the predicted
    # order: ties at 0 below the floor (a trend), a real reversal above it (none)
    rounding = [1e-16, 2e-16, 3e-16]
    runs, bounds = margin_sweep(lambda group, step, left_out: 0.5 if step == 0
                                else scale * rounding[step - 1])
    verdicts = judge(tmp_path, runs, bounds)
    measured = head_margin(verdicts["corollaries"])["measured"]
    assert 3e-16 < HEAD_FLOOR < 1e-14
    assert measured["verdict"] == verdict
    assert measured["rounding_level"] == (12 if scale == 1.0 else 0)
    assert measured["tau"] == pytest.approx(-3 / np.sqrt(18) if scale == 1.0 else 0.0)
    claim = next(r for r in claim_rows(verdicts) if r["id"] == "paper_margin")
    assert ("12 at rounding level" in claim["judged_on"]) == (scale == 1.0)


def least_squares_runs(instability_of_n: dict, *, w0_norm: float | None, iteration: int = 100):
    """Least-squares left-out runs (kind quadratic, from w0) on datasets differing in n only, two
    seeds; the datasets' cards give ||w0|| unless ``w0_norm`` is None."""
    runs = []
    for n, instability in instability_of_n.items():
        for seed in range(2):
            runs.append(dict(dataset_id=f"q{n}", kind="quadratic", setting="full",
                             config="full_quadratic_gd", loss="squared", init="pretrained",
                             n_classes=0, n_features=4, n_samples=n, margin=None, radius=None,
                             seed=seed, iteration=iteration, n_steps=iteration,
                             distance_from_init=1.0, parameter_stability=instability))
    cards = {} if w0_norm is None else {f"q{n}": {"params": {"w0_norm": w0_norm}}
                                        for n in instability_of_n}
    return runs, cards


def judge_with_cards(folder: Path, runs, cards, bounds=()) -> dict:
    database = make_results(folder, runs, bounds)
    for dataset_id, card in cards.items():
        add_card(database, dataset_id, card)
    return compute_verdicts(database)


@pytest.mark.parametrize("w0_norm, verdict", [(1.0, "pass"), (None, "inconclusive")])
def test_least_squares_distances_at_rounding_level_are_ties_and_need_the_weights_norm(
        tmp_path, w0_norm, verdict):
    # 8 sqrt(4) eps (1 + 1) = 7.1e-15: the three larger n converged, their order is rounding
    runs, cards = least_squares_runs({40: 0.1, 80: 1e-16, 160: 2e-16, 320: 4e-16}, w0_norm=w0_norm)
    verdicts = judge_with_cards(tmp_path, runs, cards)
    measured = next(c for c in verdicts["corollaries"] if c["name"] == "full_n_samples")["measured"]
    assert measured["n_groups"] == 2 and measured["verdict"] == verdict
    assert measured["rounding_level"] == (6 if w0_norm else 0)
    claim = next(r for r in claim_rows(verdicts) if r["id"] == "paper_more_samples_full")
    assert claim["verdict"] == ("supported" if w0_norm else "inconclusive")
    assert ("6 at rounding level" in claim["judged_on"]) == bool(w0_norm)
    assert ("At rounding level" in render_markdown(verdicts)) == bool(w0_norm)


def test_rank_correlation_reads_a_measured_e_i_at_rounding_level_as_zero(tmp_path):
    # bound values 1..6; the three smallest units converged (rounding, reversed), the rest resolved
    measured = {40: 3e-16, 80: 2e-16, 160: 1e-16, 320: 0.1, 640: 0.2, 1280: 0.3}
    runs, cards = least_squares_runs(measured, w0_norm=1.0)
    bounds = [dict(run=i, bound="theorem_f", measure="parameter_stability",
                   measured=run["parameter_stability"], value=float(sorted(measured).index(
                       run["n_samples"]) + 1)) for i, run in enumerate(runs)]
    ranking = judge_with_cards(tmp_path, runs, cards, bounds)["rank_correlations"]["theorem_f"]
    tau = ranking["leave_one_out"]["kendall_tau"]["value"]
    assert tau == pytest.approx(stats.kendalltau(range(6), [0, 0, 0, 0.1, 0.2, 0.3]).statistic)
    assert tau == pytest.approx(12 / np.sqrt(15 * 12))  # not 0.6: the reversal is not counted
    assert ranking["rounding_units"] == 3


# -- files and command line -----------------------------------------------------------------------

def test_files_are_valid_json_and_markdown_and_replace_old_ones(tmp_path):
    runs, bounds = margin_sweep(lambda group, step, left_out: 1.0 / (1 + step))
    bounds.append(dict(run=0, bound="theorem_h_bad", measured=9.0, value=1.0))
    make_results(tmp_path, runs, bounds, failed_tasks=[
        dict(task_key="t-failed", error="Traceback\n  ...\nRuntimeError: boom")])
    (tmp_path / "verdicts.json").write_text("stale")
    returned = write_verdicts(tmp_path)
    assert json.loads((tmp_path / "verdicts.json").read_text()) == returned
    assert sorted(p.name for p in tmp_path.iterdir()) == ["claims.json", "claims.md",
                                                         "results.sqlite", "verdicts.json",
                                                         "verdicts.md"]
    summary = returned["summary"]
    assert (summary["tasks_failed"], summary["violations"]) == (1, 1)
    assert returned["failed_tasks"][0]["error"] == "RuntimeError: boom"
    report = (tmp_path / "verdicts.md").read_text()
    assert "1 failed" in report and "1 bound violation(s)" in report
    assert "✘ theorem_h_bad" in report and "✔ theorem_h" in report
    assert ("| head_margin | margin/radius → head_direction_stability | decrease | measured, inside "
            "the theorem |") in report
    assert "| bound theorem_h_bad (reference;" in report
    # The a posteriori bound is a consistency check, never evidence.
    assert "| bound theorem_h (consistency check;" in report
    # theorem_h's margin trend passes, but an a posteriori bound is not evidence.
    assert summary["corollaries_bounds"]["pass"] == 0
    assert summary["consistency_checks"] == ["theorem_h"] and "theorem_h" not in summary["evidence_bounds"]


def test_verdicts_are_reproducible(tmp_path):
    runs, bounds = margin_sweep(lambda group, step, left_out: (step * 7 + group * 3) % 5)
    make_results(tmp_path, runs, bounds)
    first = (write_verdicts(tmp_path), (tmp_path / "verdicts.md").read_text())
    assert (write_verdicts(tmp_path), (tmp_path / "verdicts.md").read_text()) == first


def test_verdicts_json_is_read_back_only_while_it_judged_the_present_results(tmp_path):
    runs, bounds = margin_sweep(lambda group, step, left_out: 1.0 / (1 + step))
    database = make_results(tmp_path, runs, bounds)
    assert load_verdicts(tmp_path) == (compute_verdicts(database), False)
    written = write_verdicts(tmp_path)
    assert written["source"] == {"results_sha256": results_sha256(database)}
    assert load_verdicts(tmp_path) == (written, True)
    # Results changed after judging (a new bound row): the file no longer describes them.
    conn = sqlite3.connect(database)
    conn.execute("INSERT INTO bounds VALUES (0, 'theorem_h_bad', 'head_direction_stability', 9.0, "
                 "1.0, '[]', '{}')")
    conn.commit()
    conn.close()
    verdicts, from_file = load_verdicts(tmp_path)
    assert not from_file and verdicts["summary"]["violations"] == 1
    assert written["summary"]["violations"] == 0
    (tmp_path / "verdicts.json").write_text("{not json")
    assert load_verdicts(tmp_path)[1] is False


def test_a_sweep_where_every_task_failed_still_gets_a_report(tmp_path):
    make_results(tmp_path, [], failed_tasks=[dict(task_key="t1", error="MemoryError")])
    verdicts = write_verdicts(tmp_path)
    assert verdicts["summary"]["tasks_failed"] == 1 and verdicts["summary"]["run_rows"] == 0
    assert verdicts["bounds"] == {} and verdicts["rank_correlations"] == {}
    report = (tmp_path / "verdicts.md").read_text()
    assert "No bound was evaluated." in report and "MemoryError" in report


def test_an_error_while_rendering_leaves_the_old_files(tmp_path, monkeypatch):
    make_results(tmp_path, [dict()])
    (tmp_path / "verdicts.json").write_text("{}")

    def broken(verdicts):
        raise RuntimeError("render failed")
    monkeypatch.setattr(verdicts_module, "render_markdown", broken)
    with pytest.raises(RuntimeError):
        write_verdicts(tmp_path)
    assert (tmp_path / "verdicts.json").read_text() == "{}"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results.sqlite", "verdicts.json"]


def test_cli_reports_a_missing_database_in_one_line_and_creates_nothing(tmp_path, capsys):
    assert main(["verdicts", "--from", str(tmp_path)]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "no results file" in error
    assert list(tmp_path.iterdir()) == []


def test_cli_rejects_a_file_that_is_not_a_results_database(tmp_path, capsys):
    sqlite3.connect(tmp_path / "results.sqlite").execute("CREATE TABLE other (x)").connection.close()
    assert main(["verdicts", "--from", str(tmp_path)]) == 2
    assert "not an ftstab results file (no schema_version" in capsys.readouterr().err


def test_cli_writes_the_verdicts(tmp_path, capsys):
    make_results(tmp_path, [dict(left_out=0)], [dict(run=0, measured=0.5, value=1.0)])
    assert main(["verdicts", "--from", str(tmp_path)]) == 0
    assert "0 violation(s)" in capsys.readouterr().out
    assert json.loads((tmp_path / "verdicts.json").read_text())["bounds"]["theorem_h"][
        "tightness"]["median"] == 0.5


# -- scope, vacuity, terms, seed spread, claims (issue: verdicts a referee can trust) ------------

def _corollary(verdicts, name):
    return next(c for c in verdicts["corollaries"] if c["name"] == name)


def test_corollary_is_judged_inside_the_theorem_and_noisy_and_multiclass_runs_apart(tmp_path):
    runs, _ = margin_sweep(lambda group, step, left_out: 1.0 / (1 + step))
    # Label noise: instability grows with the margin here (the old verdict pooled these rows).
    noisy, _ = margin_sweep(lambda group, step, left_out: 1.0 + step, n_groups=8)
    for run in noisy:
        run.update(label_noise=0.1, dataset_id=run["dataset_id"] + "_noisy")
    multiclass, _ = margin_sweep(lambda group, step, left_out: 1.0 + step)
    for run in multiclass:
        run.update(n_classes=3, dataset_id=run["dataset_id"] + "_3")
    corollary = _corollary(judge(tmp_path, runs + noisy + multiclass), "head_margin")
    assert corollary["measured"]["verdict"] == "pass" and corollary["measured"]["n_groups"] == 4
    outside = corollary["outside"]
    assert set(outside) == {"outside the theorem: label noise", "outside the theorem: multiclass"}
    assert outside["outside the theorem: label noise"]["verdict"] == "fail"
    assert outside["outside the theorem: label noise"]["n_groups"] == 8
    assert outside["outside the theorem: multiclass"]["tau"] == 1.0
    assert "label noise" in corollary["scope"] and "multiclass" in corollary["scope"]


def test_partial_left_out_estimates_are_left_out_of_the_trends_and_counted(tmp_path):
    runs, _ = margin_sweep(lambda group, step, left_out: 1.0 / (1 + step))
    for run in runs:
        run["left_out_estimator"] = "stratified"
    partial, _ = margin_sweep(lambda group, step, left_out: 1.0 + step, n_groups=8)
    for run in partial:
        run.update(left_out_estimator="partial", dataset_id=run["dataset_id"] + "_p")
    verdicts = judge(tmp_path, runs + partial)
    corollary = _corollary(verdicts, "head_margin")
    assert corollary["measured"]["verdict"] == "pass" and corollary["measured"]["n_groups"] == 4
    assert corollary["partial_left_out"] == 32  # 8 groups x 4 margins, one E_i group each
    assert verdicts["summary"]["left_out_estimates"] == {"partial": 32, "stratified": 16}


def _apriori_constants(support_term: float) -> dict:
    """theorem_h_apriori constants whose margin-gap rate is infinite (t = 1): each margin term is the
    trivial 2, so the value is 4 + the support-vector term."""
    return dict(n=20.0, gamma=0.1, gamma_loo=0.1, support_term=support_term, radius=1.0, lr=1.0,
                iteration=1.0, init_norm=0.0, init_loss=0.6931471805599453,
                init_loss_loo=0.6931471805599453, binary=1.0, linear_head=1.0, separable=1.0,
                full_batch=1.0, single_head=1.0, exponential_tailed=1.0, logistic=1.0)


def test_bound_at_or_above_the_trivial_value_is_vacuous_and_out_of_trends_and_evidence(tmp_path):
    from theory.bounds import BOUNDS
    runs, bounds = margin_sweep(lambda group, step, left_out: 1.0 / (1 + step))
    apriori = []
    for bound in bounds:
        support = 0.5 * runs[bound["run"]]["margin"]
        constants = _apriori_constants(support)
        value = BOUNDS["theorem_h_apriori"].value(**constants)
        assert value == pytest.approx(4 + support)
        apriori.append(dict(run=bound["run"], bound="theorem_h_apriori", measured=0.1, value=value,
                            constants=constants))
    verdicts = judge(tmp_path, runs, apriori)
    verdict = verdicts["bounds"]["theorem_h_apriori"]
    assert verdict["vacuous"] == len(apriori) and verdict["non_vacuous"] == 0
    assert verdict["vacuous_share"] == 1.0 and verdict["tightness"]["n"] == 0
    trend = _corollary(verdicts, "head_margin")["bounds"]["theorem_h_apriori"]
    # The old verdict passed this trend: it is the exact support-vector term alone, on values >= 4.
    assert trend["verdict"] == "no data" and trend["vacuous_groups"] == trend["groups"] == 16
    assert verdicts["summary"]["vacuous_bounds"] == ["theorem_h_apriori"]
    assert verdicts["summary"]["evidence_bounds"] == []
    assert "theorem_h_apriori" not in verdicts["rank_correlations"] or \
        verdicts["rank_correlations"]["theorem_h_apriori"]["leave_one_out"]["n_units"] == 0


def test_a_trend_carried_by_one_exact_term_says_so_and_a_posteriori_is_a_consistency_check(tmp_path):
    from theory.bounds import BOUNDS
    runs, bounds = margin_sweep(lambda group, step, left_out: 1.0 / (1 + step))
    posteriori = []
    for bound in bounds:
        margin = runs[bound["run"]]["margin"]
        # Trained heads at the max-margin direction: both margin terms are 0, the value is the
        # support-vector term, which shrinks with the margin.
        constants = dict(n=20.0, gamma=margin, gamma_loo=margin, support_term=0.05 / margin,
                         margin_full=margin, margin_loo=margin, binary=1.0, linear_head=1.0,
                         separable=1.0)
        posteriori.append(dict(run=bound["run"], bound="theorem_h", measured=0.01,
                               value=BOUNDS["theorem_h"].value(**constants), constants=constants))
    verdicts = judge(tmp_path, runs, posteriori)
    trend = _corollary(verdicts, "head_margin")["bounds"]["theorem_h"]
    assert trend["verdict"] == "pass" and trend["carried_by"] == "support_vectors"
    assert trend["role"] == "consistency check"
    assert verdicts["summary"]["corollaries_bounds"]["pass"] == 0
    assert verdicts["summary"]["consistency_checks"] == ["theorem_h"]
    assert verdicts["rank_correlations"]["theorem_h"]["role"] == "consistency check"


def _seed_spread_rows(configs):
    """Full-set rows of random-init head tasks: three seeds per task, spread per checkpoint."""
    runs = []
    for dataset in range(3):
        for config, (lr_scale, batch_size, n_steps, spread_of) in configs.items():
            for iteration in (n_steps // 100, n_steps // 10, n_steps):
                spread = spread_of(dataset, iteration)
                for seed in range(3):
                    runs.append(dict(dataset_id=f"d{dataset}", n_samples=20 + dataset, config=config,
                                     left_out=None, seed=seed, init="random", lr_scale=lr_scale,
                                     batch_size=batch_size, n_steps=n_steps, iteration=iteration,
                                     head_seed_spread=spread, head_seed_spread_low=spread / 2,
                                     head_seed_spread_high=spread * 2))
    return runs


def test_seed_spread_corollaries_over_iterations_and_steps_at_a_fixed_eta_t(tmp_path):
    gd = {"gd_random": (1.0, None, 1000, lambda d, t: 1.0 / t + 0.01 * d)}
    # SGD: equal eta*T = 1000; a smaller step gives a smaller spread at the end.
    sgd = {"sgd_1": (1.0, 4, 1000, lambda d, t: 0.3 + 0.01 * d),
           "sgd_0.1": (0.1, 4, 10000, lambda d, t: 0.1 + 0.01 * d)}
    verdicts = judge(tmp_path, _seed_spread_rows({**gd, **sgd}))
    over_t = _corollary(verdicts, "head_seed_iteration")
    assert over_t["measured"]["verdict"] == "pass" and over_t["measured"]["n_groups"] == 3
    assert set(over_t["outside"]) == {"outside the theorem: SGD"}
    step = _corollary(verdicts, "head_sgd_step_at_fixed_eta_t")
    assert step["measured"]["verdict"] == "pass" and step["measured"]["n_groups"] == 3
    assert step["measured"]["n_rows"] == 6  # final checkpoints only, two steps per dataset
    # The verdict table says which learning-rate claim is tested.
    assert "SGD" in step["tested"] and "eta*T" in step["tested"]
    assert "GD" in _corollary(verdicts, "head_lr")["tested"]
    assert "same checkpoint" in _corollary(verdicts, "head_lr")["tested"]


def test_stabiliser_is_paired_with_plain_training_on_the_same_datasets_configs_and_seeds(tmp_path):
    from verify.verdicts.claims import claim_rows
    from verify.verdicts.stabilisers import task_family
    runs, cards = [], {}
    plain_accuracy, calm_accuracy = (0.6, 0.9, 0.75), (0.675, 0.825, 0.75)  # half the deviations
    for d in range(6):
        teacher = "target-adapted" if d < 5 else "random-direction (null control)"
        cards[f"d{d}"] = {"params": {"teacher": teacher.split(" ")[0]}, "teacher": teacher}
        for stabiliser, accuracy, margin, move in (("none", plain_accuracy, 0.1, 2.0),
                                                   ("mmr", calm_accuracy, 0.2, 1.0)):
            common = dict(dataset_id=f"d{d}", kind="deep_mlp", setting="full", config="full_deep",
                          stabiliser=stabiliser, stabiliser_params="{}" if stabiliser == "none"
                          else '{"strength":0.1,"temperature":0.05}')
            for seed, a in enumerate(accuracy):
                runs.append(dict(common, seed=seed, left_out=None, test_accuracy=a + 0.01 * d,
                                 majority_accuracy=0.65, feature_margin=margin + 0.01 * d,
                                 distance_from_start=move))
                for i in range(2):
                    runs.append(dict(common, seed=seed, left_out=i, left_out_weight=0.5,
                                     left_out_estimator="stratified",
                                     parameter_stability=(1.0 if stabiliser == "none" else 0.25)))
    database = make_results(tmp_path, runs)
    for dataset_id, card in cards.items():
        add_card(database, dataset_id, card)
    verdicts = compute_verdicts(database)
    rows = {r["family"]: r for r in verdicts["stabilisers"]}
    fair = "deep_mlp, target-adapted teacher"
    assert set(rows) == {fair, "deep_mlp, random-direction (null control) teacher"}
    assert task_family("deep_mlp", cards["d0"]) == fair
    row = rows[fair]
    assert row["stabiliser"] == "mmr" and row["is_default"] and row["n_datasets"] == 5
    measures = row["measures"]
    assert measures["seed_std"]["value"] == pytest.approx(0.5)
    assert measures["seed_std"]["verdict"] == row["verdict"] == "stabilises"
    # Failed (at or below the majority's 0.65): plain's 0.6 + 0.01 d on d <= 5, never MMR's.
    assert measures["failed_rate"]["value"] == pytest.approx(-1 / 3)
    assert measures["leave_one_out"]["value"] == pytest.approx(0.25)
    margin = measures["target:gamma_over_R"]
    assert margin["value"] == pytest.approx(sum(0.2 + 0.01 * d for d in range(5))
                                            / sum(0.1 + 0.01 * d for d in range(5)))
    assert margin["verdict"] == "raised" and margin["as_intended"] is True
    # one null-control dataset: an estimate, no interval, no verdict
    assert rows["deep_mlp, random-direction (null control) teacher"]["verdict"] == "no data"
    claims = {c["id"]: c for c in claim_rows(verdicts)}
    assert claims["paper_mmr"]["verdict"] == "supported"
    assert claims["paper_mmr"]["statistic"]["value"] == pytest.approx(0.5)
    assert "null control" in claims["paper_mmr"]["judged_on"]
    assert claims["mmr_margin"]["verdict"] == "supported"
    assert "Stabilisers against plain training" in verdicts_module.render_markdown(verdicts)


def test_mhloss_target_on_mlp_tasks_reads_not_measured_here(tmp_path):
    # MHLoss targets the seed spread of the head direction (head_seed_spread), which runs record
    # on head tasks only: on the MLP family its change is "not measured here", on the head family a
    # number (MHLoss's spread a quarter of plain's).
    runs = []
    for d in range(5):
        for stabiliser, params, spread in (("none", "{}", 0.4), ("mhloss", '{"n_heads":4}', 0.1)):
            for kind, setting in (("mlp", "full"), ("separable", "head")):
                for seed, accuracy in enumerate((0.7, 0.8, 0.75)):
                    runs.append(dict(dataset_id=f"{kind}{d}", kind=kind, setting=setting,
                                     config=f"{setting}_sgd", stabiliser=stabiliser,
                                     stabiliser_params=params, seed=seed, left_out=None,
                                     test_accuracy=accuracy,
                                     head_seed_spread=spread if setting == "head" else None))
    verdicts = compute_verdicts(make_results(tmp_path, runs))
    rows = {r["family"]: r for r in verdicts["stabilisers"] if r["stabiliser"] == "mhloss"}
    mlp = rows["mlp"]["measures"]["target:init_variance"]
    assert mlp["verdict"] == "not measured here" and mlp["value"] is None
    head = rows["separable"]["measures"]["target:init_variance"]
    assert head["value"] == pytest.approx(0.25) and head["verdict"] == "lowered"
    assert head["as_intended"] is True
    text = verdicts_module.render_markdown(verdicts)
    [line] = [row for row in text.splitlines() if row.startswith("| mhloss | mlp |")]
    assert "init_variance not measured here" in line


def test_claims_scorecard_has_one_row_per_claim_judged_by_its_statistic(tmp_path):
    from verify.verdicts.claims import CLAIM_VERDICTS, CLAIMS, claim_rows, results_facts, rewrite_readme
    runs, bounds = margin_sweep(lambda group, step, left_out: 1.0 / (1 + step))
    verdicts = write_verdicts(make_results(tmp_path, runs, bounds).parent)
    written = json.loads((tmp_path / "claims.json").read_text())
    rows = written["claims"]
    assert written["results"] == results_facts(verdicts) and written["results"]["datasets"] == 16
    assert rows == claim_rows(verdicts) and [r["id"] for r in rows] == [c.id for c in CLAIMS]
    assert len({r["id"] for r in rows}) == len(rows)
    by_id = {r["id"]: r for r in rows}
    assert all(r["verdict"] in CLAIM_VERDICTS and r["figure"] and r["judged_on"] for r in rows)
    margin = _corollary(verdicts, "head_margin")["measured"]
    assert by_id["paper_margin"]["verdict"] == "supported"
    assert by_id["paper_margin"]["statistic"] == {"name": "granulated Kendall tau",
                                                  "value": margin["tau"], "low": margin["low"],
                                                  "high": margin["high"]}
    # No run of these: not testable, never supported by default.
    assert by_id["paper_surt"]["verdict"] == "not testable here"
    assert by_id["full_eta_t_grows"]["verdict"] == "not testable here"
    # The a posteriori bound is never evidence, whatever it says.
    assert by_id["theorem_h_a_posteriori"]["verdict"] == "not testable here"
    text = rewrite_readme("intro\n<!-- claims:begin (generated by `ftstab verdicts --from DIR "
                          "--readme README.md`) -->\nSTALE-BLOCK\n<!-- claims:end -->\nrest\n", rows,
                          written["results"])
    assert text.startswith("intro\n") and text.endswith("\nrest\n") and "STALE-BLOCK" not in text
    assert "| Larger margin" not in text and by_id["paper_margin"]["claim"] in text
    with pytest.raises(ValueError, match="readme"):
        rewrite_readme("no markers", rows, written["results"])


def test_paper_claim_opposite_to_a_corollary_is_contradicted_when_the_corollary_passes():
    from verify.verdicts.claims import trend
    verdicts = {"corollaries": [{"name": "full_lr_iteration", "setting": "full", "tested": "t",
                                 "measured": {"tau": 0.8, "low": 0.6, "high": 0.9, "n_groups": 5,
                                              "n_rows": 20, "verdict": "pass"}, "outside": {}}]}
    assert trend("full_lr_iteration")(verdicts)[2] == "supported"
    assert trend("full_lr_iteration", agrees=False)(verdicts)[2] == "contradicted"


def test_readme_claims_block_is_generated_from_the_committed_scorecard():
    from verify.verdicts.claims import README_BEGIN, README_END, readme_block
    root = Path(__file__).resolve().parents[2]
    scorecard = json.loads((root / "docs" / "claims.json").read_text(encoding="utf-8"))
    readme = (root / "README.md").read_text(encoding="utf-8")
    start, end = readme.index(README_BEGIN), readme.index(README_END) + len(README_END)
    assert readme[start:end] == readme_block(scorecard["claims"], scorecard["results"])
