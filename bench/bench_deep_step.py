"""One training step of M deep-MLP models: vmap of a per-model grad against one batched graph.

    python bench/bench_deep_step.py [--steps 20] [--rounds 5] [--threads 1] [--seeds 10]
                                    [--dataset] [--stabilisers] [--json]

The instability grid's network (synth.deep_backbone: Linear, LayerNorm, Tanh, dropout site per
block; width 32, 16 inputs, one logistic output; random "pre-trained" weights) fine-tuned as the
grid's default config does (AdamW without bias correction, lr 5e-2, dropout 0.1, full batch), with
10 seeds (``--seeds``) x (S + 2 left-out sets) = 30 models, at three shapes: depth 2 / 4 samples
per class, depth 6 / 16 (the profiled dataset's) and depth 8 / 64.

Two arms, taking turns in one process (CPU time of this process, best of ``--rounds``), on the
same pre-drawn step inputs (dropout masks, stabiliser draws):

- ``vmap``: the trainer's step (:func:`verify.trainers.mlp.train_mlp`), ``torch.func.vmap`` over
  models of ``ModelObjective.step`` (``functional_call`` and ``torch.func.grad``);
- ``batched``: the candidate defined here (:class:`BatchedObjective`): every model's loss in one
  autograd graph over stacked parameters (batched matrix products, LayerNorm over the last axis,
  the same dropout masks), per-model gradients from the backward pass of the summed losses, the
  per-model hooks under ``vmap`` where a stabiliser overrides them, the optimiser's elementwise
  update on the stacked tensors.

Also timed: the full-set training loss of every model (the divergence check's, every step when
dropout is on), ``vmap`` of the per-model data loss against the batched forward pass. Reported:
milliseconds per step, their ratio, and the largest relative difference of the weights from the
``vmap`` arm's after 1, 10, 20, 50 and ``--steps`` steps (max |a - b| / max |a| over each
parameter tensor), for the candidate and for the per-model autograd loop of
:mod:`verify.trainers.naive_mlp` (the trainer's own reference); with ``--stabilisers``, also for
each registered stabiliser at its defaults at the profiled shape; with ``--dataset``, also on a
real instability-grid dataset (``synth.deep_tasks.make_deep_finetuning_task``, depth 6, 16
samples per class, its pre-trained backbone; a two-output head).
"""
from __future__ import annotations

import argparse
import time
from dataclasses import replace

import numpy as np
import torch
from torch import nn
from torch.func import vmap

import common
from synth.deep_backbone import build_deep_model, init_pretraining_params
from synth.dropout import DropoutSite
from verify.optimiser_spec import OptimiserSpec
from verify.stabilisers import STABILISERS, Stabiliser, StepContext
from verify.stabilisers.base import map_selected, selected_names
from verify.trainers import mlp
from verify.trainers.optimisers import Optimiser, apply_updates

# ------------------------------------------------------------------------------ the candidate ---

# Parameter-free modules acting elementwise (the synthetic backbones' activation): they apply
# unchanged to activations with a models axis.
ELEMENTWISE = (nn.Tanh,)


def _linear(h, weight, bias):
    """``h W^T + b`` where the weight's leading axes (models, heads) broadcast with ``h``'s."""
    out = torch.matmul(h, weight.transpose(-1, -2))
    return out if bias is None else out + bias.unsqueeze(-2)


def _sequential_program(encoder):
    """The encoder as (kind, name, module) steps, or None unless it is an ``nn.Sequential`` of
    ``nn.Linear``, ``nn.LayerNorm`` over one axis, DropoutSite and :data:`ELEMENTWISE` modules."""
    if type(encoder) is not nn.Sequential:
        return None
    program = []
    for name, module in encoder.named_children():
        if type(module) is nn.Linear:
            kind = "linear"
        elif type(module) is nn.LayerNorm and len(module.normalized_shape) == 1:
            kind = "layer_norm"
        elif type(module) is DropoutSite:
            kind = "site"
        elif type(module) in ELEMENTWISE:
            kind = "elementwise"
        else:
            return None
        program.append((kind, name, module))
    return tuple(program)


