"""A real dataset kind's record is the only place its behaviour lives: a fake record registered in its
place (or under a new name) is what ``ftstab real``, the source and the runner name, validate, build,
train and select stabilisers with."""
from dataclasses import replace

import numpy as np
import pytest

from verify.cli import build_parser, main
from verify.real import configs
from verify.real.cli import DEFAULTS
from verify.real.datasets import RealDataset, dataset_card
from verify.real.kinds import REAL_KINDS, RealKind, real_kind, task_kind
from verify.real.plan import plan_real_tasks
from verify.real.runner import RealRunner
from verify.real.source import DatasetRequest, RealSource
from verify.run.output import TaskOutput
from verify.stabilisers.mhloss import MHLoss
from verify.store import open_results

N_FEATURES = 3


class BlobsMHLoss(MHLoss):
    """A counterpart under the registry's name ``mhloss``."""


def _blobs_id(*, task, shots, subset, test_per_class):
    return f"{task}-{shots}shot-draw{subset}-test{test_per_class}"


def _blobs_split(*, task, shots, subset, test_per_class):
    if not 1 <= shots <= 10:
        raise ValueError(f"shots must be an integer in [1, 10] for blobs, got {shots!r}")
    if not 1 <= test_per_class <= 5:
        raise ValueError(f"test_per_class must be an integer in [1, 5] for blobs, got {test_per_class!r}")


def _blobs(kind):
    """Build function of three Gaussian blobs in 3 dimensions, cards of kind ``kind``."""
    def build(*, task, shots, subset, test_per_class, cache_dir):
        _blobs_split(task=task, shots=shots, subset=subset, test_per_class=test_per_class)
        rng = np.random.default_rng([subset, shots])

        def draw(per_class):
            y = np.repeat([0, 1, 2], per_class)
            return rng.normal(size=(len(y), N_FEATURES)) + 3.0 * np.eye(N_FEATURES)[y], y

        (X, y), (X_test, y_test) = draw(shots), draw(test_per_class)
        params = {"shots": shots, "subset": subset, "test_per_class": test_per_class}
        card = dataset_card(dataset_id=_blobs_id(task=task, **params), kind=kind, generator="blobs",
                            params=params, seed=subset, y=y, n_features=N_FEATURES, n_test=len(y_test))
        return RealDataset(X=X, y=y, X_test=X_test, y_test=y_test, card=card)
    return build


def _features(dataset, *, cache_dir, max_length, encoder):
    return 2.0 * dataset.X, 2.0 * dataset.X_test


def _fake(name: str, calls: list) -> RealKind:
    def finetune(task, dataset, stabiliser, layout, *, cache_dir, max_length):
        calls.append({"dataset": dataset.card["id"], "stabiliser": stabiliser, "max_length": max_length,
                      "cache_dir": cache_dir, "n_models": layout.n_models})
        return TaskOutput(runs=[{"seed": seed, "left_out": None, "iteration": 1}
                                for seed in sorted(set(layout.seeds.tolist()))])

    return RealKind(name, tasks=("blobs",), default_task="blobs", dataset_id=_blobs_id, split=_blobs_split,
                    build=_blobs(name), features=_features, finetune=finetune,
                    max_length={"head": 7, "full": 9}, counterparts=(BlobsMHLoss,))


@pytest.fixture
def calls():
    return []


@pytest.fixture
def digits_replaced(monkeypatch, calls):
    """The digits kind's record replaced by the fake one: ``--task digits-*`` must train blobs."""
    monkeypatch.setitem(REAL_KINDS, "real-digits", _fake("real-digits", calls))


def test_a_cli_task_names_validates_builds_and_trains_what_its_kinds_record_says(tmp_path, digits_replaced,
                                                                                 capsys):
    out = tmp_path / "out"
    argv = ["real", "--task", "digits-head", "--out", str(out), "--shots", "2,3", "--seeds", "2",
            "--steps", "10", "--stabilisers", "none,mhloss:n_heads=2", "--test-per-class", "4"]
    assert main(argv) == 0, capsys.readouterr().err
    with open_results(out) as store:
        cards = store.cards()
        runs = store.runs()
    assert set(cards) == {"blobs-2shot-draw0-test4", "blobs-3shot-draw0-test4"}
    assert {card["generator"] for card in cards.values()} == {"blobs"}
    # the token limit is the record's default for head tuning, in the config's name
    assert {run["config"] for run in runs} == {"real_digits_head_sgd8_T10_lrscale1_looall_L7"}
    # head tuning read the record's features (2 X): their dimension and radius
    assert {run["n_features"] for run in runs} == {N_FEATURES}
    for dataset_id, card in cards.items():
        X = 2.0 * _blobs(card["kind"])(task="blobs", **card["params"], cache_dir=None).X
        radii = [run["radius"] for run in runs if run["dataset_id"] == dataset_id]
        assert radii == pytest.approx([float(np.linalg.norm(X, axis=1).max())] * len(radii))
    assert {run["n_heads"] for run in runs if run["stabiliser"] == "mhloss"} == {2}


