import numpy as np
import pytest
import torch

from synth import make_pretrained_mlp_task, mlp

SMALL = dict(n_samples=24, n_features=5, hidden=[6, 6], n_source=200, pretrain_steps=150,
             n_test=30)


@pytest.fixture
def task(isolated_cache):
    return make_pretrained_mlp_task(distance=0.8, n_classes=3, random_state=0, **SMALL)


def backbone(arrays, prefix, architecture):
    return np.concatenate([arrays[f"{prefix}.{name}"].ravel()
                           for name in mlp.backbone_param_names(architecture)])


def test_teacher_backbone_sits_at_exactly_delta(task):
    architecture = task.card["architecture"]
    gap = backbone(task.arrays, "teacher", architecture) - backbone(task.arrays, "w0", architecture)
    assert np.linalg.norm(gap) == pytest.approx(0.8, rel=1e-12)
    assert task.card["distance"] == pytest.approx(0.8, rel=1e-12)


def test_labels_are_the_teachers_predictions_with_balanced_classes(task):
    model = mlp.build_model(task.card["architecture"])
    state = {name.removeprefix("teacher."): torch.as_tensor(value)
             for name, value in task.arrays.items() if name.startswith("teacher.")}
    model.load_state_dict(state)  # strict: teacher.* covers exactly the model's parameters
    with torch.no_grad():
        for X, y in ((task.X, task.y), (task.X_test, task.y_test)):
            np.testing.assert_array_equal(model(torch.as_tensor(X)).argmax(1).numpy(), y)
    assert task.card["class_counts"] == [8, 8, 8]
    assert np.bincount(task.y_test).tolist() == [10, 10, 10]


def test_parameter_names_follow_the_contract(task):
    architecture = task.card["architecture"]
    names = mlp.backbone_param_names(architecture)
    assert names == ["encoder.0.weight", "encoder.0.bias", "encoder.2.weight", "encoder.2.bias"]
    assert set(mlp.build_model(architecture).state_dict()) == {*names, "head.weight", "head.bias"}
    assert {k for k in task.arrays if k.startswith("w0.")} == {
        *(f"w0.{n}" for n in names), "w0.decoder.weight", "w0.decoder.bias"}


def test_pretraining_really_reduced_the_reconstruction_loss(task):
    """Fresh source inputs and masks: the stored pre-trained encoder/decoder reconstruct hidden
    features far better than their initialisation and than predicting zero."""
    pretraining = task.card["pretraining"]
    assert pretraining["final_loss"] < 0.5 * pretraining["initial_loss"]
    architecture = {"n_features": 5, "hidden": [6, 6]}
    rng = np.random.default_rng(mlp.source_seed_sequence(pretraining["seed"]))
    mixing = mlp.source_mixing(5, pretraining["source"]["latent_dim"], rng)
    initial = mlp.init_pretraining_params(architecture, rng)
    inputs = torch.as_tensor(mlp.latent_factor_inputs(
        mixing, 2000, noise=0.1, rng=np.random.default_rng(99)))
    mask = torch.bernoulli(torch.full(inputs.shape, 0.25, dtype=torch.float64),
                           generator=torch.Generator().manual_seed(1))

    def loss(params):
        encoder = mlp.build_model({**architecture, "n_classes": 1}).encoder
        decoder = mlp.build_decoder(architecture)
        encoder.load_state_dict({k.removeprefix("encoder."): torch.as_tensor(v)
                                 for k, v in params.items() if k.startswith("encoder.")})
        decoder.load_state_dict({k.removeprefix("decoder."): torch.as_tensor(v)
                                 for k, v in params.items() if k.startswith("decoder.")})
        with torch.no_grad():
            return mlp.masked_reconstruction_loss(encoder, decoder, inputs, mask).item()

    trained = {k.removeprefix("w0."): v for k, v in task.arrays.items() if k.startswith("w0.")}
    predict_zero = ((inputs**2 * mask).sum() / mask.sum()).item()
    assert loss(trained) < 0.5 * loss(initial)
    assert loss(trained) < 0.5 * predict_zero


def test_cached_pretraining_is_reused_without_retraining(isolated_cache, monkeypatch):
    params = dict(SMALL, pretrain_seed=123)
    first = make_pretrained_mlp_task(distance=0.3, random_state=1, **params)
    key = first.card["pretraining"]["cache_key"]
    assert (isolated_cache / "pretrained" / f"{key}.npz").exists()

    def fail(*args, **kwargs):
        raise AssertionError("pre-training ran again instead of using the cache")

    monkeypatch.setattr(mlp, "pretrain", fail)
    second = make_pretrained_mlp_task(distance=0.3, random_state=1, **params)
    other_task = make_pretrained_mlp_task(distance=1.0, random_state=2, **params)
    assert second.card == first.card
    for name in first.arrays:
        np.testing.assert_array_equal(first.arrays[name], second.arrays[name])
    np.testing.assert_array_equal(first.X, second.X)
    np.testing.assert_array_equal(other_task.arrays["w0.encoder.0.weight"],
                                  first.arrays["w0.encoder.0.weight"])
    assert not np.array_equal(other_task.X, first.X)