class StackedNetwork:
    """The encoder and the heads of ``model`` on parameters with a leading models axis ``(M, ...)``.

    An ``nn.Sequential`` encoder of ``nn.Linear``, ``nn.LayerNorm``, DropoutSite and
    :data:`ELEMENTWISE` modules (the synthetic backbones) and an ``nn.Linear`` head, as batched
    matrix products over the models axis; the same functions without that axis are one model's
    network (the hooks' ``encode``). (In the trainer, any other network, the digits CNN, would run
    as ``vmap`` of ``NetworkFunctions`` over the models axis, forward only.)
    """

    def __init__(self, model: nn.Module):
        program = _sequential_program(model.encoder)
        if program is None or type(model.head) is not nn.Linear:
            raise ValueError("model: needs an nn.Sequential encoder of Linear, LayerNorm, "
                             "DropoutSite and elementwise layers, and an nn.Linear head")
        self.program = program

    def encode_one(self, params, x, dropout_masks=None):
        """One model's encoder features ``(B, h)`` (parameters without the models axis)."""
        return self.encode(params, x, dropout_masks or {})

    def encode(self, params, h, masks):
        """Features ``(M, B, width)`` of every model from inputs ``h`` of shape ``(B, d)`` (shared
        by the models) or ``(M, B, d)``; ``masks``: dropout site -> ``(M, B, width)``."""
        for kind, name, module in self.program:
            prefix = f"encoder.{name}"
            if kind == "linear":
                h = _linear(h, params[f"{prefix}.weight"], params.get(f"{prefix}.bias"))
            elif kind == "layer_norm":
                h = nn.functional.layer_norm(h, module.normalized_shape, eps=module.eps)
                if f"{prefix}.weight" in params:
                    h = h * params[f"{prefix}.weight"].unsqueeze(-2)
                if f"{prefix}.bias" in params:
                    h = h + params[f"{prefix}.bias"].unsqueeze(-2)
            elif kind == "site":
                h = h * masks[name] if name in masks else h
            else:
                h = module(h)
        return h

    def head_logits(self, params, features):
        """Logits ``(M, H, B, C)`` of every model's heads from features ``(M, B, h)``."""
        return _linear(features.unsqueeze(-3), params["head.weight"], params.get("head.bias"))


def overrides(stabiliser, hook):
    """Whether ``stabiliser`` overrides the per-step ``hook`` (otherwise it is the identity)."""
    return getattr(type(stabiliser), hook) is not getattr(Stabiliser, hook)


