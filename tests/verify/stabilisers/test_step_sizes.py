"""Every MLP step size comes from the curvature of the objective actually trained: lr = lr_scale / β̂
with β̂ the largest eigenvalue of P^½ ∇²F P^½ at the start (F the trained objective, P the step's
metric), checked against a dense Hessian of an independently written multi-head objective."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch
from torch.func import functional_call

from synth.backbones import build_network
from verify.run.layout import model_layout
from verify.run.task import Task
from verify.run.train import train_mlp_task
from verify.stabilisers import L2SP, MHLoss
from verify.trainers.mlp import prepare_problem


def _trained(dataset, config, stabiliser):
    name = "none" if stabiliser is None else stabiliser.name
    layout = model_layout(Task(dataset.id, config, name, "{}", seeds=(0,)), np.empty(0, dtype=np.int64))
    masks = layout.masks(len(dataset.X))
    return train_mlp_task(config, dataset, stabiliser, layout, masks), layout


def _dense_curvature(dataset, stabiliser, layout, *, reduction, n_heads, l2sp=0.0):
    """λ_max of P^½ ∇²F P^½ at the first model's start, F written here from the model's modules."""
    model = build_network(dataset.card["architecture"])
    start = {name[len("w0."):]: value for name, value in dataset.arrays.items() if name.startswith("w0.")}
    stabilisers = () if stabiliser is None else (stabiliser,)
    problem = prepare_problem(model, start, torch.as_tensor(dataset.X), torch.as_tensor(dataset.y),
                              masks=torch.ones(1, len(dataset.X), dtype=torch.float64),
                              seeds=layout.model_seeds[:1], stabilisers=stabilisers)
    names = list(problem.params)
    point = {name: problem.params[name][0] for name in names}
    sizes = [point[name].numel() for name in names]
    X, signs = torch.as_tensor(dataset.X), torch.as_tensor(2.0 * dataset.y - 1.0)

    def objective(w):
        parts = dict(zip(names, torch.split(w, sizes), strict=True))
        params = {name: parts[name].reshape(point[name].shape) for name in names}
        features = functional_call(model.encoder, {k[8:]: v for k, v in params.items()
                                                   if k.startswith("encoder.")}, (X,))
        losses = []
        for h in range(n_heads):
            head = {k[5:]: v[h] for k, v in params.items() if k.startswith("head.")}  # (H, ...)
            logits = functional_call(model.head, head, (features,))
            margin = signs * (logits[:, 1] - logits[:, 0] if logits.shape[1] == 2 else logits[:, 0])
            losses.append(torch.nn.functional.softplus(-margin).mean())
        data = torch.stack(losses).sum() if reduction == "sum" else torch.stack(losses).mean()
        anchor = sum(((params[k] - torch.as_tensor(start[k])) ** 2).sum() for k in names
                     if k.startswith("encoder."))
        return data + 0.5 * l2sp * anchor

    w = torch.cat([point[name].reshape(-1) for name in names])
    hessian = torch.autograd.functional.hessian(objective, w).numpy()
    scale = np.concatenate([np.full(size, n_heads if reduction == "balanced" and name.startswith("head.")
                                    else 1.0) for name, size in zip(names, sizes, strict=True)])
    root = np.sqrt(scale)
    return np.linalg.eigvalsh(root[:, None] * hessian * root[None, :])[-1]


@pytest.mark.parametrize("reduction", ["balanced", "sum", "mean"])
def test_each_mhloss_reading_steps_at_the_trained_objectives_curvature(mlp_dataset, reduction):
    dataset, config = mlp_dataset
    config = replace(config, n_steps=1)
    stabiliser = MHLoss(n_heads=3, reduction=reduction)
    trained, layout = _trained(dataset, config, stabiliser)
    beta = _dense_curvature(dataset, stabiliser, layout, reduction=reduction, n_heads=3)
    assert trained.lr == pytest.approx(config.lr_scale / beta, rel=1e-6)


def test_the_single_head_null_control_keeps_the_former_step(mlp_dataset):
    """curvature="single_head" keeps the former step: one head's data loss at the mean of the
    heads, whose curvature is below the summed objective's, so the summed run steps past
    lr_scale / β of what it trains."""
    dataset, config = mlp_dataset
    config = replace(config, n_steps=1)
    control, layout = _trained(dataset, config, MHLoss(n_heads=3, reduction="sum",
                                                       curvature="single_head"))
    fair, _ = _trained(dataset, config, MHLoss(n_heads=3, reduction="sum"))
    summed = _dense_curvature(dataset, MHLoss(n_heads=3, reduction="sum"), layout, reduction="sum",
                              n_heads=3)
    assert fair.lr * summed == pytest.approx(config.lr_scale, rel=1e-6)
    assert control.lr * summed > config.lr_scale


def test_l2sp_steps_at_the_penalised_curvature(mlp_dataset):
    dataset, config = mlp_dataset
    config = replace(config, n_steps=1)
    plain, _ = _trained(dataset, config, None)
    anchored, layout = _trained(dataset, config, L2SP(strength=2.0))
    beta = _dense_curvature(dataset, None, layout, reduction="mean", n_heads=1, l2sp=2.0)
    assert anchored.lr == pytest.approx(config.lr_scale / beta, rel=1e-6)
    assert anchored.lr < plain.lr
