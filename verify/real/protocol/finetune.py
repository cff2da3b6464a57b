"""Full fine-tuning of a text encoder under :class:`ProtocolConfig`, one model at a time, with any
stabiliser.

Each seed trains its own copy: a fresh head from the seed's head stream (``init_heads``, as the
other trainers), then each stabiliser's ``prepare``, then ``n_steps`` AdamW steps over minibatches
in a per-seed order (a new permutation every epoch), with the encoder's dropout on and seeded from
the model's seed. The objective, penalties, perturbations and stabiliser draws are those of
:class:`verify.trainers.mlp.ModelObjective`, the MLP trainers' mathematics.

Gradient transforms (``transform_grads``: layer-wise learning-rate decay) act here on the
optimiser's learning rate, tensor by tensor, not on the gradient: under Adam a rescaled gradient gives
the same step, and practitioners' LLRD is a per-layer learning rate. Only transforms that scale each
tensor apply (:func:`learning_rate_scales`).

Test accuracy, losses and the distance from the pre-trained weights are measured at the end, in
eval mode. Tokens beyond the longest text of a batch are cut before the forward pass (exactly the
same outputs: padding is masked), which is most of the speed on short texts.
"""
from __future__ import annotations

import math

import numpy as np
import torch

from verify.real.minilm_classifier import MiniLMClassifier, classifier_layers, token_rows
from verify.real.minilm_stabilisers import MiniLMLNSR
from verify.real.surt import ContrastiveSURT
from verify.real.text_features import shared_minilm
from verify.run.train import schedule
from verify.seeding import run_seed
from verify.stabilisers.base import FineTuningProblem, Stabiliser, init_heads, model_generators
from verify.run.output import TaskOutput
from verify.trainers.mlp import BLOWUP, ModelObjective, batch_weights, sample_losses
from verify.real.protocol.adamw import InPlaceAdamW

DTYPE = torch.float32
EVAL_BATCH = 64
WORD_EMBEDDINGS = "encoder.bert.embeddings.word_embeddings.weight"


def trim(rows: torch.Tensor) -> torch.Tensor:
    """Token rows ``[ids | mask]`` cut to the longest text among them."""
    length = rows.shape[1] // 2
    used = max(int(rows[:, length:].sum(1).max()), 1)
    return torch.cat([rows[:, :used], rows[:, length:length + used]], dim=1)


def _set_dropout(model: torch.nn.Module, p: float) -> None:
    for module in model.modules():
        if isinstance(module, torch.nn.Dropout):
            module.p = p


def learning_rate_scales(objective: ModelObjective, params, x, y) -> dict[str, float]:
    """Each tensor's learning-rate multiplier: the stabilisers' gradient transforms applied to a
    gradient of ones (scalars); a transform that is not a per-tensor scaling raises ValueError."""
    if not any(type(s).transform_grads is not Stabiliser.transform_grads for s in objective.stabilisers):
        return {}
    ones = {name: torch.ones((), dtype=value.dtype, device=value.device) for name, value in params.items()}
    noises: tuple[dict[str, torch.Tensor], ...] = tuple({} for _ in objective.stabilisers)
    scaled = objective.transform(ones, params, x, y, torch.ones(len(y), device=x.device) / len(y), noises)
    if any(value.dim() != 0 for value in scaled.values()):
        raise ValueError("stabiliser: only gradient transforms that scale each tensor (llrd) apply "
                         "to the AdamW protocol")
    return {name: float(value) for name, value in scaled.items()}


def epoch_batches(n: int, batch_size: int, n_steps: int, generator: torch.Generator):
    """Minibatch indices for ``n_steps`` steps: epoch after epoch, each a fresh permutation."""
    batches: list[torch.Tensor] = []
    while len(batches) < n_steps:
        order = torch.randperm(n, generator=generator)
        batches += [order[start:start + batch_size] for start in range(0, n, batch_size)]
    return batches[:n_steps]


def _evaluate(model, head_names, params, X, y, device) -> tuple[np.ndarray, np.ndarray]:
    """Per-sample losses and predictions (mean logit over heads), eval mode, in batches."""
    from torch.func import functional_call
    model.eval()
    encoder_params = {name.split(".", 1)[1]: value for name, value in params.items()
                      if not name.startswith("head.")}
    losses, predictions = [], []
    with torch.no_grad():
        for start in range(0, len(X), EVAL_BATCH):
            rows = trim(X[start:start + EVAL_BATCH]).to(device)
            features = functional_call(model.encoder, encoder_params, (rows,))
            heads = torch.stack([features @ params["head.weight"][h].T + params["head.bias"][h]
                                 for h in range(params["head.weight"].shape[0])])
            target = y[start:start + EVAL_BATCH].to(device)
            losses.append(sample_losses(heads, target, "softmax").mean(0).double().cpu())
            predictions.append(heads.mean(0).argmax(-1).cpu())
    model.train()
    return torch.cat(losses).numpy(), torch.cat(predictions).numpy()


def _flat_distance(params, start, names) -> float:
    return float(torch.sqrt(sum(((params[name].detach().double() - start[name].double()) ** 2).sum()
                                for name in names)))


