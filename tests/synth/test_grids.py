import numpy as np
import pytest
from synth_certificates import assert_certificate_matches_exact_solver

from synth import deep_backbone, mlp
from synth.grids import DatasetSpec, grid_names, load_grid


def assert_dataset_keeps_its_card(spec: DatasetSpec, dataset) -> None:
    card, arrays = dataset.card, dataset.arrays
    assert card["id"] == spec.id and card["kind"] == spec.kind
    assert card["n_samples"] == len(dataset.X) == len(dataset.y)
    if card["kind"] == "separable":
        assert_certificate_matches_exact_solver(dataset)
        assert np.linalg.norm(dataset.X, axis=1).max() == pytest.approx(
            card["radius_requested"], rel=1e-12)
        assert card["class_counts"] == np.bincount(dataset.y, minlength=card["n_classes"]).tolist()
        assert card["n_flipped"] == int(np.sum(dataset.y != arrays["y_clean"]))
    elif card["kind"] == "quadratic":
        w_star = np.linalg.lstsq(dataset.X, dataset.y, rcond=None)[0]
        assert card["D"] == pytest.approx(np.linalg.norm(arrays["w0"] - w_star), rel=1e-8)
        assert card["distance"] == pytest.approx(card["distance_requested"], rel=1e-12)
    elif card["kind"] == "deep_mlp":
        names = deep_backbone.backbone_param_names(card["architecture"])
        gap = np.concatenate([(arrays[f"teacher.{n}"] - arrays[f"w0.{n}"]).ravel() for n in names])
        assert np.linalg.norm(gap) == pytest.approx(card["distance"], rel=1e-12)
        # the null control moves as far as the target adaptation, in a random direction
        assert card["distance"] == pytest.approx(card["adaptation_distance"], rel=1e-12)
        if card["teacher"] == "target-adapted":
            # w0 + (adapted - w0) is the adapted backbone up to rounding of its entries
            assert card["teacher_distance_from_adapted"] <= 1e-12 * card["distance"]
        assert np.bincount(dataset.y).tolist() == [card["n_per_class"]] * card["n_classes"]
        assert arrays["target_pool"].shape == (card["target_pool"]["n_samples"], card["n_features"])
    else:
        names = mlp.backbone_param_names(card["architecture"])
        gap = np.concatenate([(arrays[f"teacher.{n}"] - arrays[f"w0.{n}"]).ravel()
                              for n in names])
        assert np.linalg.norm(gap) == pytest.approx(card["distance_requested"], rel=1e-12)
        counts = np.bincount(dataset.y, minlength=card["n_classes"])
        assert counts.max() - counts.min() <= 1


def test_shipped_grids():
    assert {"smoke", "default"} <= set(grid_names())


def test_every_smoke_entry_generates_and_keeps_its_card(isolated_cache):
    specs = load_grid("smoke")
    assert 10 <= len(specs) <= 18
    assert {spec.kind for spec in specs} == {"separable", "quadratic", "mlp", "deep_mlp"}
    # the instability slice: both teachers, two datasets each (a CI over datasets per family)
    teachers = [spec.params["teacher"] for spec in specs if spec.kind == "deep_mlp"]
    assert sorted(teachers) == ["random_direction"] * 2 + ["target_adapted"] * 2
    for spec in specs:
        assert_dataset_keeps_its_card(spec, spec.generate())


def test_default_grid_has_hundreds_of_distinct_ids_spanning_the_knobs(isolated_cache):
    specs = load_grid("default")
    assert len({spec.id for spec in specs}) == len(specs) >= 200
    separable = [s.params for s in specs if s.kind == "separable"]
    assert {p.get("n_classes", 2) for p in separable} >= {2, 3}
    assert {p.get("label_noise", 0.0) for p in separable} >= {0.0, 0.1}
    assert len({p["margin"] for p in separable}) >= 4
    assert len({s.params["distance"] for s in specs if s.kind == "mlp"}) >= 4
    sample = [s for s in specs if s.kind != "mlp"][::25] + [s for s in specs if s.kind == "mlp"][:1]
    for spec in sample:
        assert_dataset_keeps_its_card(spec, spec.generate())


def test_ids_are_stable_and_follow_every_parameter(tmp_path):
    grid = tmp_path / "g.toml"
    grid.write_text('[[block]]\ngenerator = "make_separable"\n'
                    'fixed = { n_samples = 20, n_features = 3 }\nvary = { margin = [0.1, 0.2] }\n')
    first, second = load_grid(str(grid)), load_grid(str(grid))
    assert [s.id for s in first] == [s.id for s in second]
    assert first[0].id != first[1].id
    # The derived seed is a function of the parameters: reloading gives the same data.
    np.testing.assert_array_equal(first[0].generate().X, second[0].generate().X)
    explicit = DatasetSpec("make_separable", {**first[0].params, "radius": 1.0})
    assert explicit.id == first[0].id  # defaults count as given


@pytest.mark.parametrize("text, key", [
    ("[[block]\n", "malformed TOML"),
    ('title = "x"\n[[block]]\ngenerator = "make_separable"\n', "'title'"),
    ('[[block]]\ngenerator = "make_separable"\nfixd = { margin = 0.1 }\n', "'fixd'"),
    ('[[block]]\ngenerator = "make_blobs"\n', "'generator'"),
    ('[[block]]\ngenerator = "make_separable"\nfixed = { margn = 0.1 }\n', "'margn'"),
    ('[[block]]\ngenerator = "make_separable"\nfixed = { margin = 0.1 }\nvary = { n_samples = [] }\n',
     "'vary.n_samples'"),
    ('[[block]]\ngenerator = "make_separable"\nfixed = { margin = 0.1 }\nvary = { margin = [0.2] }\n',
     "'margin'"),
    ('[[block]]\ngenerator = "make_separable"\nfixed = { margin = 0.1, random_state = 1 }\n'
     '[[block]]\ngenerator = "make_separable"\nfixed = { margin = 0.1, random_state = 1 }\n',
     "duplicate"),
    ('description = "empty"\n', "'block'"),
])
def test_bad_grid_files_give_one_line_errors_naming_the_key(tmp_path, text, key):
    grid = tmp_path / "bad.toml"
    grid.write_text(text)
    with pytest.raises(ValueError, match=key) as error:
        load_grid(str(grid))
    assert "\n" not in str(error.value)


def test_unknown_grid_name_lists_the_known_ones():
    with pytest.raises(ValueError, match="unknown grid 'huge'.*default.*smoke"):
        load_grid("huge")
