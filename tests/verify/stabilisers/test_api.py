"""Contract tests every registered stabiliser must pass, generated from the registry.

Each test is parametrised over ``verify.stabilisers.STABILISERS`` (and over what each class declares:
its identity parameters, the trainers its record and hooks act on), so a stabiliser added as one
file is checked by all of them without a line here; its invalid parameters are generated from its
``parameter_constraints`` by ``tests/reliability/test_bad_input.py``.
"""
import inspect

import numpy as np
import pytest
import torch

from theory.context import RunContext
from theory.objective import training_objective
from verify.effects import TRAINERS, Effects, trainers_changed
from verify.run.network import FlatNetwork
from verify.run.train import mlp_penalties
from verify.stabilisers import STABILISERS, Stabiliser
from verify.stabilisers.base import HOOKS, StepContext
from verify.trainers import naive, naive_mlp
from verify.trainers.head import train_heads
from verify.trainers.mlp import ModelObjective, flat_weights, prepare_problem, train_mlp
from verify.trainers.quadratic import train_quadratic

THEORY_QUANTITIES = {"mu", "D", "D_encoder", "teacher_distance", "rho", "gamma_over_R", "init_variance",
                     "eta_T"}
NAMES = sorted(STABILISERS)
PER_STEP_HOOKS = ("draw", "perturb", "penalty", "transform_grads")


def _for_trainer(trainer):
    return [name for name in NAMES if trainer in STABILISERS[name].applies_to]


def _overrides(cls, hooks):
    return any(getattr(cls, hook) is not getattr(Stabiliser, hook) for hook in hooks)


def test_registry_holds_the_paper_methods():
    assert {"mmr", "mhloss", "surt"} <= set(STABILISERS)


@pytest.mark.parametrize("name", NAMES)
def test_declares_its_theory_targets_and_acts_on_some_trainer(name):
    cls = STABILISERS[name]
    assert issubclass(cls, Stabiliser) and cls.name == name
    assert cls.targets and set(cls.targets) <= THEORY_QUANTITIES
    assert cls.applies_to and cls.applies_to <= set(TRAINERS)
    assert isinstance(cls().effects(), Effects)
    assert set(cls.parameter_constraints) == set(inspect.signature(cls).parameters)


@pytest.mark.parametrize("name", NAMES)
def test_declares_a_small_strength_grid_around_its_default(name):
    cls = STABILISERS[name]
    (key, values), = cls.strength_grid.items()
    assert 2 <= len(values) <= 3 and list(values) == sorted(set(values))
    default = cls().params()[key]
    assert default in values  # the verdicts report the default beside the selected setting
    points = [cls(**point).params() for point in cls.grid_settings()]
    assert [point[key] for point in points] == list(values)
    assert all({k: v for k, v in point.items() if k != key}
               == {k: v for k, v in cls().params().items() if k != key} for point in points)


def test_grid_stands_for_plain_training_and_every_grid_point():
    from verify.sweep.cli import parse_stabilisers
    chosen = parse_stabilisers("grid")
    expected = [("none", {})] + [(name, cls(**point).params()) for name, cls in STABILISERS.items()
                                 for point in cls.grid_settings()]
    assert chosen == expected
    assert sum(name == "mmr" for name, _ in chosen) == 3
    assert parse_stabilisers("none,mmr:grid") == [("none", {})] + [
        ("mmr", STABILISERS["mmr"](**point).params()) for point in STABILISERS["mmr"].grid_settings()]
    # combined with 'all' (the defaults, which are grid points), each setting once
    both = parse_stabilisers("all,grid")
    assert len(both) == len(expected) and all(item in both for item in expected)


@pytest.mark.parametrize("name", NAMES)
def test_params_round_trip(name):
    stabiliser = STABILISERS[name]()
    rebuilt = STABILISERS[name].from_params(**stabiliser.params())
    assert rebuilt.params() == stabiliser.params()
    assert rebuilt.effects() == stabiliser.effects()
    with pytest.raises(ValueError, match="unknown parameter"):
        STABILISERS[name].from_params(no_such_parameter=1)


def test_applicability_follows_the_record_and_the_hooks():
    assert trainers_changed(Effects(), hooks=False) == frozenset()
    assert trainers_changed(Effects(), hooks=True) == {"mlp"}
    for name in NAMES:
        cls = STABILISERS[name]
        expected = trainers_changed(cls().effects(), hooks=_overrides(cls, HOOKS))
        assert cls.applies_to == expected


# ------------------------------------------------------------------- batched == naive ----------

@pytest.mark.parametrize("batch_size", [None, 3])
@pytest.mark.parametrize("name", _for_trainer("mlp"))
def test_batched_equals_naive_on_the_mlp_trainer(name, batch_size, tiny_task):
    model, pretrained, X, y = tiny_task
    masks = np.ones((4, len(X)))
    masks[1, 0] = masks[3, 5] = 0
    kwargs = dict(masks=masks, seeds=[3, 3, 8, 8], lr=0.3, n_steps=4, checkpoints=[0, 1, 4],
                  batch_size=batch_size, stabilisers=(STABILISERS[name](),))
    batched = train_mlp(model, pretrained, X, y, **kwargs)
    looped = naive_mlp.train_mlp(model, pretrained, X, y, **kwargs)
    assert batched.weights.keys() == looped.weights.keys()
    for key in batched.weights:
        np.testing.assert_allclose(batched.weights[key], looped.weights[key], rtol=0, atol=1e-10)
    np.testing.assert_allclose(batched.train_loss, looped.train_loss, rtol=0, atol=1e-10)


