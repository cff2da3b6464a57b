"""Stored datasets are trusted only after their digest and cheap certified facts check out."""
import json
import os
import zipfile

import numpy as np
import pytest

from synth import load_dataset
from synth.cli import write
from synth.digest import with_digest
from synth.grids import DatasetSpec
from synth.io import check_data_folder

SPECS = [
    DatasetSpec("make_separable", {"n_samples": 20, "n_features": 3, "margin": 0.2,
                                   "n_test": 8, "random_state": 0}),
    DatasetSpec("make_separable", {"n_samples": 24, "n_features": 4, "margin": 0.1,
                                   "n_classes": 3, "n_test": 9, "random_state": 1}),
    DatasetSpec("make_quadratic_task", {"n_samples": 12, "n_features": 2, "distance": 0.5,
                                        "n_test": 5, "random_state": 2}),
    DatasetSpec("make_pretrained_mlp_task", {"n_samples": 10, "n_features": 3, "hidden": [4],
                                             "distance": 0.3, "n_source": 16,
                                             "pretrain_steps": 3, "n_test": 6,
                                             "random_state": 3}),
]


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    folder = tmp_path_factory.mktemp("data")
    cache = tmp_path_factory.mktemp("cache")
    previous = os.environ.get("FTSTAB_CACHE")
    os.environ["FTSTAB_CACHE"] = str(cache)
    try:
        write(SPECS, folder)
    finally:
        if previous is None:
            del os.environ["FTSTAB_CACHE"]
        else:
            os.environ["FTSTAB_CACHE"] = previous
    return folder


@pytest.fixture
def data(written, tmp_path):
    """A fresh copy of the written folder, and its ids by role."""
    folder = tmp_path / "data"
    folder.mkdir()
    for path in written.iterdir():
        (folder / path.name).write_bytes(path.read_bytes())
    index = json.loads((folder / "index.json").read_text())
    ids = [entry["id"] for entry in index]
    return folder, dict(zip(("binary", "multiclass", "quadratic", "mlp"), ids))


def read_npz(path):
    with np.load(path, allow_pickle=False) as stored:
        return {key: stored[key] for key in stored.files}


def edit(folder, dataset_id, *, card=None, arrays=None, redigest=False):
    """Change a stored dataset's card and/or arrays; ``redigest`` also forges a matching digest."""
    card_path, npz_path = folder / f"{dataset_id}.json", folder / f"{dataset_id}.npz"
    stored_card = json.loads(card_path.read_text())
    stored_arrays = read_npz(npz_path)
    if arrays is not None:
        arrays(stored_arrays)
        np.savez(npz_path, **stored_arrays)
    if card is not None:
        card(stored_card)
    if redigest:
        stored_card.pop("digest")
        stored_card = with_digest(stored_card, stored_arrays)
    card_path.write_text(json.dumps(stored_card))


def refused(folder, dataset_id, rule, file_suffix):
    """Both load_dataset and check_data_folder refuse in one line naming the file and rule."""
    for attempt in (lambda: load_dataset(dataset_id, folder), lambda: check_data_folder(folder)):
        with pytest.raises(ValueError) as error:
            attempt()
        message = str(error.value)
        assert "\n" not in message
        assert f"{dataset_id}{file_suffix}" in message
        assert rule in message


def test_an_untouched_folder_passes_and_loads(data):
    folder, ids = data
    assert check_data_folder(folder) == list(ids.values())
    assert check_data_folder(folder, ids=[ids["quadratic"]]) == [ids["quadratic"]]
    for dataset_id in ids.values():
        dataset = load_dataset(dataset_id, folder)
        assert "digest" not in dataset.card and dataset.id == dataset_id


def test_an_edited_card_margin_is_caught_by_the_digest(data):
    folder, ids = data
    edit(folder, ids["binary"], card=lambda c: c.update(margin=0.5))
    refused(folder, ids["binary"], "card digest mismatch", ".json")


@pytest.mark.parametrize("role", ["binary", "multiclass"])
def test_a_forged_margin_is_caught_by_recomputing_it(data, role):
    folder, ids = data
    edit(folder, ids[role], card=lambda c: c.update(margin=c["margin"] * 2.5), redigest=True)
    refused(folder, ids[role], "margin", ".npz")


def test_scaled_inputs_are_caught_by_the_digest_and_by_the_radius(data):
    folder, ids = data

    def triple(arrays):
        arrays["X"] = arrays["X"] * 3

    edit(folder, ids["binary"], arrays=triple)
    refused(folder, ids["binary"], "array digest mismatch", ".npz")
    edit(folder, ids["binary"], redigest=True)
    refused(folder, ids["binary"], "radius", ".npz")


@pytest.mark.parametrize("role, fact, arrays_key", [
    ("quadratic", "distance", "teacher"), ("quadratic", "D", "w_star"),
    ("mlp", "distance", "teacher.encoder.0.weight")])
def test_forged_distances_are_caught_by_recomputing_them(data, role, fact, arrays_key):
    folder, ids = data

    def move(arrays):
        arrays[arrays_key] = arrays[arrays_key] + 0.1

    edit(folder, ids[role], arrays=move, redigest=True)
    refused(folder, ids[role], fact, ".npz")


def test_forged_class_counts_are_caught(data):
    folder, ids = data
    edit(folder, ids["binary"], card=lambda c: c.update(class_counts=[c["class_counts"][0] + 1,
                                                                      c["class_counts"][1] - 1]),
         redigest=True)
    refused(folder, ids["binary"], "class counts", ".npz")


