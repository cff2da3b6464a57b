"""The deep, normalised pre-trained backbone and its few-sample tasks: certificates, card, cache."""
import numpy as np
import pytest
import torch

from synth import deep_backbone
from synth.backbones import architecture_of, build_network
from synth.deep_tasks import make_deep_finetuning_task
from synth.io import load_dataset, save_dataset

SMALL = dict(n_per_class=3, n_features=6, depth=3, width=8, n_source=200, pretrain_steps=120,
             adapt_steps=40, n_teacher_pool=200, n_pool=30, n_test=20)


@pytest.fixture(scope="module")
def module_cache(pretraining_cache):
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("FTSTAB_CACHE", str(pretraining_cache))
        yield pretraining_cache


@pytest.fixture(scope="module")
def adapted(module_cache):
    return make_deep_finetuning_task(random_state=0, **SMALL)


@pytest.fixture(scope="module")
def null_control(module_cache):
    return make_deep_finetuning_task(teacher="random_direction", random_state=0, **SMALL)


def flat(arrays, prefix, architecture):
    return np.concatenate([arrays[f"{prefix}.{name}"].ravel()
                           for name in deep_backbone.backbone_param_names(architecture)])


def test_labels_are_the_teachers_argmax_with_balanced_classes(adapted):
    model = build_network(adapted.card["architecture"])
    model.load_state_dict({name.removeprefix("teacher."): torch.as_tensor(value)
                           for name, value in adapted.arrays.items()
                           if name.startswith("teacher.")}, strict=False)
    with torch.no_grad():
        for X, y in ((adapted.X, adapted.y), (adapted.X_test, adapted.y_test)):
            np.testing.assert_array_equal(model(torch.as_tensor(X)).argmax(1).numpy(), y)
    assert adapted.card["class_counts"] == [3, 3]
    assert np.bincount(adapted.y_test).tolist() == [10, 10]
    assert adapted.card["majority_accuracy"] == 0.5


def test_target_adapted_teacher_is_the_backbone_adapted_to_target_inputs(adapted):
    architecture = adapted.card["architecture"]
    w0 = {k.removeprefix("w0."): v for k, v in adapted.arrays.items() if k.startswith("w0.")}
    teacher = flat(adapted.arrays, "teacher", architecture)
    assert adapted.card["teacher"] == "target-adapted"
    assert adapted.card["teacher_distance_from_adapted"] == pytest.approx(0.0, abs=1e-12)
    gap = np.linalg.norm(teacher - flat(adapted.arrays, "w0", architecture))
    assert adapted.card["distance"] == pytest.approx(gap, rel=1e-12)
    assert adapted.card["distance"] == pytest.approx(adapted.card["adaptation_distance"], rel=1e-12)
    # continuing the self-supervised objective on fresh target inputs moves w0 toward the teacher
    more = deep_backbone.pretrain_deep(w0, adapted.arrays["target_pool"],
                                       architecture=architecture, n_steps=40, lr=1e-2,
                                       random_state=5).params
    moved = flat({f"x.{k}": v for k, v in more.items()}, "x", architecture) - flat(
        adapted.arrays, "w0", architecture)
    direction = teacher - flat(adapted.arrays, "w0", architecture)
    cosine = moved @ direction / np.linalg.norm(moved) / np.linalg.norm(direction)
    assert cosine > 0.5
    adaptation = adapted.card["teacher_adaptation"]
    assert adaptation["final_loss"] < adaptation["initial_loss"]


def test_null_control_teacher_is_as_far_in_a_random_direction(adapted, null_control):
    architecture = adapted.card["architecture"]
    w0 = flat(adapted.arrays, "w0", architecture)
    np.testing.assert_array_equal(w0, flat(null_control.arrays, "w0", architecture))
    assert null_control.card["teacher"] == "random-direction (null control)"
    assert null_control.card["distance"] == pytest.approx(adapted.card["adaptation_distance"],
                                                          rel=1e-9)
    control = flat(null_control.arrays, "teacher", architecture) - w0
    adapted_move = flat(adapted.arrays, "teacher", architecture) - w0
    cosine = control @ adapted_move / np.linalg.norm(control) / np.linalg.norm(adapted_move)
    assert abs(cosine) < 0.5  # a random direction in ~300 dimensions: |cos| ~ 0.06
    assert null_control.id != adapted.id


def test_extra_distance_moves_the_teacher_off_the_adapted_backbone(isolated_cache):
    task = make_deep_finetuning_task(distance=0.7, random_state=0, **SMALL)
    assert task.card["teacher_distance_from_adapted"] == pytest.approx(0.7, rel=1e-12)


