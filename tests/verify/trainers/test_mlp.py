"""The batched MLP fine-tuning trainer: equal to the per-model loop, masks, coupling, divergence."""
import numpy as np
import pytest
import torch

from synth.dropout import DropoutSite
from synth.mlp import build_model, init_pretraining_params
from verify.stabilisers import LNSR, MHLoss, Mixout, Stabiliser, WeightDecay
from verify.trainers import naive_mlp
from verify.effects import Effects, Penalty
from verify.run.network import FlatNetwork
from verify.run.train import mlp_objective
from verify.trainers.mlp import flat_weights, predict_logits, train_mlp
from verify.optimiser_spec import OptimiserSpec

ARCHITECTURE = {"n_features": 3, "hidden": [4, 4], "n_classes": 2}
N = 6


@pytest.fixture(scope="module")
def task():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(N, 3))
    y = np.array([0, 1, 0, 1, 1, 0])
    pretrained = init_pretraining_params(ARCHITECTURE, rng)
    return build_model(ARCHITECTURE), pretrained, X, y


def loo_layout(n, seeds, left_out=(0, 3)):
    """Masks and seeds for the full set plus the given left-out sets, for every seed."""
    masks = np.ones((1 + len(left_out), n))
    for row, i in enumerate(left_out, start=1):
        masks[row, i] = 0
    return np.tile(masks, (len(seeds), 1)), np.repeat(seeds, 1 + len(left_out))


def assert_traces_close(a, b, tol=1e-10):
    assert a.weights.keys() == b.weights.keys()
    for name in a.weights:
        np.testing.assert_allclose(a.weights[name], b.weights[name], rtol=0, atol=tol)
    np.testing.assert_allclose(a.train_loss, b.train_loss, rtol=0, atol=tol)
    np.testing.assert_array_equal(a.diverged_at, b.diverged_at)


@pytest.mark.parametrize("batch_size", [None, 2])
@pytest.mark.parametrize("stabilisers", [(), (Mixout(p=0.3), WeightDecay(strength=0.1)),
                                         (MHLoss(n_heads=3, reduction="sum"), LNSR(noise=0.2))],
                         ids=["plain", "mixout+wd", "mhloss+lnsr"])
def test_batched_equals_naive_loop(task, batch_size, stabilisers):
    model, pretrained, X, y = task
    masks, seeds = loo_layout(N, [3, 8])
    kwargs = dict(masks=masks, seeds=seeds, lr=0.5, n_steps=6, checkpoints=[0, 2, 6],
                  batch_size=batch_size, stabilisers=stabilisers)
    batched = train_mlp(model, pretrained, X, y, **kwargs)
    assert_traces_close(batched, naive_mlp.train_mlp(model, pretrained, X, y, **kwargs))
    assert np.all(np.diff(batched.train_loss[:, 0]) < 0) or batch_size is not None


def test_start_encoder_at_w0_heads_from_the_seed(task):
    model, pretrained, X, y = task
    masks, seeds = loo_layout(N, [1, 2])
    trace = train_mlp(model, pretrained, X, y, masks=masks, seeds=seeds, lr=0.1, n_steps=1,
                      checkpoints=[0])
    for name in ("encoder.0.weight", "encoder.2.bias"):
        np.testing.assert_array_equal(trace.weights[name][0], np.broadcast_to(
            pretrained[name], trace.weights[name][0].shape))
    heads = trace.weights["head.weight"][0]
    np.testing.assert_array_equal(heads[0], heads[2])  # same seed, different training sets
    assert not np.allclose(heads[0], heads[3])  # other seed
    assert np.abs(heads).max() <= 1 / np.sqrt(4)


def test_masked_sample_does_not_affect_the_model_without_it(task):
    model, pretrained, X, y = task
    masks, seeds = loo_layout(N, [5], left_out=(2,))
    kwargs = dict(masks=masks, seeds=seeds, lr=0.5, n_steps=4, checkpoints=[4])
    moved = X.copy()
    moved[2] += 1.0
    a = train_mlp(model, pretrained, X, y, **kwargs)
    b = train_mlp(model, pretrained, moved, y, **kwargs)
    for name in a.weights:
        np.testing.assert_array_equal(a.weights[name][:, 1], b.weights[name][:, 1])
    assert np.abs(a.weights["head.weight"][:, 0] - b.weights["head.weight"][:, 0]).max() > 1e-3


def test_sgd_with_the_whole_set_as_batch_is_gd(task):
    model, pretrained, X, y = task
    masks, seeds = loo_layout(N, [4])
    kwargs = dict(masks=masks, seeds=seeds, lr=0.5, n_steps=5, checkpoints=[5])
    gd = train_mlp(model, pretrained, X, y, **kwargs)
    sgd = train_mlp(model, pretrained, X, y, batch_size=N, **kwargs)
    assert_traces_close(gd, sgd, tol=1e-12)


