"""Few-sample fine-tuning tasks for a deep, normalised, really pre-trained backbone.

The family where plain fine-tuning is unstable for the reasons the literature gives (few samples
per class, a deeper pre-trained backbone with normalisation, a freshly initialised head; the
training knobs, dropout and AdamW with or without bias correction, warm-up, live in the training
configs), and whose teacher can be tied to the target distribution (SURT's premise).

Construction, in order, all from ``random_state`` except the pre-training (``pretrain_seed``):

1. Source inputs ``z A + noise e`` (latent factors, :func:`synth.mlp.latent_factor_inputs`); the
   backbone (:mod:`synth.deep_backbone`, ``depth`` blocks Linear-LayerNorm-Tanh) is pre-trained
   on ``n_source`` of them by masked-feature reconstruction and cached by content hash.
2. Target inputs use the mixing ``(A + domain_shift B) / sqrt(1 + domain_shift^2)``, fresh B.
3. Teacher backbone. ``"target_adapted"``: the pre-trained backbone after ``adapt_steps`` more
   steps of the same self-supervised objective on ``n_teacher_pool`` unlabelled target inputs, so
   that the target task's optimum lies toward the target-adapted backbone; then moved by
   ``distance`` in a uniformly random direction (0 by default). ``"random_direction"`` (the null
   control): the pre-trained backbone moved by the same length as the target adaptation, plus
   ``distance``, in a uniformly random direction: unrelated to the target inputs.
4. A random ``N(0, 1/width)`` linear head on the teacher's features, its bias balancing the
   classes on a pool of target inputs; labels are the argmax; ``n_per_class`` training and
   ``n_test // n_classes`` test points per class.
5. An unlabelled target pool (``target_pool``, ``n_pool`` fresh target inputs, disjoint draws from
   the teacher's pool and the labelled points) for self-supervised re-training (SURT).
"""
from __future__ import annotations

from numbers import Integral, Real

import numpy as np

from synth.dataset import Dataset, base_card
from synth.pretrained import _balancing_bias
from synth.validation import (MAX_MAGNITUDE, SEED_BOUND, Constraint, Derived, Interval, Options,
                              RandomState, check_random_state, validate_params)

TEACHERS = ("target_adapted", "random_direction")
TEACHER_LABELS = {"target_adapted": "target-adapted",
                  "random_direction": "random-direction (null control)"}
MAX_POOL_FACTOR = 64
MAX_DEPTH = 12

PARAMETER_CONSTRAINTS: dict[str, list[Constraint]] = {
    "n_per_class": [Interval(Integral, 1, None)],
    "n_features": [Interval(Integral, 2, None)],
    "depth": [Interval(Integral, 1, MAX_DEPTH)],
    "width": [Interval(Integral, 2, None)],
    "n_classes": [Interval(Integral, 2, None)],
    "teacher": [Options(TEACHERS)],
    "distance": [Interval(Real, 0.0, MAX_MAGNITUDE)],
    "adapt_steps": [Interval(Integral, 1, None)],
    "n_teacher_pool": [Interval(Integral, 2, None)],
    "n_pool": [Interval(Integral, 1, None)],
    "domain_shift": [Interval(Real, 0.0, MAX_MAGNITUDE)],
    "latent_dim": [Interval(Integral, 1, Derived("n_features", lambda p: p["n_features"]))],
    "source_noise": [Interval(Real, 0.0, MAX_MAGNITUDE)],
    "n_source": [Interval(Integral, 2, None)],
    "pretrain_steps": [Interval(Integral, 1, None)],
    "pretrain_lr": [Interval(Real, 0.0, MAX_MAGNITUDE, "right")],
    "mask_rate": [Interval(Real, 0.0, 1.0, "neither")],
    "pretrain_seed": [Interval(Integral, 0, SEED_BOUND - 1)],
    "n_test": [Interval(Integral, Derived("n_classes", lambda p: p["n_classes"]), None)],
    "random_state": [RandomState()],
}