@pytest.mark.parametrize("change, rule", [
    (lambda c: c.update(id="separable-000000000000"), "not the hash"),
    (lambda c: c.update(kind="quadratic"), "kind 'quadratic' is not the kind"),
    (lambda c: c.update(kind="nonsense"), "kind 'nonsense'"),
    (lambda c: c.update(generator="make_nothing"), "unknown generator"),
    (lambda c: c["params"].update(margin=0.3), "not the hash"),
    (lambda c: c.pop("digest"), "no 'digest'"),
    (lambda c: c.update(n_samples="20"), "'n_samples' must be a JSON integer"),
])
def test_edited_card_identity_is_refused(data, change, rule):
    folder, ids = data
    edit(folder, ids["binary"], card=change)
    refused(folder, ids["binary"], rule, ".json")


@pytest.mark.parametrize("change, rule", [
    (lambda a: a.update(X=np.where(np.arange(a["X"].size).reshape(a["X"].shape) == 4, np.nan,
                                   a["X"])), "non-finite"),
    (lambda a: a.update(X=a["X"][:, :2]), "shape"),
    (lambda a: a.update(y=a["y"].astype(np.float64)), "int64"),
    (lambda a: a.pop("y"), "missing array 'y'"),
    (lambda a: a.update(y=np.where(np.arange(a["y"].size) == 0, 7, a["y"])), "labels"),
])
def test_damaged_arrays_are_refused_even_with_a_forged_digest(data, change, rule):
    folder, ids = data
    edit(folder, ids["binary"], arrays=change, redigest=True)
    refused(folder, ids["binary"], rule, ".npz")


def test_a_pickled_object_array_is_refused(data):
    folder, ids = data
    npz_path = folder / f"{ids['binary']}.npz"
    arrays = read_npz(npz_path)
    arrays["u_star"] = np.array([{"not": "data"}], dtype=object)
    np.savez(npz_path, **arrays)
    refused(folder, ids["binary"], "pickled object array", ".npz")


@pytest.mark.parametrize("damage", ["truncate", "random", "delete", "not_a_zip_member"])
def test_damaged_or_missing_npz_is_refused(data, damage):
    folder, ids = data
    npz_path = folder / f"{ids['quadratic']}.npz"
    content = npz_path.read_bytes()
    if damage == "truncate":
        npz_path.write_bytes(content[:len(content) // 2])
    elif damage == "random":
        npz_path.write_bytes(np.random.default_rng(0).bytes(len(content)))
    elif damage == "delete":
        npz_path.unlink()
    else:
        with zipfile.ZipFile(npz_path, "w") as archive:
            archive.writestr("X.npy", b"this is not an array")
    refused(folder, ids["quadratic"], "not found" if damage == "delete" else "not a readable",
            ".npz")


def test_a_truncated_card_names_the_file(data):
    folder, ids = data
    card_path = folder / f"{ids['quadratic']}.json"
    card_path.write_text(card_path.read_text()[:100])
    refused(folder, ids["quadratic"], "not valid JSON", ".json")


@pytest.mark.parametrize("index_text, rule", [
    ('[{"id": "separable-', "not valid JSON"),
    ('{"id": "separable-000000000000"}', "must be a JSON list"),
    ('[3]', "entry 0: must be an object"),
    ('[{"id": "separable-000000000000", "params": {}}]', "entry 0: missing key 'kind'"),
    ('[{"id": "separable-000000000000", "kind": "separable", "params": []}]',
     "key 'params' must be a JSON object"),
    ('[{"id": 5, "kind": "separable", "params": {}}]', "key 'id' must be a JSON string"),
    ('[{"id": "../../etc/passwd", "kind": "separable", "params": {}}]', "not a dataset id"),
    ('[{"id": "separable-000000000000", "kind": "separable", "params": {}}]',
     "separable-000000000000.json: not found"),
])
def test_a_bad_index_is_refused_naming_it(data, index_text, rule):
    folder, _ = data
    (folder / "index.json").write_text(index_text)
    with pytest.raises(ValueError) as error:
        check_data_folder(folder)
    assert rule in str(error.value) and "\n" not in str(error.value)
    assert "index.json" in str(error.value) or "separable-000000000000.json" in str(error.value)


def test_an_index_that_disagrees_with_a_card_or_misses_an_id_is_refused(data):
    folder, ids = data
    index = json.loads((folder / "index.json").read_text())
    index[0]["params"]["margin"] = 0.4
    (folder / "index.json").write_text(json.dumps(index))
    with pytest.raises(ValueError, match=f"{ids['binary']}.json: card params disagrees"):
        check_data_folder(folder)
    with pytest.raises(ValueError, match="no dataset 'separable-0123456789ab' in the index"):
        check_data_folder(folder, ids=["separable-0123456789ab"])
    with pytest.raises(ValueError, match="not a dataset id"):
        load_dataset("../data/x", folder)
    with pytest.raises(ValueError, match="index.json: not found"):
        check_data_folder(folder / "..")


def test_check_data_folder_reads_each_archive_once(data, monkeypatch):
    from synth import checks
    folder, ids = data
    opened = []
    real_load = np.load

    def counting_load(path, *args, **kwargs):
        opened.append(path)
        return real_load(path, *args, **kwargs)

    monkeypatch.setattr(checks.np, "load", counting_load)
    check_data_folder(folder)
    assert sorted(opened) == sorted(folder / f"{dataset_id}.npz" for dataset_id in ids.values())
