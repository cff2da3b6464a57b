"""Few-shot full fine-tuning of MiniLM on BBC News, one model at a time, with any stabiliser.

MiniLM is too large to stack M copies for ``vmap``, so each model (seed, left-out set) is trained on
its own with the very objective, stabiliser hooks and random streams of :mod:`verify.trainers.mlp`
(``ModelObjective``, ``draw_step``, ``init_heads``, ``model_generators``) — the same mathematics as
the naive MLP loop — and measured at its checkpoints as it goes, so that only the full-set model of
the current seed is ever kept in memory. Layers, for the stabilisers, are MiniLM's embeddings, its six
transformer blocks bottom to top, then the head (:func:`verify.real.minilm_classifier.classifier_layers`).

Dropout is on during training (it is part of how MiniLM is fine-tuned) and seeded from the model's
seed; measurements are taken in eval mode. The head reads the sentence embedding scaled by
``LOGIT_SCALE`` (:mod:`verify.real.minilm_classifier`). A model stops at the first diverged step and
its later checkpoints are NaN, as in the batched trainers.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from verify.real.minilm_classifier import (
    MiniLMClassifier,
    classifier_layers,
    token_rows,
)
from verify.real.minilm_stabilisers import MiniLMLNSR
from verify.real.surt import ContrastiveSURT
from verify.real.text_features import shared_minilm
from verify.run.output import TaskOutput
from verify.run.train import schedule
from verify.seeding import run_seed
from verify.stabilisers.base import FineTuningProblem, init_heads, model_generators
from verify.trainers.mlp import (
    BLOWUP,
    ModelObjective,
    batch_weights,
    draw_step,
    sample_losses,
)

DTYPE = torch.float32


def _start(model, init, X, y, mask, seed, layers, groups, stabilisers) -> FineTuningProblem:
    """A one-model problem as :func:`verify.trainers.mlp.prepare_problem` builds it, with MiniLM's
    block-level layers: pre-trained encoder, head from the seed, then each stabiliser's ``prepare``."""
    head_names = [name for name in groups if groups[name] == "head"]
    params = {name: value.unsqueeze(0).clone() for name, value in init.items() if groups[name] == "encoder"}
    params.update(init_heads(model, head_names, [seed], 1, DTYPE))
    problem = FineTuningProblem(model=model, params=params, reference=init, X=X, y=y,
                                masks=mask.unsqueeze(0), seeds=np.array([seed]), layers=layers,
                                groups=groups)
    for stabiliser in stabilisers:
        problem = stabiliser.prepare(problem, model_generators([seed], f"prepare:{stabiliser.name}"))
    return problem


