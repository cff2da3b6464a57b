"""T2's paired bootstrap and verdicts, and T2/F12 on a store written by the results store itself."""
import numpy as np
import pytest

from figures.t2_real import _verdict, paired_bootstrap


def test_a_constant_improvement_on_every_seed_is_detected():
    plain = {f"t{k}": np.array([0.5, 0.6, 0.7, 0.55, 0.65]) + 0.01 * k for k in range(4)}
    better = {task: values + 0.1 for task, values in plain.items()}
    estimate = paired_bootstrap(better, plain, seed=0, n_resamples=300)
    value, low, high = estimate["mean"]
    assert value == pytest.approx(0.1) and low == pytest.approx(0.1) and high == pytest.approx(0.1)
    assert estimate["std"][0] == pytest.approx(0.0, abs=1e-12)
    assert _verdict(estimate["mean"], "better", "worse") == "better"


def test_a_spread_cut_in_half_is_more_stable_and_noise_is_inconclusive():
    rng = np.random.default_rng(1)
    plain = {f"t{k}": 0.7 + rng.normal(0, 0.1, size=10) for k in range(6)}
    calmer = {task: 0.7 + 0.5 * (values - 0.7) for task, values in plain.items()}
    estimate = paired_bootstrap(calmer, plain, seed=0, n_resamples=500)
    assert estimate["std"][2] < 0 and _verdict(estimate["std"], "less stable", "more stable") == "more stable"
    noise = {task: 0.7 + rng.normal(0, 0.1, size=10) for task in plain}
    mean = paired_bootstrap(noise, plain, seed=0, n_resamples=500)["mean"]
    assert mean[1] < 0 < mean[2] and _verdict(mean, "better", "worse") == "no clear effect"


def test_bootstrap_is_repeatable_from_its_seed():
    plain = {"a": np.array([0.5, 0.7, 0.6]), "b": np.array([0.4, 0.45, 0.5])}
    other = {"a": np.array([0.6, 0.6, 0.65]), "b": np.array([0.5, 0.4, 0.6])}
    assert paired_bootstrap(other, plain, seed=3, n_resamples=200) == \
        paired_bootstrap(other, plain, seed=3, n_resamples=200)


def _store(path, accuracies):
    """A store (the schema of the fixture database) with full fine-tuning rows of two tasks."""
    import json

    from tests.figures.conftest import create_results
    connection = create_results(path)
    run_id = 0
    for task, majority in (("sms-spam", 0.5), ("trec-coarse", 1 / 6)):
        dataset = f"{task}-4shot-draw0-test30"
        connection.execute("INSERT INTO datasets VALUES (?, 'real-text', ?)",
                           (dataset, json.dumps({"params": {"task": task}})))
        for method, values in accuracies.items():
            for seed, accuracy in enumerate(values):
                run_id += 1
                connection.execute(
                    "INSERT INTO runs (run_id, task_key, dataset_id, seed, left_out, iteration, kind, "
                    "setting, config, stabiliser, test_accuracy, majority_accuracy, diverged) "
                    "VALUES (?, ?, ?, ?, NULL, 30, 'real-text', 'full', 'real_ft_x', ?, ?, ?, ?)",
                    (run_id, f"{dataset}|{method}", dataset, seed, method,
                     None if accuracy is None else accuracy * (1 if task == "sms-spam" else 0.5),
                     majority, int(accuracy is None)))
    connection.commit()
    return connection


def test_failed_runs_are_counted_and_kept_in_the_mean(tmp_path):
    from figures import f12_real_seeds, t2_real
    accuracies = {"none": [0.9, 0.5, 0.8, None], "llrd": [0.9, 0.85, 0.8, 0.95]}
    connection = _store(tmp_path / "r.sqlite", accuracies)
    rows = {(row["method"], row["task"]): row for row in t2_real.table_rows(connection)}
    plain = rows[("none", "sms-spam")]
    # 0.5 is the majority-class accuracy (failed, kept in the mean) and None diverged (failed).
    assert plain["failed_runs"] == 2 and plain["failed_rate"] == 0.5
    assert plain["accuracy_mean"] == pytest.approx(np.mean([0.9, 0.5, 0.8]))
    assert rows[("llrd", "sms-spam")]["failed_runs"] == 0
    summary = rows[("llrd", "all")]
    assert summary["delta_mean"] > 0 and summary["verdict_std"] in ("more stable", "no clear effect")
    drawn = t2_real.render(connection, tmp_path)
    assert "(2✗)" in (tmp_path / "t2_real.md").read_text() and len(drawn.files) == 2
    f12 = f12_real_seeds.render(connection, tmp_path)
    assert [path.suffix for path in f12.files] == [".png", ".pdf", ".csv"]
    plotted = (tmp_path / "f12_real_seeds.csv").read_text().splitlines()
    assert len(plotted) == 1 + 2 * 8


def test_tables_are_skipped_without_real_runs(tmp_path):
    from figures.data import MissingData
    from figures.t2_real import table_rows
    connection = _store(tmp_path / "r.sqlite", {})
    with pytest.raises(MissingData, match="no full fine-tuning runs"):
        table_rows(connection)
