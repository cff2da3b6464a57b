"""SURT: re-training on the target inputs moves the start toward the target-adapted backbone."""
import numpy as np
import pytest
import torch

from synth.mlp import build_model, init_pretraining_params, pretrain
from verify.stabilisers import SURT
from verify.trainers.mlp import prepare_problem, train_mlp

ARCHITECTURE = {"n_features": 6, "hidden": [8], "n_classes": 2}
ENCODER = ("encoder.0.weight", "encoder.0.bias")


@pytest.fixture(scope="module")
def shifted_task():
    """Backbone pre-trained on a source distribution; target inputs from another mixing.

    The target's labels come from a random head on the features of the backbone re-trained on the
    target inputs (w_target), so fine-tuning must move the encoder toward w_target."""
    rng = np.random.default_rng(0)
    source_mixing, target_mixing = rng.normal(size=(2, 2, 6))
    source = rng.normal(size=(300, 2)) @ source_mixing + 0.1 * rng.normal(size=(300, 6))
    target = rng.normal(size=(40, 2)) @ target_mixing + 0.1 * rng.normal(size=(40, 6))
    w0 = pretrain(init_pretraining_params(ARCHITECTURE, rng), source, architecture=ARCHITECTURE,
                  n_steps=200, random_state=1).params
    w_target = pretrain(w0, target, architecture=ARCHITECTURE, n_steps=300, random_state=2).params
    features = np.tanh(target @ w_target["encoder.0.weight"].T + w_target["encoder.0.bias"])
    score = features @ rng.normal(size=8)
    y = (score > np.median(score)).astype(np.int64)
    return build_model(ARCHITECTURE), w0, w_target, target, y


def encoder_distance(weights, reference):
    return np.sqrt(sum(((weights[name] - reference[name]) ** 2).reshape(len(weights[name]), -1).sum(1)
                       for name in ENCODER))


def test_surt_reduces_the_distance_to_the_target_optimum(shifted_task):
    model, w0, w_target, X, y = shifted_task
    kwargs = dict(masks=np.ones((3, len(X))), seeds=[0, 1, 2], lr=0.5, n_steps=100,
                  checkpoints=[0, 100])
    plain = train_mlp(model, w0, X, y, **kwargs)
    surt = train_mlp(model, w0, X, y, stabilisers=(SURT(n_steps=150),), **kwargs)
    start = {label: encoder_distance({n: t.weights[n][0] for n in ENCODER}, w_target)
             for label, t in (("plain", plain), ("surt", surt))}
    end = {label: encoder_distance({n: t.weights[n][-1] for n in ENCODER}, w_target)
           for label, t in (("plain", plain), ("surt", surt))}
    assert start["surt"].max() < 0.6 * start["plain"].min()
    assert end["surt"].max() < end["plain"].min()


def test_surt_on_s_without_i_never_sees_x_i(shifted_task):
    model, w0, _, X, y = shifted_task
    masks = torch.ones(2, len(X), dtype=torch.float64)
    masks[1, 4] = 0
    moved = X.copy()
    moved[4] += 3.0
    prepared = [prepare_problem(model, w0, torch.as_tensor(inputs), torch.as_tensor(y), masks=masks,
                                seeds=np.array([5, 5]), stabilisers=(SURT(n_steps=20),))
                for inputs in (X, moved)]
    for name in ENCODER:
        torch.testing.assert_close(prepared[0].params[name][1], prepared[1].params[name][1],
                                   rtol=0, atol=0)
        assert not torch.allclose(prepared[0].params[name][0], prepared[1].params[name][0])


def test_surt_needs_the_pretraining_decoder(shifted_task):
    model, w0, _, X, y = shifted_task
    encoder_only = {name: w0[name] for name in ENCODER}
    with pytest.raises(ValueError, match="decoder"):
        train_mlp(model, encoder_only, X, y, masks=np.ones((1, len(X))), seeds=[0], lr=0.1,
                  n_steps=1, checkpoints=[1], stabilisers=(SURT(n_steps=2),))