def title_body_rows(minilm, texts, *, max_length: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Token rows of each article's title (its first line) and of its body (the rest)."""
    titles, bodies = zip(*((title.strip(), body.strip() or title.strip())
                           for title, _, body in (text.partition("\n") for text in texts)))
    return (token_rows(minilm, titles, max_length=max_length),
            token_rows(minilm, bodies, max_length=max_length))


def _evaluate(objective: ModelObjective, params, X, y) -> tuple[np.ndarray, np.ndarray]:
    """Per-sample losses and predictions (mean logit over heads), in eval mode."""
    model = objective.problem.model
    model.eval()
    with torch.no_grad():
        logits = objective.network.head_logits(params, objective.network.encode(params, X))
        losses = sample_losses(logits, y, "softmax").mean(0)
        predictions = logits.mean(0).argmax(-1)
    model.train()
    return losses.double().numpy(), predictions.numpy()


def _flat(params, names) -> torch.Tensor:
    return torch.cat([params[name].detach().reshape(-1).double() for name in names])


def _mean_head(params, head_names) -> torch.Tensor:
    return torch.cat([params[name].detach().double().mean(0).reshape(-1) for name in head_names])


def finetune_minilm_task(task, dataset, stabiliser, layout, *, cache_dir, max_length) -> TaskOutput:
    """Train every model of ``layout`` (seed-major: full set, then its left-out sets) and measure it.

    Returns the rows of :func:`verify.run.rows.trace_rows`'s layout: one per model and checkpoint
    after 0, the stability measures on left-out rows (against the full-set model of the same seed).
    """
    minilm = shared_minilm()
    n_classes = int(dataset.card["n_classes"])
    X = token_rows(minilm, dataset.texts, max_length=max_length)
    X_test = token_rows(minilm, dataset.test_texts, max_length=max_length)
    y = torch.as_tensor(dataset.y)
    y_test = torch.as_tensor(dataset.y_test)
    lr, n_steps, checkpoints = schedule(task.config, stabiliser, task.config.learning_rate())
    wanted = [int(t) for t in checkpoints if t > 0]
    model = MiniLMClassifier(minilm, n_classes).to(DTYPE)
    layers = classifier_layers(model)
    groups = {name: "head" if name.startswith("head.") else "encoder" for layer in layers for name in layer}
    init = {name: value.detach().clone() for name, value in model.named_parameters()}
    names = [name for layer in layers for name in layer]
    head_names = [name for name in names if groups[name] == "head"]
    if isinstance(stabiliser, ContrastiveSURT):
        stabiliser = ContrastiveSURT(**stabiliser.params(), pairs=title_body_rows(
            minilm, dataset.texts, max_length=max_length))
    if isinstance(stabiliser, MiniLMLNSR):
        stabiliser = MiniLMLNSR(**stabiliser.params(), encoder=model.encoder)
    stabilisers = () if stabiliser is None else (stabiliser,)
    masks = torch.as_tensor(layout.masks(len(dataset.y)), dtype=DTYPE)
    majority = float(np.bincount(dataset.y_test).max() / len(dataset.y_test))
    batch_size = task.config.batch_size if task.config.batch_size is None else min(
        task.config.batch_size, len(dataset.y))
    rows, reference = [], {}
    for m in range(layout.n_models):
        seed = int(layout.model_seeds[m])
        problem = _start(model, init, X, y, masks[m], seed, layers, groups, stabilisers)
        objective = ModelObjective(problem, "softmax", stabilisers)
        params = {name: value[0].clone() for name, value in problem.params.items()}
        start = _flat(params, names)
        generator = torch.Generator().manual_seed(run_seed(seed, "train_stream"))
        torch.manual_seed(run_seed(seed, "dropout"))
        model.train()
        diverged_at, initial = -1, None
        recorded: dict[int, Any] = {}  # None at the unwanted steps after a divergence
        for t in range(1, n_steps + 1):
            if diverged_at >= 0:
                recorded[t] = _measure(objective, params, names, head_names, start, X, y, X_test,
                                       y_test, masks[m], True) if t in wanted else None
                continue
            indices, noises = draw_step(problem, stabilisers, generator, batch_size)
            x_batch, y_batch = (X, y) if indices is None else (X[indices], y[indices])
            weights = batch_weights(masks[m], indices)
            leaves = {name: value.detach().requires_grad_() for name, value in params.items()}
            total, data = objective.objective(leaves, x_batch, y_batch, weights, noises)
            grads = dict(zip(leaves, torch.autograd.grad(total, list(leaves.values()))))
            grads = objective.transform(grads, params, x_batch, y_batch, weights, noises)
            params = {name: (params[name] - lr * grads[name]).detach() for name in params}
            loss_now = float(data.detach())
            initial = loss_now if initial is None else initial
            finite = math.isfinite(loss_now) and all(bool(torch.isfinite(v).all()) for v in params.values())
            if diverged_at < 0 and (not finite or loss_now > BLOWUP * initial):
                diverged_at = t - 1
            if t in wanted:
                recorded[t] = _measure(objective, params, names, head_names, start, X, y, X_test, y_test,
                                       masks[m], diverged_at >= 0)
        full = layout.left_out[m] < 0
        if full:
            reference = recorded
        for t in wanted:
            now = recorded[t]
            row = {"seed": int(layout.seeds[m]), "left_out": None, "iteration": t, "lr": float(lr),
                   "train_loss": now["train_loss"], "test_loss": now["test_loss"],
                   "test_accuracy": now["test_accuracy"], "majority_accuracy": majority,
                   "direction_error": None, "normalised_margin": None,
                   "distance_from_init": now["distance_from_init"],
                   "diverged": int(0 <= diverged_at <= t),
                   "diverged_at": diverged_at if diverged_at >= 0 else None}
            if not full:
                i = int(layout.left_out[m])
                row["left_out"] = i
                other = reference[t]
                row["parameter_stability"] = float(torch.linalg.vector_norm(now["flat"] - other["flat"]))
                unit = [h / h.norm() for h in (now["head"], other["head"])]
                row["head_direction_stability"] = float(torch.linalg.vector_norm(unit[0] - unit[1]))
                row["pointwise_hypothesis_stability"] = abs(float(other["losses"][i] - now["losses"][i]))
            rows.append(row)
    return TaskOutput(runs=rows)


def _measure(objective, params, names, head_names, start, X, y, X_test, y_test, mask, diverged) -> dict:
    if diverged:
        nan = float("nan")
        return {"train_loss": nan, "test_loss": nan, "test_accuracy": nan, "distance_from_init": nan,
                "flat": torch.full_like(start, nan), "head": torch.full((1,), nan, dtype=torch.float64),
                "losses": np.full(len(y), nan)}
    losses, _ = _evaluate(objective, params, X, y)
    test_losses, predictions = _evaluate(objective, params, X_test, y_test)
    flat = _flat(params, names)
    own = mask.numpy() > 0
    return {"train_loss": float(losses[own].mean()), "test_loss": float(test_losses.mean()),
            "test_accuracy": float((predictions == y_test.numpy()).mean()),
            "distance_from_init": float(torch.linalg.vector_norm(flat - start)),
            "flat": flat, "head": _mean_head(params, head_names), "losses": losses}