def finetune_protocol_task(task, dataset, stabiliser, *, cache_dir, device: str = "cpu") -> TaskOutput:
    """Train every seed of ``task`` on ``dataset`` and return one row per seed (the last step).

    ``task.config`` is a :class:`verify.real.protocol.config.ProtocolConfig`. Rows carry
    ``test_accuracy`` and ``majority_accuracy`` (a run at or below the majority class's share of the
    test set has failed; it is recorded, never dropped).
    """
    config = task.config
    encoder = shared_minilm(config.encoder, cache_dir)
    n_classes = int(dataset.card["n_classes"])
    X = token_rows(encoder, dataset.texts, max_length=config.max_length)
    X_test = token_rows(encoder, dataset.test_texts, max_length=config.max_length)
    y, y_test = torch.as_tensor(dataset.y), torch.as_tensor(dataset.y_test)
    lr, n_steps, _ = schedule(config, stabiliser, config.learning_rate())
    model = MiniLMClassifier(encoder, n_classes).to(DTYPE)
    _set_dropout(model, config.dropout)
    layers = classifier_layers(model)
    groups = {name: "head" if name.startswith("head.") else "encoder" for layer in layers for name in layer}
    names = [name for layer in layers for name in layer]
    head_names = [name for name in names if groups[name] == "head"]
    model.to(device)
    init = {name: value.detach().clone() for name, value in model.named_parameters()}
    if isinstance(stabiliser, ContrastiveSURT):
        from verify.real.text_finetune import title_body_rows
        anchors, positives = title_body_rows(encoder, dataset.texts, max_length=config.max_length)
        stabiliser = ContrastiveSURT(**stabiliser.params(), pairs=(anchors.to(device), positives.to(device)))
    if isinstance(stabiliser, MiniLMLNSR):
        stabiliser = MiniLMLNSR(**stabiliser.params(), encoder=model.encoder)
    stabilisers = () if stabiliser is None else (stabiliser,)
    majority = float(np.bincount(dataset.y_test).max() / len(dataset.y_test))
    batch_size = min(config.batch_size, len(dataset.y))
    rows = []
    for seed_index in task.seeds:
        seed = task.model_seed(seed_index)
        mask = torch.ones(len(dataset.y), dtype=DTYPE, device=device)
        head = init_heads(model, head_names, [seed], 1, DTYPE)
        params = {name: value.unsqueeze(0).clone() for name, value in init.items() if groups[name] == "encoder"}
        params.update({name: value.to(device) for name, value in head.items()})
        problem = FineTuningProblem(model=model, params=params, reference=init, X=X.to(device),
                                    y=y.to(device), masks=mask.unsqueeze(0), seeds=np.array([seed]),
                                    layers=layers, groups=groups)
        torch.manual_seed(run_seed(seed, "dropout"))
        for s in stabilisers:
            problem = s.prepare(problem, model_generators([seed], f"prepare:{s.name}"))
        objective = ModelObjective(problem, "softmax", stabilisers)
        params = {name: value[0].detach().clone() for name, value in problem.params.items()}
        start = {name: value.clone() for name, value in params.items()}
        optimiser = InPlaceAdamW(config.optimiser(n_steps), lr=lr, n_steps=n_steps,
                                 scales=learning_rate_scales(objective, params, problem.X[:1], problem.y[:1]),
                                 row_sparse=[WORD_EMBEDDINGS])
        generator = torch.Generator().manual_seed(run_seed(seed, "train_stream"))
        model.train()
        diverged_at, initial = -1, None
        for t, indices in enumerate(epoch_batches(len(dataset.y), batch_size, n_steps, generator), start=1):
            noises = tuple(s.draw(problem, len(indices), generator) for s in stabilisers)
            noises = tuple({k: v.to(device) for k, v in noise.items()} for noise in noises)
            x_batch, y_batch = trim(X[indices]).to(device), y[indices].to(device)
            weights = batch_weights(mask, indices.to(device))
            leaves = {name: value.detach().requires_grad_() for name, value in params.items()}
            total, data = objective.objective(leaves, x_batch, y_batch, weights, noises)
            grads = dict(zip(leaves, torch.autograd.grad(total, list(leaves.values()))))
            optimiser.step(params, grads)
            loss_now = float(data.detach())
            initial = loss_now if initial is None else initial
            if not math.isfinite(loss_now) or loss_now > BLOWUP * initial:
                diverged_at = t - 1
                break
        row = {"seed": int(seed_index), "left_out": None, "iteration": n_steps, "lr": float(lr),
               "majority_accuracy": majority, "direction_error": None, "normalised_margin": None,
               "diverged": int(diverged_at >= 0), "diverged_at": diverged_at if diverged_at >= 0 else None}
        if diverged_at >= 0:
            row.update(train_loss=float("nan"), test_loss=float("nan"), test_accuracy=float("nan"),
                       distance_from_init=float("nan"))
        else:
            train_losses, _ = _evaluate(model, head_names, params, X, y, device)
            test_losses, predictions = _evaluate(model, head_names, params, X_test, y_test, device)
            row.update(train_loss=float(train_losses.mean()), test_loss=float(test_losses.mean()),
                       test_accuracy=float((predictions == dataset.y_test).mean()),
                       distance_from_init=_flat_distance(params, start, names))
        rows.append(row)
    return TaskOutput(runs=rows)