def test_same_seeds_bitwise_identical_other_seeds_differ(task):
    model, pretrained, X, y = task
    masks, seeds = loo_layout(N, [6, 7])
    kwargs = dict(masks=masks, lr=0.5, n_steps=3, checkpoints=[3], batch_size=2,
                  stabilisers=(Mixout(p=0.2),))
    a = train_mlp(model, pretrained, X, y, seeds=seeds, **kwargs)
    b = train_mlp(model, pretrained, X, y, seeds=seeds, **kwargs)
    c = train_mlp(model, pretrained, X, y, seeds=seeds + 100, **kwargs)
    for name in a.weights:
        assert np.array_equal(a.weights[name], b.weights[name])
        assert not np.allclose(a.weights[name], c.weights[name])


def test_divergence_detected_recorded_and_never_averaged_in(task):
    model, pretrained, X, y = task
    masks, seeds = loo_layout(N, [0])
    kwargs = dict(masks=masks, seeds=seeds, loss="exponential", n_steps=8, checkpoints=[0, 8])
    exploding = train_mlp(model, pretrained, X, y, lr=1e4, **kwargs)
    assert (exploding.diverged_at > 0).all()
    assert np.isnan(exploding.train_loss[-1]).all()
    assert np.isnan(exploding.weights["head.bias"][-1]).all()
    assert np.isfinite(exploding.train_loss[0]).all()
    np.testing.assert_array_equal(
        exploding.diverged_at, naive_mlp.train_mlp(model, pretrained, X, y, lr=1e4, **kwargs).diverged_at)
    calm = train_mlp(model, pretrained, X, y, lr=0.1, **kwargs)
    assert (calm.diverged_at == -1).all() and np.isfinite(calm.train_loss).all()


def test_objective_matches_the_trainers_loss_and_penalty(task):
    model, pretrained, X, y = task
    trace = train_mlp(model, pretrained, X, y, masks=np.ones((1, N)), seeds=[0], lr=0.3,
                      n_steps=3, checkpoints=[3])
    w = torch.as_tensor(flat_weights(trace.weights, model)[-1, 0])
    ones = torch.ones(N, dtype=torch.float64)
    network = FlatNetwork.of(model, "softmax")
    w0 = {name: value[-1, 0] for name, value in trace.weights.items()}

    def objective(X, y, effects=Effects()):
        return mlp_objective(network, X, y, w0, effects)

    assert float(objective(X, y)(w, ones)) == pytest.approx(trace.train_loss[-1, 0], abs=1e-12)
    w0["encoder.0.bias"] = w0["encoder.0.bias"] + 1.0  # four entries, each 1 away
    w0["head.bias"] = w0["head.bias"] + 1.0  # the head is not anchored by default
    with_l2sp = objective(X, y, Effects(l2sp=Penalty(0.5, ("encoder",))))(w, ones)
    expected = trace.train_loss[-1, 0] + 0.5 * 0.5 * 4 * 1.0 ** 2
    assert float(with_l2sp) == pytest.approx(expected, abs=1e-12)
    weights = torch.zeros(N, dtype=torch.float64)
    weights[:2] = 1
    partial = objective(X[:2], y[:2])(w, torch.ones(2, dtype=torch.float64))
    assert float(objective(X, y)(w, weights)) == pytest.approx(float(partial), abs=1e-14)


def test_prediction_is_the_mean_logit_over_heads(task):
    model, pretrained, X, y = task
    trace = train_mlp(model, pretrained, X, y, masks=np.ones((2, N)), seeds=[0, 1], lr=0.3,
                      n_steps=2, checkpoints=[2], stabilisers=(MHLoss(n_heads=3),))
    weights = {name: value[-1] for name, value in trace.weights.items()}
    assert weights["head.weight"].shape == (2, 3, 2, 4)
    logits = predict_logits(model, weights, X)
    single = predict_logits(model, {**weights, "head.weight": weights["head.weight"].mean(1),
                                    "head.bias": weights["head.bias"].mean(1)}, X)
    np.testing.assert_allclose(logits, single, atol=1e-12)


class HeadOnly(Stabiliser):
    name = "head_only"
    applies_to = frozenset({"head"})


@pytest.mark.parametrize("change, message", [
    (dict(loss="hinge"), "loss"), (dict(lr=0.0), "lr"), (dict(n_steps=-1), "n_steps"),
    (dict(checkpoints=[3, 2]), "checkpoints"), (dict(batch_size=N + 1), "batch_size"),
    (dict(masks=np.zeros((1, N))), "masks"), (dict(seeds=[0, 1]), "seeds"),
    (dict(stabilisers=(HeadOnly(),)), "stabilisers")])
def test_bad_input_is_a_clear_error(task, change, message):
    model, pretrained, X, y = task
    kwargs = dict(masks=np.ones((1, N)), seeds=[0], lr=0.1, n_steps=3, checkpoints=[3])
    with pytest.raises(ValueError, match=message):
        train_mlp(model, pretrained, X, y, **{**kwargs, **change})
    with pytest.raises(ValueError, match="labels"):
        train_mlp(model, pretrained, X, np.arange(N), **kwargs)
    with pytest.raises(ValueError, match="init_params"):
        train_mlp(model, {"encoder.0.weight": pretrained["encoder.0.weight"]}, X, y, **kwargs)


