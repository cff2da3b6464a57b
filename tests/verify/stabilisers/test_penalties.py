"""L2-SP raises mu and pulls toward w0; weight decay pulls toward 0; LNSR lowers noise sensitivity."""
import numpy as np
import pytest
import torch
from torch.func import functional_call

from verify.stabilisers import L2SP, LNSR, WeightDecay
from verify.effects import Effects
from verify.run.network import FlatNetwork
from verify.run.train import mlp_objective
from verify.trainers.mlp import flat_weights, train_mlp


def one_step(task, stabilisers):
    model, pretrained, X, y = task
    trace = train_mlp(model, pretrained, X, y, masks=np.ones((1, len(X))), seeds=[0], lr=0.1,
                      n_steps=1, checkpoints=[0, 1], stabilisers=stabilisers)
    return {name: value[:, 0] for name, value in trace.weights.items()}


def test_weight_decay_step_shrinks_toward_zero_l2sp_toward_w0(tiny_task):
    plain = one_step(tiny_task, ())
    decayed = one_step(tiny_task, (WeightDecay(strength=0.5),))
    anchored = one_step(tiny_task, (L2SP(strength=0.5),))
    pretrained = tiny_task[1]
    for name, (start, end) in plain.items():
        np.testing.assert_allclose(decayed[name][1] - end, -0.1 * 0.5 * start, atol=1e-12)
        # one step from w0: the L2-SP gradient is zero there, so it only acts from step two on
        np.testing.assert_allclose(anchored[name][1], end, atol=1e-12)
        if name.startswith("encoder."):
            np.testing.assert_array_equal(start, pretrained[name])


def test_l2sp_keeps_the_encoder_near_w0_and_leaves_the_head_alone(tiny_task):
    model, pretrained, X, y = tiny_task
    kwargs = dict(masks=np.ones((2, len(X))), seeds=[0, 1], lr=0.5, n_steps=40, checkpoints=[40])
    distance, head_norm = {}, {}
    for label, stabilisers in (("plain", ()), ("l2sp", (L2SP(strength=1.0),)),
                               ("wd", (WeightDecay(strength=1.0, groups=["head"]),))):
        trace = train_mlp(model, pretrained, X, y, stabilisers=stabilisers, **kwargs)
        distance[label] = sum(np.linalg.norm((trace.weights[name][-1] - pretrained[name]).reshape(2, -1),
                                             axis=1) ** 2 for name in pretrained if name in trace.weights)
        head_norm[label] = np.linalg.norm(trace.weights["head.weight"][-1].reshape(2, -1), axis=1)
    assert (distance["l2sp"] < 0.5 * distance["plain"]).all()
    assert (head_norm["wd"] < head_norm["plain"]).all()


def smallest_hessian_eigenvalue(model, X, y, w, w0=None, effects=Effects()):
    network = FlatNetwork.of(model, "softmax")
    start = {name: np.zeros(shape) for name, shape in zip(network.names, network.shapes, strict=True)}
    start.update(w0 or {})
    objective = mlp_objective(network, X, y, start, effects)
    hessian = torch.autograd.functional.hessian(lambda v: objective(v, torch.ones(len(X))), w)
    return np.linalg.eigvalsh(hessian.numpy())


def test_l2sp_raises_mu_of_the_objective(tiny_task):
    model, pretrained, X, y = tiny_task
    trace = train_mlp(model, pretrained, X, y, masks=np.ones((1, len(X))), seeds=[0], lr=0.3,
                      n_steps=5, checkpoints=[5])
    w = torch.as_tensor(flat_weights(trace.weights, model)[-1, 0])
    plain = smallest_hessian_eigenvalue(model, X, y, w)
    encoder_only = smallest_hessian_eigenvalue(model, X, y, w, w0=pretrained,
                                               effects=L2SP(strength=0.2).effects())
    everything = smallest_hessian_eigenvalue(model, X, y, w, w0=pretrained,
                                             effects=L2SP(strength=0.2, include_head=True).effects())
    assert plain[0] < 0.2 and encoder_only[0] > plain[0] + 1e-6
    np.testing.assert_allclose(everything, plain + 0.2, atol=1e-9)  # H + lambda I
    assert np.all(encoder_only >= plain - 1e-9) and np.all(encoder_only <= plain + 0.2 + 1e-9)


def test_lnsr_penalty_is_the_mean_squared_feature_response(tiny_task):
    model, pretrained, X, y = tiny_task
    lnsr = LNSR(strength=2.0, noise=0.3)
    from verify.trainers.mlp import prepare_problem
    problem = prepare_problem(model, pretrained, torch.as_tensor(X), torch.as_tensor(y),
                              masks=torch.ones(1, len(X), dtype=torch.float64), seeds=np.array([0]))
    noise = lnsr.draw(problem, len(X), torch.Generator().manual_seed(0))
    encoder = {name.split(".", 1)[1]: torch.as_tensor(value) for name, value in pretrained.items()
               if name.startswith("encoder.")}
    inputs = torch.as_tensor(X)
    clean = functional_call(model.encoder, encoder, (inputs,))
    noisy = functional_call(model.encoder, encoder, (inputs + 0.3 * noise["epsilon"],))
    expected = 2.0 * ((noisy - clean) ** 2).sum(1).mean()
    from verify.stabilisers.base import StepContext
    from verify.trainers.mlp import NetworkFunctions
    network = NetworkFunctions(model, problem.groups)
    params = {name: value[0] for name, value in problem.params.items()}
    ctx = StepContext(x=inputs, y=torch.as_tensor(y), weights=torch.full((len(X),), 1 / len(X),
                      dtype=torch.float64), reference=problem.reference, layers=problem.layers,
                      groups=problem.groups, encode=network.encode, forward_params=params,
                      features=clean, noise=noise)
    assert float(lnsr.penalty(params, ctx)) == pytest.approx(float(expected), rel=1e-12)


def test_lnsr_training_lowers_the_noise_sensitivity_of_the_features(tiny_task):
    model, pretrained, X, y = tiny_task
    kwargs = dict(masks=np.ones((2, len(X))), seeds=[0, 1], lr=0.5, n_steps=40, checkpoints=[40])
    inputs = torch.as_tensor(X)
    probe = 0.1 * torch.randn((50, *X.shape), generator=torch.Generator().manual_seed(7),
                              dtype=torch.float64)
    sensitivity = {}
    for label, stabilisers in (("plain", ()), ("lnsr", (LNSR(strength=5.0, noise=0.1),))):
        trace = train_mlp(model, pretrained, X, y, stabilisers=stabilisers, **kwargs)
        sensitivity[label] = []
        for m in range(2):
            encoder = {name.split(".", 1)[1]: torch.as_tensor(value[-1, m])
                       for name, value in trace.weights.items() if name.startswith("encoder.")}
            clean = functional_call(model.encoder, encoder, (inputs,))
            noisy = functional_call(model.encoder, encoder, (inputs + probe,))
            sensitivity[label].append(float(((noisy - clean) ** 2).sum(-1).mean()))
    assert max(sensitivity["lnsr"]) < min(sensitivity["plain"])