def test_pretrain_continues_from_given_weights_on_new_inputs(task):
    """What SURT does: continue pre-training from w0 on target inputs lowers their loss."""
    architecture = task.card["architecture"]
    w0 = {k.removeprefix("w0."): v for k, v in task.arrays.items() if k.startswith("w0.")}
    tiny = mlp.pretrain(w0, task.X, architecture=architecture, n_steps=1, lr=1e-12,
                        random_state=0)
    for name, value in w0.items():
        np.testing.assert_allclose(tiny.params[name], value, atol=1e-9)
    longer = mlp.pretrain(w0, task.X, architecture=architecture, n_steps=200, lr=1e-2,
                          random_state=0)
    assert longer.final_loss < longer.initial_loss == pytest.approx(tiny.initial_loss)


@pytest.mark.parametrize("overrides, name", [
    ({"distance": -0.1}, "distance"),
    ({"n_classes": 1}, "n_classes"),
    ({"n_samples": 2, "n_classes": 3}, "n_samples"),
    ({"hidden": []}, "hidden"),
    ({"hidden": [4, 0]}, "hidden"),
    ({"latent_dim": 9}, "latent_dim"),
    ({"mask_rate": 1.0}, "mask_rate"),
    ({"pretrain_steps": 0}, "pretrain_steps"),
    ({"pretrain_lr": 0.0}, "pretrain_lr"),
    ({"domain_shift": -1.0}, "domain_shift"),
    ({"n_source": 1}, "n_source"),
    ({"pretrain_seed": -1}, "pretrain_seed"),
])
def test_invalid_parameter_raises_naming_it(overrides, name, isolated_cache):
    with pytest.raises(ValueError, match=name):
        make_pretrained_mlp_task(**{"n_features": 5, "distance": 0.5, **overrides})


CACHED = dict(SMALL, pretrain_seed=321, pretrain_steps=20)


def rebuilt_after(damage, cache, caplog):
    """Damage the cached entry, generate again: the task is identical and the entry rebuilt."""
    first = make_pretrained_mlp_task(distance=0.3, random_state=1, **CACHED)
    path = cache / "pretrained" / f"{first.card['pretraining']['cache_key']}.npz"
    damage(path)
    with caplog.at_level("WARNING", logger="synth.mlp"):
        again = make_pretrained_mlp_task(distance=0.3, random_state=1, **CACHED)
    warnings = [record.getMessage() for record in caplog.records if record.name == "synth.mlp"]
    assert len(warnings) == 1 and "\n" not in warnings[0]
    assert str(path) in warnings[0] and "rebuilding it" in warnings[0]
    assert again.card == first.card
    for name in first.arrays:
        np.testing.assert_array_equal(again.arrays[name], first.arrays[name])
    caplog.clear()
    with caplog.at_level("WARNING", logger="synth.mlp"):
        make_pretrained_mlp_task(distance=0.3, random_state=1, **CACHED)
    assert not caplog.records  # the rebuilt entry passes
    return warnings[0]


def test_a_truncated_cache_entry_is_rebuilt_with_a_warning(isolated_cache, caplog):
    def truncate(path):
        path.write_bytes(path.read_bytes()[:300])

    assert "not a readable" in rebuilt_after(truncate, isolated_cache, caplog)


def test_a_rewritten_cache_entry_with_a_valid_digest_is_rebuilt(isolated_cache, caplog):
    from synth.digest import array_digest

    def rewrite(path):
        with np.load(path) as stored:
            arrays = {key: stored[key] for key in stored.files}
        arrays["encoder.0.weight"] = arrays["encoder.0.weight"] * 1.01
        body = {k: v for k, v in arrays.items() if k not in ("spec", "digest")}
        np.savez(path, **{**arrays, "digest": np.str_(array_digest(body))})

    assert "recorded final loss" in rebuilt_after(rewrite, isolated_cache, caplog)


@pytest.mark.parametrize("kind", ["no_digest", "other_spec", "edited"])
def test_cache_entries_without_a_matching_record_are_rebuilt(isolated_cache, caplog, kind):
    def damage(path):
        with np.load(path) as stored:
            arrays = {key: stored[key] for key in stored.files}
        if kind == "no_digest":  # an entry from before digests
            arrays.pop("digest")
            arrays.pop("spec")
        elif kind == "other_spec":
            arrays["spec"] = np.str_(str(arrays["spec"]).replace('"n_steps":20', '"n_steps":21'))
        else:
            arrays["decoder.bias"] = arrays["decoder.bias"] + 1.0
        np.savez(path, **arrays)

    message = rebuilt_after(damage, isolated_cache, caplog)
    assert {"no_digest": "does not record", "other_spec": "does not record",
            "edited": "digest mismatch"}[kind] in message


def test_a_diverged_pre_training_is_refused(isolated_cache):
    with pytest.raises(ValueError, match="pretrain_lr.*did not reduce"):
        make_pretrained_mlp_task(distance=0.5, pretrain_lr=1e6, **SMALL)
