import json

import numpy as np
import pytest

from synth import load_dataset, make_quadratic_task, make_separable, save_dataset
from synth import atomic


def test_round_trip_without_pickle(tmp_path):
    dataset = make_separable(30, 4, margin=0.2, label_noise=0.1, random_state=0)
    npz_path = save_dataset(dataset, tmp_path)
    assert npz_path == tmp_path / f"{dataset.id}.npz"
    with np.load(npz_path, allow_pickle=False) as stored:
        assert set(stored.files) == {"X", "y", "X_test", "y_test", *dataset.arrays}
    stored_card = json.loads((tmp_path / f"{dataset.id}.json").read_text())
    assert stored_card.pop("digest").keys() == {"algorithm", "arrays", "card"}
    assert stored_card == dataset.card
    for source in (npz_path, tmp_path / f"{dataset.id}.json"):
        loaded = load_dataset(source)
        assert loaded.card == dataset.card
        np.testing.assert_array_equal(loaded.X, dataset.X)
        np.testing.assert_array_equal(loaded.y_test, dataset.y_test)
        for name, value in dataset.arrays.items():
            np.testing.assert_array_equal(loaded.arrays[name], value)
            assert loaded.arrays[name].dtype == value.dtype
    assert load_dataset(dataset.id, tmp_path).id == dataset.id


def test_a_crash_while_writing_leaves_nothing_behind(tmp_path, monkeypatch):
    dataset = make_quadratic_task(12, 2, distance=0.1, random_state=0)

    def crash(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", crash)
    with pytest.raises(OSError):
        save_dataset(dataset, tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_an_interrupted_card_write_keeps_the_previous_file(tmp_path, monkeypatch):
    path = tmp_path / "card.json"
    atomic.write_json_atomic(path, {"version": 1})

    def crash(value):
        raise KeyboardInterrupt

    monkeypatch.setattr(atomic, "to_jsonable", crash)
    with pytest.raises(KeyboardInterrupt):
        atomic.write_json_atomic(path, {"version": 2})
    assert json.loads(path.read_text()) == {"version": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["card.json"]


def test_reserved_array_names_are_refused(tmp_path):
    dataset = make_quadratic_task(12, 2, distance=0.1, random_state=0)
    dataset.arrays["X"] = np.zeros(1)
    with pytest.raises(ValueError, match="'X'"):
        save_dataset(dataset, tmp_path)


def test_missing_dataset_is_a_value_error(tmp_path):
    with pytest.raises(ValueError, match="not found"):
        load_dataset("separable-000000000000", tmp_path)