def test_the_records_split_refuses_a_request_before_anything_runs(tmp_path, digits_replaced, capsys):
    out = tmp_path / "out"
    assert main(["real", "--task", "digits-head", "--out", str(out), "--shots", "11"]) == 2
    error = capsys.readouterr().err.strip()
    assert "shots must be an integer in [1, 10] for blobs" in error and len(error.splitlines()) == 1
    assert not out.exists()


def test_the_records_extras_are_required_before_anything_runs(tmp_path, monkeypatch, calls, capsys):
    monkeypatch.setitem(REAL_KINDS, "real-digits",
                        replace(_fake("real-digits", calls), extras=("ftstab_no_such_module",)))
    out = tmp_path / "out"
    assert main(["real", "--task", "digits-head", "--out", str(out)]) == 2
    error = capsys.readouterr().err.strip()
    assert "the [real] extra is not installed (ftstab_no_such_module is missing)" in error
    assert not out.exists()


def test_a_kind_without_a_token_limit_refuses_max_length(tmp_path, monkeypatch, calls, capsys):
    monkeypatch.setitem(REAL_KINDS, "real-digits", replace(_fake("real-digits", calls), max_length=None))
    assert main(["real", "--task", "digits-head", "--out", str(tmp_path / "out"), "--max-length", "16"]) == 2
    assert "max-length: only for tasks of kind real-text" in capsys.readouterr().err


def test_full_fine_tuning_is_the_records_with_its_token_limit_and_counterparts(tmp_path, digits_replaced,
                                                                               calls):
    args = build_parser().parse_args(["real", "--task", "digits-full", "--out", str(tmp_path / "out"),
                                      "--shots", "2", "--seeds", "3", "--left-out", "0", "--test-per-class", "4",
                                      "--stabilisers", "mhloss"])
    plan = plan_real_tasks(args, DEFAULTS["digits-full"])
    assert plan.runner.max_length == 9 and plan.config.name.endswith("_L9")
    (task,) = plan.tasks
    rows = plan.runner(task, plan.source.load(task.dataset_id)).runs
    (call,) = calls
    assert call["dataset"] == task.dataset_id == "blobs-2shot-draw0-test4"
    assert call["max_length"] == 9 and call["cache_dir"] == tmp_path / "out" / "cache"
    assert type(call["stabiliser"]) is BlobsMHLoss and call["n_models"] == 3  # a full set per seed
    assert [row["seed"] for row in rows] == [0, 1, 2] and {row["n_heads"] for row in rows} == {4}


def test_a_new_kind_is_one_record(tmp_path, monkeypatch, calls):
    monkeypatch.setitem(REAL_KINDS, "real-blobs", _fake("real-blobs", calls))
    request = DatasetRequest("blobs", 2, 1, 3)
    assert request.kind == "real-blobs" and task_kind("blobs") is real_kind("real-blobs")
    source = RealSource((request, DatasetRequest("blobs", 4, 0, 3)), tmp_path)
    assert source.entries() == [("blobs-2shot-draw1-test3", "real-blobs"), ("blobs-4shot-draw0-test3", "real-blobs")]
    source.validate()
    dataset = source.load("blobs-2shot-draw1-test3")
    assert dataset.card["kind"] == "real-blobs" and dataset.card["params"]["subset"] == 1
    with pytest.raises(ValueError, match=r"test_per_class must be an integer in \[1, 5\] for blobs"):
        RealSource((DatasetRequest("blobs", 2, 0, 6),), tmp_path).validate()
    X, X_test = RealRunner(tmp_path).features(dataset)
    assert np.array_equal(X, 2.0 * dataset.X) and np.array_equal(X_test, 2.0 * dataset.X_test)
    assert real_kind("real-blobs").stabiliser_classes()["mhloss"] is BlobsMHLoss
    with pytest.raises(ValueError, match="task must be one of .*'blobs'.*'digits'"):
        task_kind("nope")


def test_shipped_kinds_are_the_configs_kinds_with_disjoint_tasks():
    assert set(REAL_KINDS) == set(configs.KINDS)
    tasks = [task for kind in REAL_KINDS.values() for task in kind.tasks]
    assert len(tasks) == len(set(tasks))
    assert all(kind.default_task in kind.tasks and task_kind(kind.default_task) is kind
               for kind in REAL_KINDS.values())


@pytest.mark.parametrize("name", sorted(REAL_KINDS))
def test_each_shipped_kind_builds_cards_of_its_name_and_id(name, quick_pretraining):
    kind = real_kind(name)
    for module in kind.extras:
        pytest.importorskip(module)
    request = {"task": kind.default_task, "shots": 1, "subset": 0, "test_per_class": 1}
    kind.split(**request)
    card = kind.build(**request, cache_dir=quick_pretraining).card
    assert card["kind"] == name and card["id"] == kind.dataset_id(**request)