class DropoutNet(torch.nn.Module):
    """A normalised encoder with two dropout sites, the shape of the deep synthetic backbones."""

    def __init__(self):
        super().__init__()
        nn = torch.nn
        self.encoder = nn.Sequential(nn.Linear(3, 4, dtype=torch.float64),
                                     nn.LayerNorm(4, dtype=torch.float64), nn.Tanh(),
                                     DropoutSite(4), nn.Linear(4, 4, dtype=torch.float64),
                                     nn.Tanh(), DropoutSite(4))
        self.head = nn.Linear(4, 2, dtype=torch.float64)


@pytest.fixture(scope="module")
def dropout_task(task):
    _, _, X, y = task
    torch.manual_seed(3)
    model = DropoutNet()
    encoder = {name: value.detach().numpy().copy() for name, value in model.named_parameters()
               if name.startswith("encoder.")}
    return model, encoder, X, y


OPTIMISERS = [OptimiserSpec(name="momentum", momentum=0.9),
              OptimiserSpec(name="adamw", weight_decay=0.01, warmup_steps=2, decay="linear"),
              OptimiserSpec(name="adamw", bias_correction=False),
              OptimiserSpec(name="sgd", warmup_steps=1, decay="linear")]


@pytest.mark.parametrize("batch_size", [None, 2])
@pytest.mark.parametrize("optimiser", OPTIMISERS,
                         ids=["momentum", "adamw-warmup-decay", "adamw-no-bias-corr", "sgd-sched"])
@pytest.mark.parametrize("dropout", [0.0, 0.3])
def test_batched_equals_naive_for_each_optimiser_and_dropout(dropout_task, batch_size, optimiser,
                                                             dropout):
    model, encoder, X, y = dropout_task
    masks, seeds = loo_layout(N, [3, 8])
    kwargs = dict(masks=masks, seeds=seeds, lr=0.05, n_steps=6, checkpoints=[0, 3, 6],
                  batch_size=batch_size, optimiser=optimiser, dropout=dropout,
                  stabilisers=(Mixout(p=0.2),) if dropout else ())
    batched = train_mlp(model, encoder, X, y, **kwargs)
    assert_traces_close(batched, naive_mlp.train_mlp(model, encoder, X, y, **kwargs))
    plain = train_mlp(model, encoder, X, y, **{**kwargs, "optimiser": OptimiserSpec()})
    assert not np.allclose(batched.weights["encoder.0.weight"][-1],
                           plain.weights["encoder.0.weight"][-1])


def test_dropout_changes_training_is_shared_within_a_seed_and_off_in_evaluation(dropout_task):
    model, encoder, X, y = dropout_task
    masks = np.ones((3, N))
    kwargs = dict(masks=masks, seeds=[5, 5, 6], lr=0.3, n_steps=4, checkpoints=[0, 4])
    with_dropout = train_mlp(model, encoder, X, y, dropout=0.5, **kwargs)
    without = train_mlp(model, encoder, X, y, **kwargs)
    np.testing.assert_array_equal(with_dropout.train_loss[0], without.train_loss[0])
    w = with_dropout.weights["encoder.4.weight"][-1]
    np.testing.assert_array_equal(w[0], w[1])  # same seed: same masks
    assert not np.allclose(w[0], w[2])
    assert not np.allclose(w[0], without.weights["encoder.4.weight"][-1][0])
    # the recorded training loss is the eval-mode loss of the recorded weights
    final = {name: value[-1] for name, value in with_dropout.weights.items()}
    logits = predict_logits(model, final, X)
    eval_loss = -np.log(np.exp(logits[0, np.arange(N), y]) / np.exp(logits[0]).sum(-1)).mean()
    assert with_dropout.train_loss[-1, 0] == pytest.approx(eval_loss, abs=1e-12)


def test_plain_optimiser_is_bitwise_the_gradient_step(task):
    model, pretrained, X, y = task
    masks, seeds = loo_layout(N, [2])
    kwargs = dict(masks=masks, seeds=seeds, lr=0.5, n_steps=3, checkpoints=[3], batch_size=3)
    a = train_mlp(model, pretrained, X, y, **kwargs)
    b = train_mlp(model, pretrained, X, y, optimiser=OptimiserSpec(name="momentum", momentum=0.0),
                  **kwargs)
    for name in a.weights:
        np.testing.assert_array_equal(a.weights[name], b.weights[name])


@pytest.mark.parametrize("kwargs, match", [
    ({"dropout": 0.2}, "DropoutSite"), ({"dropout": 1.0}, "dropout"),
    ({"optimiser": "adamw"}, "optimiser"),
    ({"optimiser": OptimiserSpec(warmup_steps=9)}, "warmup_steps")])
def test_invalid_optimiser_or_dropout(task, kwargs, match):
    model, pretrained, X, y = task
    with pytest.raises(ValueError, match=match):
        train_mlp(model, pretrained, X, y, masks=np.ones((1, N)), seeds=[0], lr=0.1, n_steps=3,
                  checkpoints=[3], **kwargs)