def _linear_data():
    rng = np.random.default_rng(4)
    X = rng.normal(size=(10, 3))
    return X, (X[:, 0] > 0).astype(np.int64), X @ np.array([1.0, -0.5, 0.2])


@pytest.mark.parametrize("name", _for_trainer("head"))
def test_batched_equals_naive_on_the_head_trainer(name):
    X, y, _ = _linear_data()
    heads = STABILISERS[name]().effects().heads
    kwargs = dict(masks=np.ones((2, len(X))), init="random", loss="logistic", lr=0.5, n_steps=5,
                  checkpoints=[0, 5], seeds=[1, 2], n_heads=heads.n_heads,
                  head_reduction=heads.fixed_features_reduction)
    batched, looped = train_heads(X, y, **kwargs), naive.train_heads(X, y, **kwargs)
    np.testing.assert_allclose(batched.weights["w"], looped.weights["w"], rtol=0, atol=1e-10)


@pytest.mark.parametrize("name", _for_trainer("quadratic"))
def test_batched_equals_naive_on_the_least_squares_trainer(name):
    X, _, targets = _linear_data()
    l2sp, weight_decay = STABILISERS[name]().effects().quadratic_penalties()
    kwargs = dict(masks=np.ones((2, len(X))), w0=np.ones(3), lr=0.1, n_steps=5, checkpoints=[0, 5],
                  l2sp=l2sp, weight_decay=weight_decay)
    batched, looped = train_quadratic(X, targets, **kwargs), naive.train_quadratic(X, targets, **kwargs)
    np.testing.assert_allclose(batched.weights["w"], looped.weights["w"], rtol=0, atol=1e-10)


# --------------------------------------------------------------- identity == plain, bitwise -----

IDENTITIES = [name for name in NAMES if STABILISERS[name].identity_params is not None]


def test_identity_parameters_are_valid_parameters():
    for name in IDENTITIES:
        STABILISERS[name].from_params(**STABILISERS[name].identity_params)


@pytest.mark.parametrize("name", IDENTITIES)
def test_identity_parameters_train_exactly_as_plain(name, tiny_task, mlp_dataset, quadratic_dataset,
                                                    separable_dataset):
    from verify.run.train import TRAINERS as TASK_TRAINERS
    stabiliser = STABILISERS[name].from_params(**STABILISERS[name].identity_params)
    for trainer, (dataset, config) in {"mlp": mlp_dataset, "quadratic": quadratic_dataset,
                                       "head": separable_dataset}.items():
        if trainer not in type(stabiliser).applies_to:
            continue
        layout, masks = _layout(dataset, config)
        plain = TASK_TRAINERS[trainer](config, dataset, None, layout, masks)
        other = TASK_TRAINERS[trainer](config, dataset, stabiliser, layout, masks)
        assert other.lr == plain.lr and other.n_steps == plain.n_steps, trainer
        np.testing.assert_array_equal(other.weights, plain.weights, err_msg=trainer)
        np.testing.assert_array_equal(other.train_loss, plain.train_loss, err_msg=trainer)


def _layout(dataset, config):
    from verify.run.layout import choose_left_out, model_layout
    from verify.run.task import Task
    n = len(dataset.X)
    layout = model_layout(Task(dataset.id, config, seeds=(0, 1)),
                          choose_left_out(dataset.id, n, np.empty(0, dtype=np.int64), budget=2).samples)
    return layout, layout.masks(n)


# --------------------------------------------- the penalty trained == the penalty the theory uses --

def _problem(tiny_task, stabiliser):
    model, pretrained, X, y = tiny_task
    return prepare_problem(model, pretrained, torch.as_tensor(X), torch.as_tensor(y),
                           masks=torch.ones(1, len(X), dtype=torch.float64), seeds=np.array([0]),
                           stabilisers=(stabiliser,))


