"""Optimisers: torch.optim's own implementations, hand-computed steps, schedule, vmap = loop."""
import math

import numpy as np
import pytest
import torch
from torch import nn
from torch.func import vmap

from verify.optimiser_spec import OptimiserSpec
from verify.trainers.optimisers import Optimiser, TorchOptimiser, apply_updates, schedule_factor


def small_module(seed):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(3, 5, dtype=torch.float64), nn.Tanh(),
                         nn.Linear(5, 2, dtype=torch.float64))


def train_module(module, optimiser, n_steps, seed=0):
    generator = torch.Generator().manual_seed(seed)
    X = torch.randn(16, 3, generator=generator, dtype=torch.float64)
    y = torch.randint(2, (16,), generator=generator)
    for _ in range(n_steps):
        optimiser.zero_grad()
        nn.functional.cross_entropy(module(X), y).backward()
        optimiser.step()
    return [p.detach().clone() for p in module.parameters()]


@pytest.mark.parametrize("spec, reference", [
    (OptimiserSpec(name="adamw", weight_decay=0.01),
     lambda p: torch.optim.AdamW(p, lr=1e-2, weight_decay=0.01)),
    (OptimiserSpec(name="adamw", beta1=0.8, beta2=0.99, eps=1e-6),
     lambda p: torch.optim.AdamW(p, lr=1e-2, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.0)),
    (OptimiserSpec(name="momentum", momentum=0.9),
     lambda p: torch.optim.SGD(p, lr=1e-2, momentum=0.9)),
    (OptimiserSpec(name="sgd", weight_decay=0.1),
     lambda p: torch.optim.SGD(p, lr=1e-2, weight_decay=0.1)),
], ids=["adamw", "adamw-betas", "momentum", "sgd-decay"])
def test_matches_torch_optim(spec, reference):
    ours = small_module(1)
    theirs = small_module(1)
    a = train_module(ours, TorchOptimiser(ours.parameters(), spec, lr=1e-2, n_steps=25), 25)
    b = train_module(theirs, reference(theirs.parameters()), 25)
    assert not torch.equal(a[0], small_module(1)[0].weight)
    for x, z in zip(a, b):
        torch.testing.assert_close(x, z, rtol=0, atol=1e-12)


def test_adam_first_step_with_and_without_bias_correction():
    g = torch.tensor([0.5, -2.0, 1e-3], dtype=torch.float64)
    p = torch.zeros(3, dtype=torch.float64)
    # corrected: m_hat = g, v_hat = g^2; uncorrected: m = 0.1 g, v = 0.001 g^2 (3.16 times the step)
    for correction, m, v in ((True, g, g * g), (False, 0.1 * g, 0.001 * g * g)):
        spec = OptimiserSpec(name="adamw", bias_correction=correction, eps=1e-6)
        opt = Optimiser(spec, lr=0.1, n_steps=10)
        updates, state = opt.update({"w": g}, opt.init({"w": p}), {"w": p})
        torch.testing.assert_close(updates["w"], -0.1 * m / (torch.sqrt(v) + 1e-6),
                                   rtol=1e-14, atol=0)
        assert float(state["count"]) == 1.0
    ratio = 0.1 / math.sqrt(0.001)
    assert ratio > 3.16


def test_uncorrected_adam_steps_are_larger_early_and_agree_late():
    generator = torch.Generator().manual_seed(0)
    g = torch.randn(4, generator=generator, dtype=torch.float64)
    p = {"w": torch.zeros(4, dtype=torch.float64)}
    sizes = {}
    for correction in (True, False):
        opt = Optimiser(OptimiserSpec(name="adamw", bias_correction=correction), lr=1.0,
                        n_steps=20000)
        state, first = opt.init(p), None
        for t in range(20000):
            updates, state = opt.update({"w": g}, state, p)
            first = updates["w"].abs().max() if first is None else first
        sizes[correction] = (float(first), updates["w"])
    assert sizes[False][0] > 3 * sizes[True][0]
    # after many steps with a constant gradient both tend to lr * sign(g)
    torch.testing.assert_close(sizes[False][1], sizes[True][1], rtol=2e-4, atol=0)


