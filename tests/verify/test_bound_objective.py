"""The objective the MLP trainer minimises is the one the bounds' constants are computed from."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from synth.mlp import build_model
from theory.context import RunContext
from theory.objective import training_objective
from verify.configs import TrainingConfig
from verify.run.layout import choose_left_out, model_layout
from verify.run.runner import bound_context
from verify.run.task import Task, make_stabiliser
from verify.run.train import train_mlp_task
from verify.run.network import FlatNetwork
from verify.run.train import mlp_objective

MLP_GD = TrainingConfig(name="test_mlp_gd", setting="full", kinds=("mlp",), loss="logistic",
                        init="pretrained", lr_scale=0.5, n_steps=1, n_checkpoints=2, max_left_out=2,
                        bound_models=0)


@pytest.fixture(scope="module")
def pretrained_mlp():
    from synth.pretrained import make_pretrained_mlp_task
    return make_pretrained_mlp_task(n_samples=12, n_features=4, hidden=[5, 5], n_source=64,
                                    pretrain_steps=30, n_test=16, distance=0.2, random_state=0)


STABILISERS = [("l2sp", '{"strength":0.3}'), ("l2sp", '{"strength":0.3,"include_head":true}'),
               ("weight_decay", '{"strength":0.2}'), ("weight_decay", '{"strength":0.2,"groups":["head"]}')]


@pytest.mark.parametrize("name, params", STABILISERS)
def test_bound_objective_is_the_trained_objective(pretrained_mlp, name, params):
    dataset = pretrained_mlp
    task = Task(dataset.id, MLP_GD, name, params)
    stabiliser = make_stabiliser(task)
    layout = model_layout(task, choose_left_out(task.dataset_id, 12, np.empty(0, dtype=np.int64),
                                                budget=2).samples)
    trained = train_mlp_task(MLP_GD, dataset, stabiliser, layout, layout.masks(12))
    context = bound_context(trained, dataset, replace(MLP_GD))
    full = int(layout.full_model()[0])
    run = RunContext(setting="full", left_out=0, iteration=1, w0=trained.w_init[full],
                     w_full=trained.weights[0, full], w_loo=trained.weights[0, full], **context)
    bound_objective = training_objective(run)
    # The one MLP objective builder, from the stabiliser's record.
    network = FlatNetwork.of(build_model(dataset.card["architecture"]), trained.loss)
    start = {name: np.zeros(shape) for name, shape in zip(network.names, network.shapes, strict=True)}
    start.update({name[len("w0."):]: value for name, value in dataset.arrays.items()
                  if name.startswith("w0.")})
    trainer_objective = mlp_objective(network, dataset.X, dataset.y, start, stabiliser.effects())
    rng = np.random.default_rng(0)
    for weights in (np.ones(12), np.eye(12)[3], rng.random(12)):
        s = torch.as_tensor(weights)
        for _ in range(3):
            point = rng.normal(size=trained.w_init.shape[1])
            values, gradients = [], []
            for objective in (bound_objective, trainer_objective):
                w = torch.tensor(point, requires_grad=True)
                value = objective(w, s)
                (gradient,) = torch.autograd.grad(value, w)
                values.append(value.item())
                gradients.append(gradient.numpy())
            assert values[0] == pytest.approx(values[1], rel=1e-10, abs=1e-10)
            np.testing.assert_allclose(gradients[0], gradients[1], rtol=1e-10, atol=1e-10)
    # And it is what the trainer descends: one plain GD step of the full-set model is -lr times its gradient.
    w = torch.tensor(trained.w_init[full], requires_grad=True)
    (gradient,) = torch.autograd.grad(bound_objective(w, torch.ones(12, dtype=torch.float64)), w)
    step = (trained.w_init[full] - trained.weights[0, full]) / trained.lr
    np.testing.assert_allclose(step, gradient.numpy(), rtol=1e-8, atol=1e-10)


def test_a_priori_theorem_h_reports_mean_heads_outside_its_assumptions():
    from synth.separable import make_separable
    from theory.bounds import BOUNDS
    from verify.bounds.stored import task_bound_rows
    from verify.run.runner import run_task
    dataset = make_separable(12, 3, margin=0.3, radius=1.0, random_state=0)
    config = TrainingConfig(name="test_head_gd", setting="head", kinds=("separable",), loss="logistic",
                            init="zero", lr_scale=1.0, n_steps=50, n_checkpoints=2, max_left_out=2)
    for stabiliser, params, expected in (("none", "{}", False),
                                         ("mhloss", '{"n_heads":3,"reduction":"mean"}', True)):
        output = run_task(Task(dataset.id, config, stabiliser, params), dataset)
        apriori = task_bound_rows(output.weights, dataset, [BOUNDS["theorem_h_apriori"]], {})["theorem_h_apriori"]
        assert apriori and all(("single_head" in b["violated"]) == expected for b in apriori)