@pytest.mark.parametrize("name", _for_trainer("mlp"))
def test_the_penalty_the_trainer_minimises_is_the_one_the_theory_uses(name, tiny_task):
    """At random weights and sample weights: (trainer's objective - its data loss - the hooks'
    penalties) equals (the theory's training objective - its data loss). The theory side reads the
    record through the run layer's RunContext fields (:func:`verify.run.train.mlp_penalties`)."""
    model, pretrained, X, y = tiny_task
    stabiliser = STABILISERS[name]()
    problem = _problem(tiny_task, stabiliser)
    objective = ModelObjective(problem, "softmax", (stabiliser,))
    network = FlatNetwork.of(model, "softmax")
    start = {name_: np.zeros(shape) for name_, shape in zip(network.names, network.shapes, strict=True)}
    start.update(pretrained)
    data = network.objective(X, y)
    rng = np.random.default_rng(7)
    for _ in range(3):
        point = {key: torch.as_tensor(rng.normal(size=tuple(value.shape[1:])))
                 for key, value in problem.params.items()}
        if problem.n_heads > 1:  # every head at the same point: the theory's one (mean) head
            point = {key: value[0].expand(value.shape) if problem.groups[key] == "head" else value
                     for key, value in point.items()}
        sample_weights = torch.as_tensor(rng.random(len(X)))
        weights = sample_weights / sample_weights.sum()
        noises = (stabiliser.draw(problem, len(X), torch.Generator().manual_seed(1)),)
        total, data_part = objective.objective(point, torch.as_tensor(X), torch.as_tensor(y),
                                               weights, noises)
        ctx = StepContext(x=torch.as_tensor(X), y=torch.as_tensor(y), weights=weights,
                          reference=problem.reference, layers=problem.layers, groups=problem.groups,
                          encode=objective.network.encode, noise=noises[0])
        forward = stabiliser.perturb(point, ctx)
        from dataclasses import replace
        ctx = replace(ctx, forward_params=forward,
                      features=objective.network.encode(forward, torch.as_tensor(X)))
        hooks = float(stabiliser.penalty(point, ctx))
        trainer_penalty = float(total - data_part) - hooks
        single = {key: value[0] if problem.groups[key] == "head" else value
                  for key, value in point.items()}
        w = torch.as_tensor(network.flatten({key: value.numpy() for key, value in single.items()},
                                            lead=0))
        run = RunContext(setting="full", model="mlp", loss="softmax", X=X, y=y, left_out=0, lr=0.1,
                         iteration=1, batch_size=None, w0=w.numpy(), w_full=w.numpy(), w_loo=w.numpy(),
                         objective=data, **mlp_penalties(network, start, stabiliser.effects()))
        theory_penalty = float(training_objective(run)(w, sample_weights) - data(w, sample_weights))
        decay = stabiliser.effects().weight_decay
        # Decoupled decay is not in the trained loss: its penalty is the gradient the trainer adds.
        decoupled = 0.5 * decay.strength * sum(float((single[key] ** 2).sum()) for key in single
                                               if problem.groups[key] in decay.groups)
        assert trainer_penalty + decoupled == pytest.approx(theory_penalty, rel=1e-12, abs=1e-12)


@pytest.mark.parametrize("name", [name for name in _for_trainer("mlp")
                                  if not _overrides(STABILISERS[name], PER_STEP_HOOKS)
                                  and STABILISERS[name]().effects().heads.n_heads == 1])
def test_a_gd_step_descends_the_theory_objective(name, tiny_task):
    """Where the record says everything a step does (no per-step hook, one head), the trainer's GD
    step is -lr times the gradient of the theory's training objective, decay included."""
    model, pretrained, X, y = tiny_task
    stabiliser = STABILISERS[name]()
    trace = train_mlp(model, pretrained, X, y, masks=np.ones((1, len(X))), seeds=[0], lr=0.1,
                      n_steps=1, checkpoints=[0, 1], stabilisers=(stabiliser,))
    network = FlatNetwork.of(model, "softmax")
    flat = flat_weights(trace.weights, model)
    start = {key: np.zeros(shape) for key, shape in zip(network.names, network.shapes, strict=True)}
    start.update(pretrained)
    run = RunContext(setting="full", model="mlp", loss="softmax", X=X, y=y, left_out=0, lr=0.1,
                     iteration=1, batch_size=None, w0=flat[0, 0], w_full=flat[0, 0], w_loo=flat[0, 0],
                     objective=network.objective(X, y),
                     **mlp_penalties(network, start, stabiliser.effects()))
    w = torch.tensor(flat[0, 0], requires_grad=True)
    (gradient,) = torch.autograd.grad(training_objective(run)(w, torch.ones(len(X),
                                                                            dtype=torch.float64)), w)
    np.testing.assert_allclose((flat[0, 0] - flat[1, 0]) / 0.1, gradient.numpy(), rtol=1e-9,
                               atol=1e-12)


def test_small_lr_long_keeps_eta_t_and_lands_near_the_same_point(tiny_task):
    model, pretrained, X, y = tiny_task
    small = STABILISERS["small_lr_long"](factor=4)
    assert small.effects().schedule.apply(0.8, 25) == (0.2, 100)
    kwargs = dict(masks=np.ones((1, len(X))), seeds=[0])
    coarse = train_mlp(model, pretrained, X, y, lr=0.8, n_steps=25, checkpoints=[0, 25], **kwargs)
    lr, n_steps = small.effects().schedule.apply(0.8, 25)
    fine = train_mlp(model, pretrained, X, y, lr=lr, n_steps=n_steps, checkpoints=[n_steps], **kwargs)
    start, end = coarse.weights["head.weight"]
    travelled = np.linalg.norm(end - start)
    apart = np.linalg.norm(end - fine.weights["head.weight"][-1])
    assert apart < 0.1 * travelled  # same eta*T: both follow the same gradient flow
    assert fine.train_loss[-1, 0] == pytest.approx(coarse.train_loss[-1, 0], rel=0.1)
