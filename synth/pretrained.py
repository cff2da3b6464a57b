"""Fine-tuning tasks for a really pre-trained MLP backbone with a teacher at a controlled distance."""
from __future__ import annotations

from numbers import Integral, Real

import numpy as np
import scipy.optimize
import scipy.special

from synth.dataset import Dataset, base_card
from synth.validation import (MAX_MAGNITUDE, SEED_BOUND, Constraint, Derived, Interval, Options,
                              RandomState, Vector, check_fits_in_memory, check_random_state,
                              split_counts, validate_params)

# The teacher's labels are balanced by sampling per class from a pool of target inputs; the pool
# grows until every class has enough members, up to this many times the number needed.
MAX_POOL_FACTOR = 64
# Temperature of the soft class shares (times the logits' std) used to balance the classes.
BALANCING_TEMPERATURE = 0.01

PARAMETER_CONSTRAINTS: dict[str, list[Constraint]] = {
    "n_classes": [Interval(Integral, 2, None)],
    "n_samples": [Interval(Integral, Derived("max(2, n_classes)",
                                             lambda p: max(2, p["n_classes"])), None)],
    "n_features": [Interval(Integral, 1, None)],
    "distance": [Interval(Real, 0.0, MAX_MAGNITUDE)],
    "hidden": [Vector(Interval(Integral, 1, None), min_length=1)],
    "domain_shift": [Interval(Real, 0.0, MAX_MAGNITUDE)],
    "latent_dim": [Options((None,)),
                   Interval(Integral, 1, Derived("n_features", lambda p: p["n_features"]))],
    "source_noise": [Interval(Real, 0.0, MAX_MAGNITUDE)],
    "n_source": [Interval(Integral, 2, None)],
    "pretrain_steps": [Interval(Integral, 1, None)],
    "pretrain_lr": [Interval(Real, 0.0, MAX_MAGNITUDE, "right")],
    "mask_rate": [Interval(Real, 0.0, 1.0, "neither")],
    "pretrain_seed": [Interval(Integral, 0, SEED_BOUND - 1)],
    "n_test": [Interval(Integral, 1, None)],
    "random_state": [RandomState()],
}


def estimated_bytes(*, n_samples: int, n_features: int, hidden: list[int], n_classes: int,
                    n_source: int, n_test: int) -> float:
    """Peak memory of ``make_pretrained_mlp_task``: the weights with their gradients, Adam
    moments and flat copies; pre-training activations; the first pool of target inputs."""
    widths = [n_features, *hidden]
    weights = (sum((fan_in + 1) * fan_out for fan_in, fan_out in zip(widths[:-1], widths[1:]))
               + (hidden[-1] + 1) * (n_features + n_classes))
    activations = n_source * (2 * n_features + sum(hidden))
    pool = 4 * (n_samples + n_test) * (n_features + sum(hidden) + n_classes)
    return 8.0 * (10 * weights + 4 * activations + 3 * pool)