class BatchedObjective:
    """``ModelObjective``'s objective and step for all M models at once.

    Parameters, gradients and optimiser state carry a leading models axis. The M objectives are one
    autograd graph (:class:`StackedNetwork`), and the gradient of their sum is every model's own
    gradient, since no model's loss depends on another model's parameters. The per-model hooks
    (``perturb``, ``penalty``, ``transform_grads``, seeing tensors without the models axis) run
    under ``vmap`` where a stabiliser overrides them; the optimiser's update is elementwise and
    its step count is shared (every model takes every step).
    """

    def __init__(self, problem, loss, stabilisers, optimiser):
        self.network = StackedNetwork(problem.model)
        self.problem = problem
        self.loss = loss
        self.stabilisers = tuple(stabilisers)
        self.optimiser = optimiser

    def each_model(self, hook, x, y, weights, noise, *tensors):
        """``hook(ctx, *tensors)`` of every model (vmap over the models axis of ``weights``,
        ``noise`` and ``tensors``; of ``x`` and ``y`` too when the batch is each model's own)."""
        batch = 0 if x.dim() == 3 else None

        def one(x, y, weights, noise, *tensors):
            ctx = StepContext(x=x, y=y, weights=weights, reference=self.problem.reference,
                              layers=self.problem.layers, groups=self.problem.groups,
                              encode=self.network.encode_one, noise=noise)
            return hook(ctx, *tensors)
        return vmap(one, in_dims=(batch, batch, 0, 0, *(0,) * len(tensors)))(
            x, y, weights, noise, *tensors)

    def reduce(self, logits, y, weights) -> torch.Tensor:
        """``ModelObjective.reduce`` of every model: ``(M,)`` from logits ``(M, H, B, C)``."""
        per_head = (mlp.sample_losses(logits, y.unsqueeze(-2), self.loss) * weights.unsqueeze(-2)).sum(-1)
        return per_head.sum(-1) if self.problem.head_reduction == "sum" else per_head.mean(-1)

    def data_loss(self, params, x, y, weights) -> torch.Tensor:
        """Every model's data loss ``(M,)`` (no penalty, no perturbation, no dropout)."""
        return self.reduce(self.network.head_logits(params, self.network.encode(params, x, {})), y,
                           weights)

    def objective(self, params, x, y, weights, noises, dropout_masks):
        """Every model's data loss plus penalties ``(M,)``, and the data loss alone."""
        forward = params
        for stabiliser, noise in zip(self.stabilisers, noises):
            if overrides(stabiliser, "perturb"):
                forward = self.each_model(lambda ctx, p, s=stabiliser: s.perturb(p, ctx),
                                          x, y, weights, noise, forward)
        features = self.network.encode(forward, x, dropout_masks)
        data = self.reduce(self.network.head_logits(forward, features), y, weights)
        total = data
        for stabiliser, noise in zip(self.stabilisers, noises):
            l2sp = stabiliser.effects().l2sp
            if l2sp.strength:
                total = total + 0.5 * l2sp.strength * sum(
                    ((params[name] - self.problem.reference[name]) ** 2).flatten(1).sum(-1)
                    for name in selected_names(self.problem, l2sp.groups))
            if overrides(stabiliser, "penalty"):
                total = total + self.each_model(
                    lambda ctx, p, f, h, s=stabiliser: torch.as_tensor(
                        s.penalty(p, replace(ctx, forward_params=f, features=h)), dtype=h.dtype),
                    x, y, weights, noise, params, forward, features)
        return total, data

    def transform(self, grads, params, x, y, weights, noises):
        """``ModelObjective.transform`` of every model."""
        if self.problem.head_reduction == "balanced" and self.problem.n_heads > 1:
            scale = float(self.problem.n_heads)
            grads = {name: grad * scale if self.problem.groups[name] == "head" else grad
                     for name, grad in grads.items()}
        for stabiliser, noise in zip(self.stabilisers, noises):
            decay = stabiliser.effects().weight_decay
            if decay.strength:
                grads = map_selected(grads, selected_names(self.problem, decay.groups),
                                     lambda name, grad, decay=decay: grad + decay.strength * params[name])
            if overrides(stabiliser, "transform_grads"):
                grads = self.each_model(lambda ctx, g, p, s=stabiliser: s.transform_grads(g, p, ctx),
                                        x, y, weights, noise, grads, params)
        return grads

    def step(self, params, state, x, y, weights, noises, dropout_masks):
        """One optimiser step of every model: (new parameters, new state, data losses at ``params``)."""
        leaves = {name: value.detach().requires_grad_() for name, value in params.items()}
        total, data = self.objective(leaves, x, y, weights, noises, dropout_masks)
        grads = dict(zip(leaves, torch.autograd.grad(total.sum(), list(leaves.values()))))
        grads = self.transform(grads, params, x, y, weights, noises)
        updates, state = self.optimiser.update(grads, state, params)
        return apply_updates(params, updates), state, data.detach()


# ------------------------------------------------------------------------------ the benchmark ---

SHAPES = {"small": (2, 4), "profiled": (6, 16), "large": (8, 64)}
N_SEEDS, LEFT_OUT = 10, 2
OPTIMISER = OptimiserSpec(name="adamw", bias_correction=False)
LR, DROPOUT, LOSS = 5e-2, 0.1, "logistic"


def problem_of(depth: int, n_per_class: int, stabilisers: tuple, *, n_seeds: int, seed: int = 0):
    """The fine-tuning problem at one shape: data, models (seeds x (S + left-out sets)), starts."""
    architecture = {"family": "layernorm_tanh", "n_features": 16, "width": 32, "depth": depth,
                    "n_classes": 1}
    rng = np.random.default_rng(seed)
    n = 2 * n_per_class
    X = rng.normal(size=(n, 16))
    y = (X[:, 0] + 0.5 * X[:, 1] > 0).astype(np.int64)
    model = build_deep_model(architecture)
    start = {name: np.zeros(tuple(value.shape)) for name, value in model.named_parameters()}
    start.update(init_pretraining_params(architecture, rng))
    masks = np.ones((1 + LEFT_OUT, n))
    masks[np.arange(1, 1 + LEFT_OUT), np.arange(LEFT_OUT)] = 0
    return mlp.prepare_problem(model, start, torch.as_tensor(X), torch.as_tensor(y),
                               masks=torch.as_tensor(np.tile(masks, (n_seeds, 1))),
                               seeds=np.repeat(np.arange(n_seeds), 1 + LEFT_OUT),
                               stabilisers=stabilisers, unlabelled=rng.normal(size=(64, 16)))


