"""SURT: re-training on the target inputs moves the start toward the target-adapted backbone."""
import numpy as np
import pytest
import torch

from synth.mlp import build_model, init_pretraining_params, pretrain
from verify.seeding import run_seed
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


def test_surt_on_own_inputs_never_lets_s_without_i_see_x_i(shifted_task):
    model, w0, _, X, y = shifted_task
    masks = torch.ones(2, len(X), dtype=torch.float64)
    masks[1, 4] = 0
    moved = X.copy()
    moved[4] += 3.0
    prepared = [prepare_problem(model, w0, torch.as_tensor(inputs), torch.as_tensor(y), masks=masks,
                                seeds=np.array([5, 5]), stabilisers=(SURT(n_steps=20, inputs="own"),))
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


def test_shared_surt_starts_s_and_s_without_i_alike_from_the_target_pool(shifted_task):
    model, w0, _, X, y = shifted_task
    masks = torch.ones(3, len(X), dtype=torch.float64)
    masks[1, 4] = 0
    pool = np.random.default_rng(3).normal(size=(50, X.shape[1]))
    moved = X.copy()
    moved[4] += 3.0

    def start(labelled, unlabelled, **surt):
        problem = prepare_problem(model, w0, torch.as_tensor(labelled), torch.as_tensor(y),
                                  masks=masks, seeds=np.array([5, 5, 6]), unlabelled=unlabelled,
                                  stabilisers=(SURT(n_steps=20, **surt),))
        return problem.params["encoder.0.weight"]

    with_pool = start(X, pool)
    torch.testing.assert_close(with_pool[0], with_pool[1], rtol=0, atol=0)  # S and S\\i start alike
    assert not torch.allclose(with_pool[0], with_pool[2])  # other seed, other masks
    # the labelled inputs play no part when there is a pool; the pool does
    torch.testing.assert_close(start(moved, pool), with_pool, rtol=0, atol=0)
    assert not torch.allclose(start(X, pool + 1.0)[0], with_pool[0])
    # without a pool, the shared reading re-trains on the inputs of the full set S (x_i included)
    without_pool = start(X, None)
    torch.testing.assert_close(without_pool[0], without_pool[1], rtol=0, atol=0)
    assert not torch.allclose(start(moved, None)[1], without_pool[1])
    own = start(X, pool, inputs="own")
    assert not torch.allclose(own[0], own[1])  # own inputs: the starts differ by construction


def test_surt_continues_the_deep_backbone_objective():
    from synth.backbones import build_network
    from synth.deep_backbone import init_pretraining_params as init_deep
    from synth.deep_backbone import pretrain_deep

    architecture = {"family": "layernorm_tanh", "n_features": 5, "width": 6, "depth": 2}
    rng = np.random.default_rng(1)
    w0 = init_deep(architecture, rng)
    pool = rng.normal(size=(40, 5))
    X, y = rng.normal(size=(6, 5)), np.array([0, 1] * 3)
    model = build_network({**architecture, "n_classes": 2})
    problem = prepare_problem(model, w0, torch.as_tensor(X), torch.as_tensor(y),
                              masks=torch.ones(1, 6, dtype=torch.float64), seeds=np.array([2]),
                              unlabelled=pool, stabilisers=(SURT(n_steps=5),))
    generator = torch.Generator().manual_seed(run_seed(2, "prepare:surt"))
    expected = pretrain_deep(w0, pool, architecture=architecture, n_steps=5, lr=1e-2,
                             mask_rate=0.25,
                             random_state=int(torch.randint(2**32, (1,), generator=generator)))
    for name in ("encoder.0.weight", "encoder.1.weight", "encoder.5.bias"):
        np.testing.assert_array_equal(problem.params[name][0].numpy(), expected.params[name])
    with pytest.raises(ValueError, match="inputs"):
        SURT(inputs="pool")