def make_deep_finetuning_task(n_per_class: int = 8, n_features: int = 16, *, depth: int = 4,
                              width: int = 32, n_classes: int = 2,
                              teacher: str = "target_adapted", distance: float = 0.0,
                              adapt_steps: int = 100, n_teacher_pool: int = 1024,
                              n_pool: int = 512, domain_shift: float = 0.5,
                              latent_dim: int = 4, source_noise: float = 0.1,
                              n_source: int = 2048, pretrain_steps: int = 400,
                              pretrain_lr: float = 1e-2, mask_rate: float = 0.25,
                              pretrain_seed: int = 0, n_test: int = 256,
                              random_state=None) -> Dataset:
    """Generate a few-sample task for fine-tuning a deep LayerNorm backbone (module docstring).

    Parameters
    ----------
    n_per_class : int, default=8
        Labelled training points per class, at least 1.
    n_features : int, default=16
        Input dimension, at least 2.
    depth : int, default=4
        Backbone blocks (Linear, LayerNorm, Tanh, dropout site), in [1, 12] (``MAX_DEPTH``).
    width : int, default=32
        Features per block, at least 2.
    n_classes : int, default=2
        At least 2.
    teacher : {"target_adapted", "random_direction"}, default="target_adapted"
        The teacher backbone (step 3); ``"random_direction"`` is the null control.
    distance : float, default=0.0
        Extra random move of the teacher backbone, in [0, 1e50].
    adapt_steps : int, default=100
        Self-supervised steps of the target adaptation, at least 1.
    n_teacher_pool : int, default=1024
        Unlabelled target inputs of the teacher's adaptation, at least 2.
    n_pool : int, default=512
        Unlabelled target inputs handed to the task (``target_pool``), at least 1.
    domain_shift : float, default=0.5
        Source-to-target shift of the input mixing, in [0, 1e50].
    latent_dim : int, default=4
        Latent factors, in [1, n_features].
    source_noise : float, default=0.1
        Feature noise of every input, in [0, 1e50].
    n_source : int, default=2048
        Pre-training inputs, at least 2.
    pretrain_steps : int, default=400
        Full-batch Adam steps of pre-training, at least 1.
    pretrain_lr : float, default=1e-2
        Adam learning rate of pre-training and of the teacher's adaptation, in (0, 1e50].
    mask_rate : float, default=0.25
        Fraction of input entries hidden per self-supervised step, in (0, 1).
    pretrain_seed : int, default=0
        Seed of the source distribution and the pre-training, in [0, 2**64).
    n_test : int, default=256
        Held-out points, at least ``n_classes`` (``n_test // n_classes`` per class).
    random_state : int, numpy.random.Generator or None, default=None
        Seed of everything after pre-training.

    Returns
    -------
    Dataset
        Kind ``"deep_mlp"``; arrays ``w0.encoder.*``, ``w0.decoder.*`` (pre-trained),
        ``teacher.encoder.*``, ``teacher.head.*``, ``target_pool`` (n_pool, n_features).

    Raises
    ------
    ValueError
        If a parameter is outside its declared range (``PARAMETER_CONSTRAINTS``); the message
        names it.
    """
    params = dict(n_per_class=n_per_class, n_features=n_features, depth=depth, width=width,
                  n_classes=n_classes, teacher=teacher, distance=distance,
                  adapt_steps=adapt_steps, n_teacher_pool=n_teacher_pool, n_pool=n_pool,
                  domain_shift=domain_shift, latent_dim=latent_dim, source_noise=source_noise,
                  n_source=n_source, pretrain_steps=pretrain_steps, pretrain_lr=pretrain_lr,
                  mask_rate=mask_rate, pretrain_seed=pretrain_seed, n_test=n_test,
                  random_state=random_state)
    checked = validate_params(PARAMETER_CONSTRAINTS, params)
    (n_per_class, n_features, depth, width, n_classes, distance, adapt_steps, n_teacher_pool,
     n_pool, domain_shift, latent_dim, source_noise, n_source, pretrain_steps, pretrain_lr,
     mask_rate, pretrain_seed, n_test) = (checked[name] for name in (
        "n_per_class", "n_features", "depth", "width", "n_classes", "distance", "adapt_steps",
        "n_teacher_pool", "n_pool", "domain_shift", "latent_dim", "source_noise", "n_source",
        "pretrain_steps", "pretrain_lr", "mask_rate", "pretrain_seed", "n_test"))
    seed, rng = check_random_state(random_state)
    params["random_state"] = seed

    # Imported here so that validating a grid does not load torch.
    import torch

    from synth import deep_backbone, mlp

    architecture = {"family": deep_backbone.FAMILY, "n_features": n_features, "width": width,
                    "depth": depth, "n_classes": n_classes}
    spec = deep_backbone.deep_pretraining_spec(
        architecture, n_source=n_source, latent_dim=latent_dim, source_noise=source_noise,
        n_steps=pretrain_steps, lr=pretrain_lr, mask_rate=mask_rate, seed=pretrain_seed)
    pretrained, source_mixing, losses = deep_backbone.pretrained_deep_backbone(spec)
    target_mixing = ((source_mixing + domain_shift * mlp.source_mixing(n_features, latent_dim, rng))
                     / np.sqrt(1.0 + domain_shift**2))

    def target_inputs(count):
        return mlp.latent_factor_inputs(target_mixing, count, noise=source_noise, rng=rng)

    teacher_pool = target_inputs(n_teacher_pool)
    adaptation = deep_backbone.pretrain_deep(pretrained, teacher_pool, architecture=architecture,
                                             n_steps=adapt_steps, lr=pretrain_lr,
                                             mask_rate=mask_rate, random_state=rng)
    names = deep_backbone.backbone_param_names(architecture)
    w0 = np.concatenate([pretrained[name].ravel() for name in names])
    adapted = np.concatenate([adaptation.params[name].ravel() for name in names])
    adaptation_move = adapted - w0
    if teacher == "random_direction":
        direction = rng.standard_normal(w0.size)
        move = np.linalg.norm(adaptation_move) * direction / np.linalg.norm(direction)
    else:
        move = adaptation_move
    extra = rng.standard_normal(w0.size)
    teacher_flat = w0 + move + distance * extra / np.linalg.norm(extra)
    sizes = [pretrained[name].size for name in names]
    teacher_params = {name: piece.reshape(pretrained[name].shape) for name, piece in
                      zip(names, np.split(teacher_flat, np.cumsum(sizes)[:-1]))}

    encoder = deep_backbone.build_deep_model(architecture).encoder
    encoder.load_state_dict({key.removeprefix("encoder."): torch.as_tensor(value)
                             for key, value in teacher_params.items()})
    teacher_params["head.weight"] = rng.standard_normal((n_classes, width)) / np.sqrt(width)
    n_test_per_class = n_test // n_classes
    needed = n_per_class + n_test_per_class
    pool_size = 4 * needed * n_classes
    while True:
        inputs = target_inputs(pool_size)
        with torch.no_grad():
            features = encoder(torch.as_tensor(inputs)).numpy()
        logits = features @ teacher_params["head.weight"].T
        teacher_params["head.bias"] = _balancing_bias(logits)
        labels = np.argmax(logits + teacher_params["head.bias"], axis=1)
        members = [np.flatnonzero(labels == c) for c in range(n_classes)]
        if all(len(m) >= needed for m in members):
            break
        if pool_size >= MAX_POOL_FACTOR * needed * n_classes:
            raise RuntimeError(f"the teacher labels almost no target input with some class "
                               f"(pool of {pool_size}); try another random_state")
        pool_size *= 2
    train = rng.permutation(np.concatenate([m[:n_per_class] for m in members]))
    test = rng.permutation(np.concatenate([m[n_per_class:needed] for m in members]))
    target_pool = target_inputs(n_pool)

    X, y, X_test, y_test = inputs[train], labels[train], inputs[test], labels[test]
    card = base_card(kind="deep_mlp", generator=make_deep_finetuning_task, params=params, seed=seed,
                     X=X, y=y, X_test=X_test, n_classes=n_classes)
    teacher_from_adapted = float(np.linalg.norm(teacher_flat - adapted))
    card.update({
        "architecture": architecture,
        "pretraining": {**spec, **losses},
        "domain_shift": domain_shift,
        "n_per_class": n_per_class,
        "teacher": TEACHER_LABELS[teacher],
        "teacher_construction": (
            "pre-trained backbone after self-supervised adaptation to a pool of unlabelled "
            "target inputs, moved by `distance` in a uniformly random direction"
            if teacher == "target_adapted" else
            "pre-trained backbone moved by the target adaptation's length in a uniformly random "
            "direction, plus `distance`: unrelated to the target inputs (null control)")
        + "; random N(0, 1/width) linear head whose bias gives each class an equal share of "
          "target inputs; labels are the argmax of its logits",
        "distance": float(np.linalg.norm(teacher_flat - w0)),
        "adaptation_distance": float(np.linalg.norm(adaptation_move)),
        "teacher_distance_from_adapted": teacher_from_adapted,
        "teacher_adaptation": {"objective": mlp.OBJECTIVE, "n_pool": n_teacher_pool,
                               "n_steps": adapt_steps, "lr": pretrain_lr,
                               "initial_loss": adaptation.initial_loss,
                               "final_loss": adaptation.final_loss},
        "target_pool": {"n_samples": n_pool, "distribution": "target latent-factor Gaussian "
                        "(the labelled inputs' distribution), unlabelled, drawn independently "
                        "of the labelled points and of the teacher's adaptation pool"},
        "majority_accuracy": float(np.bincount(y_test).max() / len(y_test)),
    })
    arrays = {**{f"w0.{name}": value for name, value in pretrained.items()},
              **{f"teacher.{name}": value for name, value in teacher_params.items()},
              "target_pool": target_pool}
    return Dataset(X=X, y=y, X_test=X_test, y_test=y_test, card=card, arrays=arrays)