def dataset_problem(stabilisers: tuple, *, n_seeds: int):
    """The problem on a real instability-grid dataset at the profiled shape (depth 6, 16 samples
    per class; its pre-trained backbone, two-output head and target pool)."""
    from synth.deep_tasks import make_deep_finetuning_task

    dataset = make_deep_finetuning_task(n_per_class=16, depth=6, random_state=0)
    model = build_deep_model(dataset.card["architecture"])
    start = {name: np.zeros(tuple(value.shape)) for name, value in model.named_parameters()}
    start.update({name[len("w0."):]: value for name, value in dataset.arrays.items()
                  if name.startswith("w0.")})
    n = len(dataset.y)
    masks = np.ones((1 + LEFT_OUT, n))
    masks[np.arange(1, 1 + LEFT_OUT), np.arange(LEFT_OUT)] = 0
    return mlp.prepare_problem(model, start, torch.as_tensor(dataset.X), torch.as_tensor(dataset.y),
                               masks=torch.as_tensor(np.tile(masks, (n_seeds, 1))),
                               seeds=np.repeat(np.arange(n_seeds), 1 + LEFT_OUT),
                               stabilisers=stabilisers, unlabelled=dataset.arrays["target_pool"])


def step_inputs(problem, stabilisers: tuple, n_steps: int) -> list:
    """The inputs of ``n_steps`` full-batch steps, drawn as the trainer draws them."""
    streams = mlp.training_streams(problem.seeds)
    seed_index = torch.as_tensor([list(streams).index(int(seed)) for seed in problem.seeds])
    full = mlp.batch_weights(problem.masks, None)
    return [mlp._step_inputs(problem, stabilisers, streams, seed_index, None, full, DROPOUT)
            for _ in range(n_steps)]


def vmap_arm(problem, stabilisers: tuple, optimiser: Optimiser):
    """The trainer's step: vmap over models of grad of the per-model objective, then transform
    and update; its optimiser state and training loss (vmap of the per-model data loss)."""
    objective = mlp.ModelObjective(problem, LOSS, stabilisers, optimiser)
    step = vmap(objective.step, in_dims=(0, 0, None, None, 0, 0, 0))
    return step, vmap(optimiser.init), vmap(objective.data_loss, in_dims=(0, None, None, 0))


def batched_arm(problem, stabilisers: tuple, optimiser: Optimiser):
    """The candidate's step, optimiser state (one shared count) and training loss."""
    objective = BatchedObjective(problem, LOSS, stabilisers, optimiser)
    return objective.step, optimiser.init, objective.data_loss


def train(arm, problem, inputs, record=()) -> dict:
    """Weights after each step count in ``record`` and after all of ``inputs``, by count."""
    step, init, _ = arm
    params = {name: value.clone() for name, value in problem.params.items()}
    state = init(params)
    snapshots = {}
    for t, (x, y, weights, masks, noises) in enumerate(inputs, start=1):
        params, state, _ = step(params, state, x, y, weights, noises, masks)
        params = {name: value.detach() for name, value in params.items()}
        if t in record:
            snapshots[t] = params
    return {**snapshots, len(inputs): params}


def train_naive(problem, stabilisers: tuple, optimiser: Optimiser, inputs, record=()) -> dict:
    """:func:`train` for the reference of ``verify.trainers.naive_mlp``: each model alone,
    autograd on its own objective."""
    objective = mlp.ModelObjective(problem, LOSS, stabilisers, optimiser)
    models = []
    for m in range(problem.n_models):
        params = {name: value[m].clone() for name, value in problem.params.items()}
        state = optimiser.init(params)
        snapshots = {}
        for t, (x, y, weights, masks, noises) in enumerate(inputs, start=1):
            own = tuple({key: value[m] for key, value in noise.items()} for noise in noises)
            leaves = {name: value.detach().requires_grad_() for name, value in params.items()}
            total, _ = objective.objective(leaves, x, y, weights[m], own,
                                           {site: mask[m] for site, mask in masks.items()})
            grads = dict(zip(leaves, torch.autograd.grad(total, list(leaves.values()))))
            grads = objective.transform(grads, params, x, y, weights[m], own)
            params, state = objective.apply(grads, state, params)
            params = {name: value.detach() for name, value in params.items()}
            if t in record or t == len(inputs):
                snapshots[t] = params
        models.append(snapshots)
    return {t: {name: torch.stack([model[t][name] for model in models]) for name in models[0][t]}
            for t in models[0]}


def relative_difference(a: dict, b: dict) -> float:
    """max |a - b| / max |a| over each parameter tensor."""
    return max(float((a[name] - b[name]).abs().max() / a[name].abs().max().clamp_min(1e-300))
               for name in a)


