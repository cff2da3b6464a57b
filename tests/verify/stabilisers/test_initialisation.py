"""Stabilisers that change the start: MHLoss heads, re-initialised top layers, SURT."""
import numpy as np
import pytest
import torch

from verify.stabilisers import MHLoss, ReinitTop
from verify.trainers.mlp import prepare_problem, train_mlp


def problem(task, seeds, stabilisers, masks=None, X=None):
    model, pretrained, X0, y = task
    X = X0 if X is None else X
    masks = torch.ones(len(seeds), len(X), dtype=torch.float64) if masks is None else masks
    return prepare_problem(model, pretrained, torch.as_tensor(X), torch.as_tensor(y), masks=masks,
                           seeds=np.asarray(seeds), stabilisers=stabilisers)


def test_reinit_top_changes_exactly_the_selected_layers(tiny_task):
    pretrained = tiny_task[1]
    fresh = problem(tiny_task, [0, 0, 1], (ReinitTop(n_layers=1),))
    for name in ("encoder.0.weight", "encoder.0.bias"):
        np.testing.assert_array_equal(fresh.params[name].numpy(),
                                      np.broadcast_to(pretrained[name], fresh.params[name].shape))
    for name in ("encoder.2.weight", "encoder.2.bias"):
        values = fresh.params[name].numpy()
        assert not np.isclose(values, pretrained[name]).any()
        np.testing.assert_array_equal(values[0], values[1])  # same seed, same draw
        assert not np.allclose(values[0], values[2])
        assert np.abs(values).max() <= 1 / np.sqrt(4)  # fan-in 4
    both = problem(tiny_task, [0], (ReinitTop(n_layers=2),))
    assert not np.isclose(both.params["encoder.0.weight"].numpy(), pretrained["encoder.0.weight"]).any()


def test_mhloss_head_zero_is_the_plain_head_and_heads_are_independent(tiny_task):
    plain = problem(tiny_task, [3, 4], ())
    multi = problem(tiny_task, [3, 4], (MHLoss(n_heads=5),))
    assert multi.n_heads == 5 and multi.params["head.weight"].shape == (2, 5, 2, 4)
    torch.testing.assert_close(multi.params["head.weight"][:, 0], plain.params["head.weight"][:, 0],
                               rtol=0, atol=0)
    heads = multi.params["head.weight"][0].reshape(5, -1)
    assert torch.linalg.matrix_rank(heads) == 5


def test_mhloss_reduces_the_seed_variance_of_the_head_direction(tiny_task):
    model, pretrained, X, y = tiny_task
    seeds = np.arange(12)

    def direction_variance(stabilisers, lr):
        trace = train_mlp(model, pretrained, X, y, stabilisers=stabilisers, lr=lr, n_steps=5,
                          checkpoints=[5], masks=np.ones((len(seeds), len(X))), seeds=seeds)
        weights = trace.weights["head.weight"][-1]
        mean_head = (weights.mean(1) if weights.ndim == 4 else weights).reshape(len(seeds), -1)
        directions = mean_head / np.linalg.norm(mean_head, axis=1, keepdims=True)
        return ((directions - directions.mean(0)) ** 2).sum(1).mean()

    single = direction_variance((), 0.5)
    summed = direction_variance((MHLoss(n_heads=8, reduction="sum"),), 0.5)
    assert summed < 0.75 * single
    # a mean over H heads at H times the learning rate is the same algorithm
    assert direction_variance((MHLoss(n_heads=8, reduction="mean"),), 0.5 * 8) == pytest.approx(summed)
    # at the same learning rate the mean slows every head down H-fold: no reduction early on
    assert direction_variance((MHLoss(n_heads=8, reduction="mean"),), 0.5) > single


def test_reinit_top_of_a_normalised_backbone_redraws_the_top_block_and_resets_its_norm():
    from synth.deep_backbone import build_deep_model, init_pretraining_params
    architecture = {"family": "layernorm_tanh", "n_features": 3, "width": 5, "depth": 3,
                    "n_classes": 2}
    rng = np.random.default_rng(2)
    pretrained = {name: value + rng.normal(scale=0.3, size=value.shape)  # norms away from 1, 0
                  for name, value in init_pretraining_params(architecture, rng).items()}
    X = rng.normal(size=(6, 3))
    task = (build_deep_model(architecture), pretrained, X, (X[:, 0] > 0).astype(np.int64))
    fresh = problem(task, [0, 0, 1], (ReinitTop(n_layers=1),))
    for name in ("encoder.0.weight", "encoder.1.weight", "encoder.4.weight", "encoder.5.bias"):
        np.testing.assert_array_equal(fresh.params[name].numpy(),
                                      np.broadcast_to(pretrained[name], fresh.params[name].shape))
    top = fresh.params["encoder.8.weight"].numpy()  # the top block's Linear: a fresh draw
    assert not np.isclose(top, pretrained["encoder.8.weight"]).any()
    np.testing.assert_array_equal(top[0], top[1])
    assert not np.allclose(top[0], top[2]) and np.abs(top).max() <= 1 / np.sqrt(5)
    np.testing.assert_array_equal(fresh.params["encoder.9.weight"].numpy(), np.ones((3, 5)))
    np.testing.assert_array_equal(fresh.params["encoder.9.bias"].numpy(), np.zeros((3, 5)))
    two = problem(task, [0], (ReinitTop(n_layers=2),))
    assert not np.isclose(two.params["encoder.4.weight"].numpy(), pretrained["encoder.4.weight"]).any()
    np.testing.assert_array_equal(two.params["encoder.5.weight"].numpy(), np.ones((1, 5)))
    np.testing.assert_array_equal(two.params["encoder.0.weight"].numpy()[0], pretrained["encoder.0.weight"])
    with pytest.raises(ValueError, match="n_layers must be an int in \\[1, 3\\]"):
        problem(task, [0], (ReinitTop(n_layers=4),))
