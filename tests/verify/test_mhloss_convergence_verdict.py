"""The MHLoss convergence verdict (``verify.verdicts.multihead``) on hand-made results whose answer is
known: plain (H = 1) and balanced MHLoss (H = 4) head runs with a given seed spread over the
checkpoints, written through the store's writer (``verify.store.ResultStore``).

The checkpoints are 1, 10, 100, 1000 and plain training's seed spread ends at 0.1, the target. A
series that is at 0.1 exactly at a checkpoint reaches it there (the log interpolation's end), so
every ratio plain / MHLoss below is a ratio of checkpoints: 10 (MHLoss at 100, plain at 1000), 0.1
(MHLoss at 1000, plain at 100), ...
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from verify.store import ResultStore
from verify.verdicts.claims import (CONTRADICTED, INCONCLUSIVE, SUPPORTED, UNTESTABLE,
                                   mhloss_acceleration)
from verify.verdicts.db import open_results
from verify.verdicts.multihead import iterations_to_reach, mhloss_convergence

ITERATIONS = (1, 10, 100, 1000)
SEEDS = (0, 1)
BALANCED = {"curvature": "trained", "n_heads": 4, "reduction": "balanced"}
# Seed spread over ITERATIONS: plain reaches its final 0.1 at 1000 (LATE) or at 100 (EARLY).
LATE, EARLY = (1.0, 0.5, 0.2, 0.1), (1.0, 0.5, 0.1, 0.1)
AT_100, AT_10, AT_1000 = (0.5, 0.25, 0.1, 0.05), (0.5, 0.1, 0.05, 0.02), (1.0, 0.5, 0.2, 0.1)
NEVER = (1.0, 0.5, 0.3, 0.2)   # MHLoss never reaches 0.1: censored


def _task(store: ResultStore, dataset: str, curve, *, mhloss: bool,
          iterations=ITERATIONS) -> None:
    stabiliser, params = ("mhloss", BALANCED) if mhloss else ("none", {})
    text = json.dumps(params, sort_keys=True, separators=(",", ":"))
    task = {"task_key": f"{dataset}/head_sgd/{stabiliser}/{text}", "dataset_id": dataset,
            "config": "head_sgd", "stabiliser": stabiliser, "stabiliser_params": text,
            "seeds": SEEDS}
    runs = [{"task_key": task["task_key"], "dataset_id": dataset, "config": "head_sgd",
             "stabiliser": stabiliser, "stabiliser_params": text, "kind": "separable",
             "setting": "head", "n_heads": 4 if mhloss else 1, "seed": seed, "left_out": None,
             "iteration": t, "diverged": 0, "head_seed_spread": value, "margin": 0.3,
             "normalised_margin": None if value is None else 0.3 - value, "train_loss": value}
            for seed in SEEDS for t, value in zip(iterations, curve)]
    store.write_done(task, runs, seconds=1.0,
                     card={"id": dataset, "kind": "separable", "margin": 0.3, "radius": 1.0})


def results(folder: Path, datasets: list[tuple], **extra) -> Path:
    """One plain and one MHLoss task per (plain curve, MHLoss curve) of ``datasets``."""
    path = folder / "results.sqlite"
    store = ResultStore(path)
    try:
        for k, (plain, heads) in enumerate(datasets):
            _task(store, f"d{k}", plain, mhloss=False)
            _task(store, f"d{k}", heads, mhloss=True)
        for name, (plain, heads, iterations) in extra.items():
            _task(store, name, plain, mhloss=False, iterations=iterations)
            _task(store, name, heads, mhloss=True, iterations=iterations)
    finally:
        store.close()
    return path


def judge(folder: Path, datasets: list[tuple], **extra) -> tuple[dict, dict]:
    conn = open_results(results(folder, datasets, **extra))
    try:
        convergence = mhloss_convergence(conn)
    finally:
        conn.close()
    judged_on, statistic, verdict = mhloss_acceleration({"mhloss_convergence": convergence})
    return convergence["seed_spread"], {"judged_on": judged_on, "statistic": statistic,
                                        "verdict": verdict}


def test_the_checkpoints_give_exact_ratios():
    assert iterations_to_reach(ITERATIONS, LATE, 0.1) == pytest.approx(1000)
    assert iterations_to_reach(ITERATIONS, EARLY, 0.1) == pytest.approx(100)
    assert iterations_to_reach(ITERATIONS, AT_100, 0.1) == pytest.approx(100)
    assert iterations_to_reach(ITERATIONS, AT_10, 0.1) == pytest.approx(10)
    # Between checkpoints: linear in log t, 0.15 is halfway from 0.2 (t = 100) to 0.1 (t = 1000).
    assert iterations_to_reach(ITERATIONS, LATE, 0.15) == pytest.approx(10 ** 2.5)


def test_mhloss_faster_on_every_dataset_is_supported(tmp_path):
    # ratios 10, 10, 100, 10, 100: the median 10, every resample's median in [10, 100]
    entry, claim = judge(tmp_path, [(LATE, AT_100), (LATE, AT_100), (LATE, AT_10),
                                    (LATE, AT_100), (LATE, AT_10)])
    assert [p["ratio"] for p in entry["pairs"]] == pytest.approx([10, 10, 100, 10, 100])
    assert entry["median_ratio"]["value"] == pytest.approx(10)
    assert 10 - 1e-9 <= entry["median_ratio"]["low"] <= entry["median_ratio"]["high"] <= 100 + 1e-9
    assert entry["verdict"] == "faster" and entry["n_measured"] == entry["n_pairs"] == 5
    assert claim["verdict"] == SUPPORTED
    assert claim["statistic"]["value"] == pytest.approx(10)
    assert claim["statistic"]["name"] == "median iterations ratio, plain / MHLoss"


def test_mhloss_slower_on_every_dataset_is_contradicted(tmp_path):
    entry, claim = judge(tmp_path, [(EARLY, AT_1000)] * 5)
    assert entry["median_ratio"]["value"] == pytest.approx(0.1)
    assert entry["median_ratio"]["high"] == pytest.approx(0.1)
    assert entry["verdict"] == "slower" and claim["verdict"] == CONTRADICTED


def test_mixed_directions_are_inconclusive(tmp_path):
    entry, claim = judge(tmp_path, [(LATE, AT_100), (EARLY, AT_1000)] * 3)
    assert sorted(p["ratio"] for p in entry["pairs"]) == pytest.approx([0.1] * 3 + [10] * 3)
    assert entry["median_ratio"]["value"] == pytest.approx(5.05)  # median of three 0.1, three 10
    assert entry["median_ratio"]["low"] < 1 < entry["median_ratio"]["high"]
    assert entry["verdict"] == "inconclusive" and claim["verdict"] == INCONCLUSIVE


def test_censored_pairs_are_counted_reported_and_judged_at_their_least_favourable_value(tmp_path):
    # Three datasets measured at ratio 10; on two MHLoss never reaches 0.1 by t = 1000, i.e. it is
    # slower there (ratio below 1). Judged on the measured pairs alone this would read "faster".
    entry, claim = judge(tmp_path, [(LATE, AT_100)] * 3 + [(LATE, NEVER)] * 2)
    assert (entry["n_pairs"], entry["n_measured"], entry["n_censored"]) == (5, 3, 2)
    assert entry["n_datasets"] == 5
    censored = [p for p in entry["pairs"] if p["status"] == "censored"]
    assert [p["dataset_id"] for p in censored] == ["d3", "d4"]
    for pair in censored:
        assert pair["ratio"] is None and pair["mhloss"] is None
        assert pair["mhloss_after"] == 1000 and pair["plain"] == pytest.approx(1000)
        assert pair["ratio_at_most"] == pytest.approx(1.0)  # plain's 1000 / more than 1000
    assert entry["censored_ratio_at_most"] == pytest.approx(1.0)
    # Read as 0: ratios (10, 10, 10, 0, 0), median 10; a resample of the five datasets with three
    # or more censored ones (probability 0.32) has median 0, so the CI reaches 0.
    assert entry["median_ratio"]["value"] == pytest.approx(10)
    assert entry["median_ratio"]["low"] == 0 and entry["median_ratio"]["high"] == pytest.approx(10)
    # At their bound: (10, 10, 10, 1, 1), whose CI is [1, 10]: not below 1 either.
    at_bound = entry["median_ratio_if_censored_at_bound"]
    assert (at_bound["value"], at_bound["low"], at_bound["high"]) == pytest.approx((10, 1, 10))
    assert entry["verdict"] == "inconclusive" and claim["verdict"] == INCONCLUSIVE
    assert "3 measured and 2 censored of 5" in claim["judged_on"]
    assert "censored ratios read as 0" in claim["judged_on"]
    assert "at most 1" in claim["judged_on"] and "at their bounds the median is 10" in claim["judged_on"]


def test_a_few_censored_pairs_do_not_hide_a_clear_acceleration(tmp_path):
    # Eight datasets at ratio 10 and one censored: a resample needs five or more censored of nine
    # (probability 6e-4) to move the median off 10, so even read as 0 the CI stays at 10.
    entry, claim = judge(tmp_path, [(LATE, AT_100)] * 8 + [(LATE, NEVER)])
    assert (entry["n_measured"], entry["n_censored"]) == (8, 1)
    assert entry["median_ratio"] == pytest.approx({"value": 10, "low": 10, "high": 10})
    assert entry["verdict"] == "faster" and claim["verdict"] == SUPPORTED


def test_censored_pairs_count_for_slower_only_at_their_bound(tmp_path):
    # Plain reaches 0.1 at t = 100; MHLoss at 1000 on three datasets (ratio 0.1) and never on two
    # (ratio below 100/1000 = 0.1): slower whatever value below the bound they take.
    entry, claim = judge(tmp_path, [(EARLY, AT_1000)] * 3 + [(EARLY, NEVER)] * 2)
    assert entry["n_censored"] == 2 and entry["censored_ratio_at_most"] == pytest.approx(0.1)
    assert entry["median_ratio_if_censored_at_bound"]["high"] == pytest.approx(0.1)
    assert entry["verdict"] == "slower" and claim["verdict"] == CONTRADICTED


def test_a_target_reached_at_the_start_or_undefined_is_counted_not_fatal(tmp_path):
    start = (0, *ITERATIONS)
    entry, claim = judge(
        tmp_path, [(LATE, AT_100)] * 3,
        # MHLoss is already at plain's final value at t = 0: no ratio (0 iterations)
        at_start=((1.0, 1.0, 0.5, 0.2, 0.1), (0.1, 0.1, 0.05, 0.02, 0.01), start),
        # plain's last seed spread is undefined (NULL): nothing to reach
        no_target=((1.0, 0.5, 0.2, None), AT_100, ITERATIONS))
    statuses = {p["dataset_id"]: p["status"] for p in entry["pairs"]}
    assert statuses == {"d0": "measured", "d1": "measured", "d2": "measured",
                        "at_start": "reached at start", "no_target": "no target"}
    assert (entry["n_reached_at_start"], entry["n_no_target"], entry["n_censored"]) == (1, 1, 0)
    assert entry["verdict"] == "faster" and entry["median_ratio"]["value"] == pytest.approx(10)
    assert "1 reached at iteration 0, 1 without a target" in claim["judged_on"]


def test_fewer_than_two_judged_datasets_is_no_data_and_says_why(tmp_path):
    # One censored dataset; the other has no target (plain's last value undefined).
    entry, claim = judge(tmp_path, [(LATE, NEVER)],
                         no_target=((1.0, 0.5, 0.2, None), AT_100, ITERATIONS))
    assert entry["median_ratio"] is None and entry["median_ratio_if_censored_at_bound"] is None
    assert entry["verdict"] == "no data"
    assert (entry["n_measured"], entry["n_censored"], entry["n_no_target"]) == (0, 1, 1)
    assert claim["verdict"] == UNTESTABLE
    assert claim["judged_on"].startswith("fewer than two datasets with a measured or censored pair")
    assert "1 without a target" in claim["judged_on"]