def make_pretrained_mlp_task(n_samples: int = 64, n_features: int = 8, *, distance: float,
                             hidden=(16, 16), n_classes: int = 2, domain_shift: float = 0.5,
                             latent_dim: int | None = None, source_noise: float = 0.1,
                             n_source: int = 1024, pretrain_steps: int = 300,
                             pretrain_lr: float = 1e-2, mask_rate: float = 0.25,
                             pretrain_seed: int = 0, n_test: int = 256,
                             random_state=None) -> Dataset:
    """Generate a classification task for fine-tuning a pre-trained tanh MLP backbone.

    Source distribution: latent-factor Gaussian inputs ``z A + source_noise * e`` with
    ``latent_dim`` factors (``A`` drawn from ``pretrain_seed``). The backbone is pre-trained on
    ``n_source`` of them by masked-feature reconstruction (``synth.mlp.pretrain``; cached on disk
    by a hash of every pre-training parameter, so tasks with the same pre-training share it).
    Target inputs use the mixing ``(A + domain_shift * B) / sqrt(1 + domain_shift^2)`` with a
    fresh ``B``. The teacher backbone is the pre-trained one moved by exactly ``distance`` (in
    the Euclidean norm over all backbone parameters) in a uniformly random direction, topped by
    a random linear head whose bias gives every class about an equal share of target inputs;
    labels are the teacher's argmax, and class counts are exactly balanced (largest remainder)
    by sampling inputs per class.

    Parameters
    ----------
    n_samples : int, default=64
        Training points, at least ``max(2, n_classes)``.
    n_features : int, default=8
        Input dimension, at least 1.
    distance : float
        delta = ||teacher backbone - pre-trained backbone||, in ``[0, 1e50]``.
    hidden : sequence of int, default=(16, 16)
        Widths of the encoder's hidden layers (at least one layer, each width at least 1).
    n_classes : int, default=2
        At least 2.
    domain_shift : float, default=0.5
        How far the target input distribution is from the source one, in ``[0, 1e50]``.
    latent_dim : int, default=None
        Number of latent factors, in ``[1, n_features]``; ``None`` means
        ``max(1, n_features // 4)``.
    source_noise : float, default=0.1
        Feature noise of source and target inputs, in ``[0, 1e50]``.
    n_source : int, default=1024
        Pre-training inputs, at least 2.
    pretrain_steps : int, default=300
        Full-batch Adam steps of pre-training, at least 1.
    pretrain_lr : float, default=1e-2
        Adam learning rate of pre-training, in ``(0, 1e50]``; a rate at which the
        pre-training loss does not decrease is refused.
    mask_rate : float, default=0.25
        Fraction of input entries hidden per pre-training step, in (0, 1).
    pretrain_seed : int, default=0
        Seed of the source distribution, the initial weights and the masks, in [0, 2**64).
    n_test : int, default=256
        Held-out points (also class-balanced), at least 1.
    random_state : int, numpy.random.Generator or None, default=None
        Seed of the target task (target distribution, teacher, samples).

    Returns
    -------
    Dataset
        Kind ``"mlp"``; arrays ``w0.encoder.*`` and ``w0.decoder.*`` (pre-trained weights),
        ``teacher.encoder.*``, ``teacher.head.weight``, ``teacher.head.bias``.

    Raises
    ------
    ValueError
        If a parameter is outside its allowed range (the message names it), or if pre-training
        did not reduce its loss (a diverged pre-training is refused, not recorded).
    """
    params = dict(n_samples=n_samples, n_features=n_features, distance=distance, hidden=hidden,
                  n_classes=n_classes, domain_shift=domain_shift, latent_dim=latent_dim,
                  source_noise=source_noise, n_source=n_source, pretrain_steps=pretrain_steps,
                  pretrain_lr=pretrain_lr, mask_rate=mask_rate, pretrain_seed=pretrain_seed,
                  n_test=n_test, random_state=random_state)
    checked = validate_params(PARAMETER_CONSTRAINTS, params)
    (n_classes, n_samples, n_features, distance, domain_shift, source_noise, n_source,
     pretrain_steps, pretrain_lr, mask_rate, pretrain_seed, n_test) = (
        checked[name] for name in ("n_classes", "n_samples", "n_features", "distance",
                                   "domain_shift", "source_noise", "n_source", "pretrain_steps",
                                   "pretrain_lr", "mask_rate", "pretrain_seed", "n_test"))
    widths = [int(width) for width in checked["hidden"]]
    latent_dim = max(1, n_features // 4) if latent_dim is None else checked["latent_dim"]
    check_fits_in_memory(
        estimated_bytes(n_samples=n_samples, n_features=n_features, hidden=widths,
                        n_classes=n_classes, n_source=n_source, n_test=n_test),
        f"make_pretrained_mlp_task with n_features={n_features}, hidden={widths}, "
        f"n_source={n_source}, n_samples={n_samples}")
    seed, rng = check_random_state(random_state)
    params["random_state"] = seed

    # Imported here so that validating a grid (and `ftstab synth --list`) does not load torch.
    import torch

    from synth import mlp

    architecture = {"n_features": n_features, "hidden": widths, "n_classes": n_classes}
    spec = mlp.pretraining_spec(architecture, n_source=n_source, latent_dim=latent_dim,
                                source_noise=source_noise, n_steps=pretrain_steps, lr=pretrain_lr,
                                mask_rate=mask_rate, seed=pretrain_seed)
    pretrained, source_mixing, losses = mlp.pretrained_backbone(spec)
    if not losses["final_loss"] < losses["initial_loss"]:  # also catches NaN
        raise ValueError(f"pretrain_lr={pretrain_lr:g}, pretrain_steps={pretrain_steps}: "
                         f"pre-training did not reduce its masked-reconstruction loss (initial "
                         f"{losses['initial_loss']:.4g}, final {losses['final_loss']:.4g}); use "
                         f"a smaller pretrain_lr")

    target_mixing = ((source_mixing + domain_shift * mlp.source_mixing(n_features, latent_dim, rng))
                     / np.sqrt(1.0 + domain_shift**2))
    names = mlp.backbone_param_names(architecture)
    w0 = np.concatenate([pretrained[name].ravel() for name in names])
    direction = rng.standard_normal(w0.size)
    teacher_flat = w0 + distance * direction / np.linalg.norm(direction)
    teacher = _unflatten(teacher_flat, {name: pretrained[name].shape for name in names})

    encoder = mlp.build_model(architecture).encoder
    encoder.load_state_dict({key.removeprefix("encoder."): torch.as_tensor(value)
                             for key, value in teacher.items()})
    teacher["head.weight"] = rng.standard_normal((n_classes, widths[-1])) / np.sqrt(widths[-1])
    train_counts = split_counts(n_samples, np.ones(n_classes))
    test_counts = split_counts(n_test, np.ones(n_classes))
    needed = train_counts + test_counts
    pool_size = 4 * int(needed.sum())
    while True:
        pool = mlp.latent_factor_inputs(target_mixing, pool_size, noise=source_noise, rng=rng)
        with torch.no_grad():
            features = encoder(torch.as_tensor(pool)).numpy()
        logits = features @ teacher["head.weight"].T
        teacher["head.bias"] = _balancing_bias(logits)
        labels = np.argmax(logits + teacher["head.bias"], axis=1)
        members = [np.flatnonzero(labels == c) for c in range(n_classes)]
        if all(len(m) >= k for m, k in zip(members, needed)):
            break
        if pool_size >= MAX_POOL_FACTOR * needed.sum():
            raise RuntimeError(f"the teacher labels almost no target input with some class "
                               f"(pool of {pool_size}); try another random_state")
        pool_size *= 2
    train = rng.permutation(np.concatenate([m[:k] for m, k in zip(members, train_counts)]))
    test = rng.permutation(np.concatenate(
        [m[k:k + t] for m, k, t in zip(members, train_counts, test_counts)]))

    X, y, X_test, y_test = pool[train], labels[train], pool[test], labels[test]
    card = base_card(kind="mlp", generator=make_pretrained_mlp_task, params=params, seed=seed,
                     X=X, y=y, X_test=X_test, n_classes=n_classes)
    card.update({
        "distance_requested": distance,
        "distance": float(np.linalg.norm(teacher_flat - w0)),
        "architecture": architecture,
        "pretraining": {**spec, **losses},
        "domain_shift": domain_shift,
        "teacher": "pre-trained backbone moved by `distance` in a uniformly random direction, "
                   "random N(0, 1/h) linear head whose bias gives each class an equal share of "
                   "a pool of target inputs; labels are the argmax of its logits",
    })
    arrays = {**{f"w0.{name}": value for name, value in pretrained.items()},
              **{f"teacher.{name}": value for name, value in teacher.items()}}
    return Dataset(X=X, y=y, X_test=X_test, y_test=y_test, card=card, arrays=arrays)


def _balancing_bias(logits: np.ndarray) -> np.ndarray:
    """Head bias under which each class wins about an equal share of the pool.

    Minimises the convex dual of entropy-regularised balanced assignment,
    ``tau * sum_i logsumexp((logits_i + b) / tau) - (n / C) sum_c b_c``, whose gradient is the
    soft class shares minus ``n / C``; a small temperature ``tau`` makes the hard argmax shares
    nearly equal.
    """
    n, n_classes = logits.shape
    temperature = BALANCING_TEMPERATURE * logits.std()

    def objective(bias):
        scaled = (logits + bias) / temperature
        value = (temperature * scipy.special.logsumexp(scaled, axis=1).sum()
                 - n / n_classes * bias.sum())
        gradient = scipy.special.softmax(scaled, axis=1).sum(axis=0) - n / n_classes
        return value / n, gradient / n

    return scipy.optimize.minimize(objective, -logits.mean(axis=0), jac=True,
                                   method="L-BFGS-B").x


def _unflatten(flat: np.ndarray, shapes: dict[str, tuple[int, ...]]) -> dict[str, np.ndarray]:
    sizes = [int(np.prod(shape)) for shape in shapes.values()]
    pieces = np.split(flat, np.cumsum(sizes)[:-1])
    return {name: piece.reshape(shape) for (name, shape), piece in zip(shapes.items(), pieces)}