def test_schedule_is_linear_warmup_then_linear_decay():
    steps = torch.arange(10, dtype=torch.float64)
    factors = schedule_factor(steps, n_steps=10, warmup_steps=4, decay="linear")
    expected = [0, 0.25, 0.5, 0.75, 1.0, 5 / 6, 4 / 6, 3 / 6, 2 / 6, 1 / 6]
    np.testing.assert_allclose(factors.numpy(), expected, rtol=0, atol=1e-15)
    constant = schedule_factor(steps, n_steps=10, warmup_steps=2, decay="constant")
    np.testing.assert_allclose(constant.numpy(), [0, 0.5] + [1.0] * 8, rtol=0, atol=0)
    np.testing.assert_array_equal(
        schedule_factor(steps, n_steps=10, warmup_steps=0, decay="constant").numpy(), np.ones(10))
    assert float(schedule_factor(3, n_steps=10, warmup_steps=0, decay="linear")) == 0.7


def test_torch_class_equals_functional_optimiser_under_a_schedule():
    spec = OptimiserSpec(name="adamw", bias_correction=False, weight_decay=0.01,
                         warmup_steps=3, decay="linear")
    module = small_module(2)
    start = {name: p.detach().clone() for name, p in module.named_parameters()}
    trained = train_module(module, TorchOptimiser(module.parameters(), spec, lr=1e-2, n_steps=12), 12)
    generator = torch.Generator().manual_seed(0)
    X = torch.randn(16, 3, generator=generator, dtype=torch.float64)
    y = torch.randint(2, (16,), generator=generator)
    functional = Optimiser(spec, lr=1e-2, n_steps=12)
    params, state = start, functional.init(start)
    architecture = small_module(2)
    for _ in range(12):
        leaves = {k: v.requires_grad_() for k, v in params.items()}
        loss = nn.functional.cross_entropy(
            torch.func.functional_call(architecture, leaves, (X,)), y)
        grads = dict(zip(leaves, torch.autograd.grad(loss, list(leaves.values()))))
        updates, state = functional.update(grads, state, params)
        params = {k: v.detach() for k, v in apply_updates(params, updates).items()}
    for value, other in zip(params.values(), trained):
        torch.testing.assert_close(value, other, rtol=0, atol=1e-14)


@pytest.mark.parametrize("name", ["sgd", "momentum", "adamw"])
def test_vmapped_update_equals_one_model_at_a_time(name):
    spec = OptimiserSpec(name=name, momentum=0.5 if name == "momentum" else 0.0,
                         warmup_steps=1, decay="linear")
    opt = Optimiser(spec, lr=0.3, n_steps=5)
    generator = torch.Generator().manual_seed(4)
    params = {"a": torch.randn(3, 2, 2, generator=generator, dtype=torch.float64),
              "b": torch.randn(3, 4, generator=generator, dtype=torch.float64)}
    batched_state = vmap(opt.init)(params)
    single = [{k: v[m] for k, v in params.items()} for m in range(3)]
    states = [opt.init(p) for p in single]
    batched = params
    for step in range(4):
        grads = {k: torch.sin(v * (step + 1)) for k, v in batched.items()}
        updates, batched_state = vmap(opt.update)(grads, batched_state, batched)
        batched = apply_updates(batched, updates)
        for m in range(3):
            g = {k: torch.sin(v * (step + 1)) for k, v in single[m].items()}
            u, states[m] = opt.update(g, states[m], single[m])
            single[m] = apply_updates(single[m], u)
    for m in range(3):
        for k in params:
            torch.testing.assert_close(batched[k][m], single[m][k], rtol=0, atol=1e-15)


def test_plain_spec_is_the_theorems_step():
    assert OptimiserSpec().is_plain
    assert not OptimiserSpec(name="adamw").is_plain
    assert not OptimiserSpec(warmup_steps=1).is_plain
    assert not OptimiserSpec(decay="linear").is_plain
    spec = OptimiserSpec(name="adamw", bias_correction=False, warmup_steps=2)
    assert OptimiserSpec.from_dict(spec.to_dict()) == spec


def test_momentum_is_refused_unless_the_optimiser_is_momentum():
    # Each field's own range is tested from its declaration (tests/verify/test_declared_parameters.py).
    assert OptimiserSpec(name="momentum", momentum=0.9).momentum == 0.9
    with pytest.raises(ValueError, match=r"^momentum must be 0 unless name is 'momentum' \(got 0.9\)$"):
        OptimiserSpec(momentum=0.9)


def test_invalid_optimiser_arguments():
    with pytest.raises(ValueError, match="lr"):
        Optimiser(OptimiserSpec(), lr=0.0, n_steps=3)
    with pytest.raises(ValueError, match="n_steps"):
        Optimiser(OptimiserSpec(warmup_steps=5), lr=0.1, n_steps=3)
    with pytest.raises(ValueError, match="unknown field"):
        OptimiserSpec.from_dict({"name": "sgd", "lr": 0.1})