def test_target_pool_card_and_array(adapted):
    pool = adapted.arrays["target_pool"]
    assert pool.shape == (30, 6) and np.isfinite(pool).all()
    assert adapted.card["target_pool"]["n_samples"] == 30
    assert "unlabelled" in adapted.card["target_pool"]["distribution"]
    assert not np.isin(pool, adapted.X).any()  # fresh draws, not the labelled inputs


def test_backbone_architecture_names_and_pretraining(adapted):
    architecture = adapted.card["architecture"]
    assert architecture == {"family": "layernorm_tanh", "n_features": 6, "width": 8, "depth": 3,
                            "n_classes": 2}
    model = build_network(architecture)
    assert architecture_of(model) == {k: v for k, v in architecture.items() if k != "n_classes"}
    assert sum(isinstance(m, torch.nn.LayerNorm) for m in model.encoder) == 3
    names = deep_backbone.backbone_param_names(architecture)
    assert set(model.state_dict()) == {*names, "head.weight", "head.bias"}
    pretraining = adapted.card["pretraining"]
    assert pretraining["final_loss"] < 0.8 * pretraining["initial_loss"]
    assert pretraining["final_loss"] < pretraining["baseline_loss"]


def test_cached_pretraining_is_reused_and_a_damaged_entry_rebuilt(isolated_cache, monkeypatch,
                                                                    caplog):
    params = dict(SMALL, pretrain_seed=77)
    first = make_deep_finetuning_task(random_state=1, **params)
    path = isolated_cache / "pretrained" / f"{first.card['pretraining']['cache_key']}.npz"
    assert path.exists()
    original = deep_backbone.pretrain_deep

    def only_adaptation(params, X, **kwargs):  # the source pre-training must not run again
        assert len(X) == SMALL["n_teacher_pool"], "pre-training ran again instead of the cache"
        return original(params, X, **kwargs)

    monkeypatch.setattr(deep_backbone, "pretrain_deep", only_adaptation)
    second = make_deep_finetuning_task(random_state=1, **params)
    for name in first.arrays:
        np.testing.assert_array_equal(first.arrays[name], second.arrays[name])
    monkeypatch.setattr(deep_backbone, "pretrain_deep", original)
    path.write_bytes(path.read_bytes()[:100])
    with caplog.at_level("WARNING", logger="synth.deep_backbone"):
        third = make_deep_finetuning_task(random_state=1, **params)
    assert any("not a readable" in record.getMessage() for record in caplog.records)
    np.testing.assert_array_equal(third.arrays["w0.encoder.0.weight"],
                                  first.arrays["w0.encoder.0.weight"])


def test_save_and_load_round_trip(adapted, tmp_path):
    save_dataset(adapted, tmp_path)
    loaded = load_dataset(adapted.id, tmp_path)
    assert loaded.card["kind"] == "deep_mlp"
    np.testing.assert_array_equal(loaded.arrays["target_pool"], adapted.arrays["target_pool"])


@pytest.mark.parametrize("overrides, name", [
    ({"n_per_class": 0}, "n_per_class"), ({"depth": 0}, "depth"), ({"depth": 13}, "depth"),
    ({"width": 1}, "width"), ({"teacher": "random"}, "teacher"), ({"distance": -1.0}, "distance"),
    ({"adapt_steps": 0}, "adapt_steps"), ({"n_pool": 0}, "n_pool"),
    ({"latent_dim": 7}, "latent_dim"), ({"mask_rate": 0.0}, "mask_rate"),
    ({"n_test": 1}, "n_test"), ({"n_teacher_pool": 1}, "n_teacher_pool")])
def test_invalid_parameter_raises_naming_it(overrides, name, isolated_cache):
    with pytest.raises(ValueError, match=name):
        make_deep_finetuning_task(**{**SMALL, **overrides})


def test_instability_grid_spans_its_knobs():
    from synth.grids import grid_names, load_grid
    assert "instability" in grid_names()
    specs = load_grid("instability")
    assert len(specs) >= 48 and len({spec.id for spec in specs}) == len(specs)
    assert {spec.kind for spec in specs} == {"deep_mlp"}
    assert {spec.params["depth"] for spec in specs} == {2, 6, 8}
    assert {spec.params["n_per_class"] for spec in specs} == {4, 16, 64}
    assert {spec.params["teacher"] for spec in specs} == {"target_adapted", "random_direction"}
