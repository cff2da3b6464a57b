"""Mixout's expected forward weights are the current weights; LLRD scales each layer's step."""
import numpy as np
import pytest
import torch

from verify.stabilisers import LayerwiseLRDecay, Mixout
from verify.stabilisers.base import StepContext
from verify.trainers.mlp import prepare_problem, train_mlp


@pytest.mark.parametrize("p", [0.1, 0.6])
def test_mixout_expectation_is_the_current_weight_and_values_are_w0_or_rescaled(tiny_task, p):
    model, pretrained, X, y = tiny_task
    problem = prepare_problem(model, pretrained, torch.as_tensor(X), torch.as_tensor(y),
                              masks=torch.ones(1, len(X), dtype=torch.float64), seeds=np.array([0]))
    mixout = Mixout(p=p)
    current = {name: value[0] + 0.5 for name, value in problem.params.items()}  # moved off w0
    ctx = StepContext(x=problem.X, y=problem.y, weights=torch.ones(len(X)), reference=problem.reference,
                      layers=problem.layers, groups=problem.groups, encode=None)
    generator = torch.Generator().manual_seed(1)
    n_draws = 4000
    total = {name: torch.zeros_like(value) for name, value in current.items()}
    for _ in range(n_draws):
        mixed = mixout.perturb(current, StepContext(**{**ctx.__dict__, "noise": mixout.draw(
            problem, len(X), generator)}))
        for name, value in mixed.items():
            total[name] += value
        weight = "encoder.2.weight"
        rescaled = (current[weight] - p * problem.reference[weight]) / (1 - p)
        assert torch.all(torch.isclose(mixed[weight], problem.reference[weight])
                         | torch.isclose(mixed[weight], rescaled))
    for name in current:
        mean = total[name] / n_draws
        if name.endswith("weight") and name.startswith("encoder."):
            spread = (current[name] - problem.reference[name]).abs() * np.sqrt(p / (1 - p))
            assert torch.all((mean - current[name]).abs() <= 5 * spread / np.sqrt(n_draws) + 1e-12)
        else:  # biases and the head are not mixed
            torch.testing.assert_close(mean, current[name], rtol=0, atol=1e-12)


def test_llrd_scales_each_layers_update_by_its_depth_below_the_top(tiny_task):
    model, pretrained, X, y = tiny_task
    kwargs = dict(masks=np.ones((1, len(X))), seeds=[0], lr=0.1, n_steps=1, checkpoints=[0, 1])
    plain = train_mlp(model, pretrained, X, y, **kwargs)
    decayed = train_mlp(model, pretrained, X, y, stabilisers=(LayerwiseLRDecay(factor=0.5),), **kwargs)
    expected = {"head.weight": 1.0, "head.bias": 1.0, "encoder.2.weight": 1.0, "encoder.2.bias": 1.0,
                "encoder.0.weight": 0.5, "encoder.0.bias": 0.5}
    for name, factor in expected.items():
        step_plain = plain.weights[name][1] - plain.weights[name][0]
        step_decayed = decayed.weights[name][1] - decayed.weights[name][0]
        assert np.abs(step_plain).max() > 1e-6
        np.testing.assert_allclose(step_decayed, factor * step_plain, rtol=0, atol=1e-14)