def compare(problem, stabilisers: tuple, n_steps: int, rounds: int) -> dict:
    optimiser = Optimiser(OPTIMISER, lr=LR, n_steps=n_steps)
    inputs = step_inputs(problem, stabilisers, n_steps)
    arms = {"vmap": vmap_arm(problem, stabilisers, optimiser),
            "batched": batched_arm(problem, stabilisers, optimiser)}
    record = {t for t in (1, 10, 20, 50) if t < n_steps}
    weights = {name: train(arm, problem, inputs, record) for name, arm in arms.items()}
    naive = train_naive(problem, stabilisers, optimiser, inputs, record)
    counts = sorted(naive)
    differences = {"diff_steps": counts,
                   "batched_rel_diff": [relative_difference(weights["vmap"][t],
                                                            weights["batched"][t]) for t in counts],
                   "naive_rel_diff": [relative_difference(weights["vmap"][t], naive[t])
                                      for t in counts]}
    step_s = common.alternate({name: lambda arm=arm: train(arm, problem, inputs)
                               for name, arm in arms.items()}, rounds=rounds)
    full = mlp.batch_weights(problem.masks, None)

    def losses(arm):
        with torch.no_grad():
            for _ in range(n_steps):
                arm[2](problem.params, problem.X, problem.y, full)

    loss_s = common.alternate({name: lambda arm=arm: losses(arm) for name, arm in arms.items()},
                              rounds=rounds)
    return {"vmap_step_ms": 1e3 * step_s["vmap"] / n_steps,
            "batched_step_ms": 1e3 * step_s["batched"] / n_steps,
            "step_ratio": step_s["vmap"] / step_s["batched"],
            "vmap_loss_ms": 1e3 * loss_s["vmap"] / n_steps,
            "batched_loss_ms": 1e3 * loss_s["batched"] / n_steps,
            "loss_ratio": loss_s["vmap"] / loss_s["batched"], **differences}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seeds", type=int, default=N_SEEDS,
                        help="models = seeds x (S + 2 left-out sets); 30 seeds stand for three "
                             "strength-grid points in one call")
    parser.add_argument("--stabilisers", action="store_true",
                        help="also compare the two steps under every registered stabiliser")
    parser.add_argument("--dataset", action="store_true",
                        help="also on a real instability-grid dataset at the profiled shape")
    parser.add_argument("--json", action="store_true", help="print the result as one JSON line")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    started = time.process_time()
    result: dict = {"models": args.seeds * (1 + LEFT_OUT), "steps": args.steps, "shapes": {}}
    for shape, (depth, n_per_class) in SHAPES.items():
        result["shapes"][shape] = {"depth": depth, "n": 2 * n_per_class, **compare(
            problem_of(depth, n_per_class, (), n_seeds=args.seeds), (), args.steps, args.rounds)}
    if args.dataset:
        result["dataset"] = compare(dataset_problem((), n_seeds=args.seeds), (), args.steps,
                                    args.rounds)
    if args.stabilisers:
        depth, n_per_class = SHAPES["profiled"]
        result["stabilisers"] = {}
        for name, cls in sorted(STABILISERS.items()):
            stabilisers = (cls(),)
            result["stabilisers"][name] = compare(problem_of(depth, n_per_class, stabilisers,
                                                             n_seeds=args.seeds),
                                                  stabilisers, args.steps, max(args.rounds // 2, 1))
    result["cpu_s"] = time.process_time() - started
    common.report(result, args, describe)


def describe(result: dict) -> str:
    def line(label: str, row: dict) -> str:
        return (f"{label}: step vmap {row['vmap_step_ms']:.1f} ms, batched "
                f"{row['batched_step_ms']:.1f} ms ({row['step_ratio']:.2f}x); training loss "
                f"{row['vmap_loss_ms']:.1f} / {row['batched_loss_ms']:.1f} ms "
                f"({row['loss_ratio']:.2f}x); weights vs vmap after "
                f"{' / '.join(map(str, row['diff_steps']))} steps: batched "
                f"{' / '.join(f'{v:.0e}' for v in row['batched_rel_diff'])}, naive "
                f"{' / '.join(f'{v:.0e}' for v in row['naive_rel_diff'])}")

    lines = [f"M={result['models']} models, {result['steps']} steps, one thread "
             f"({result['cpu_s']:.0f} CPU s in all)"]
    lines += [line(f"{shape} (depth {row['depth']}, n {row['n']})", row)
              for shape, row in result["shapes"].items()]
    if "dataset" in result:
        lines.append(line("dataset (make_deep_finetuning_task depth 6, 16 per class)",
                          result["dataset"]))
    lines += [line(f"  {name}", row) for name, row in result.get("stabilisers", {}).items()]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
