"""Linearly separable classification data whose max-margin solution is known by construction.

Binary case (labels 0/1, signed labels s = 2y - 1, signed points z = s x). The hard-margin SVM
without bias, min ||w||^2 subject to z_i . w >= 1, is strictly convex, so its solution is unique, and
by its KKT conditions w = u*/gamma is that solution iff u*/gamma = sum_j lambda_j z_j with
lambda_j >= 0 only on points with z_j . u* = gamma. Planting support points
z_j = gamma u* + v_j with v_j orthogonal to u* and sum_j alpha_j v_j = 0 (alpha_j > 0), and every
other point strictly beyond gamma, satisfies this with lambda_j = alpha_j / (gamma^2 sum alpha):
the margin gamma, the direction u* and the support set are certified, not estimated.

Multiclass case (C >= 3): the certified margin is the pairwise one. Each class c owns a unit axis
u_c (orthonormal axes); every point of class c is x = r u_c + p with p orthogonal to all axes and
r >= sqrt(2) gamma. For a pair (a, b) (a signed +1, b signed -1) every signed point has
z . (u_a - u_b)/sqrt(2) = r/sqrt(2) >= gamma, and the support points of a and b (r = sqrt(2) gamma)
cancel their p parts with positive weights within each class, so the KKT certificate above holds
for every pair at once with direction (u_a - u_b)/sqrt(2) and margin gamma.

The same points also certify the multiclass (Crammer-Singer) hard-margin SVM without bias,
min ||W||_F^2 subject to (w_{y_i} - w_c) . x_i >= 1 for all c != y_i: it is a binary SVM on the
lifted points (e_{y_i} - e_c) (x) x_i, and equal multipliers over c at each support point with
the per-class cancellation above give W proportional to the centred axes u_c - mean_b u_b. So its
unit-Frobenius direction is (U - mean U) / sqrt(C - 1) with margin sqrt(2) gamma / sqrt(C - 1),
and its support set is the same.
"""
from __future__ import annotations

from numbers import Integral, Real

import numpy as np

from synth.dataset import Dataset, base_card
from synth.validation import (MAX_MAGNITUDE, MIN_MAGNITUDE, Constraint, Derived, Interval, Options,
                              RandomState, Vector, check_fits_in_memory, check_random_state,
                              spectrum_constraints, spectrum_variances, split_counts,
                              validate_params)

# Non-support points sit at margin >= gamma + NON_SUPPORT_GAP * (margin ceiling - gamma), so the
# support set is unambiguous to any solver working at ~1e-6 relative precision.
NON_SUPPORT_GAP = 0.05
# Declared precision range. Rounding in the support points (|x| ~ R) leaves the stored data's
# exact max margin within about 0.75e-16 * R / gamma relative of the card's (measured by a
# rigorous primal-dual interval, tests/synth/test_certificate_precision.py): gamma >= 1e-8 R
# certifies it to 7.4e-8 relative, inside the promised 1e-6 (1e-12 R would give 7.5e-4).
MIN_MARGIN_RATIO = 1e-8
# gamma at most this fraction of its ceiling keeps the non-support points at least
# NON_SUPPORT_GAP * 1e-4 = 5e-6 relative beyond the margin: the support set stays unambiguous
# at 1e-6.
MAX_MARGIN_FRACTION = 1.0 - 1e-4


def _margin_ceiling(params) -> float:
    return params["radius"] / np.sqrt(2.0) if params["n_classes"] > 2 else params["radius"]


def _least_support(params) -> int:
    return params["n_classes"] if params["n_classes"] > 2 else 1


PARAMETER_CONSTRAINTS: dict[str, list[Constraint]] = {
    "n_samples": [Interval(Integral, 2, None)],
    "n_classes": [Interval(Integral, 2, Derived("n_samples", lambda p: p["n_samples"]))],
    "n_features": [Interval(Integral, Derived("n_classes if n_classes > 2 else 1",
                                              _least_support), None)],
    "radius": [Interval(Real, MIN_MAGNITUDE, MAX_MAGNITUDE)],
    "margin": [Interval(Real, Derived(f"{MIN_MARGIN_RATIO:g} * radius",
                                      lambda p: MIN_MARGIN_RATIO * p["radius"]),
                        Derived(f"{MAX_MARGIN_FRACTION:g} * radius (/ sqrt(2) if n_classes > 2)",
                                lambda p: MAX_MARGIN_FRACTION * _margin_ceiling(p)))],
    "class_weights": [Options((None,)),
                      Vector(Interval(Real, 0.0, None, "neither"),
                             length=Derived("n_classes", lambda p: p["n_classes"]))],
    "spectrum": spectrum_constraints(),
    "label_noise": [Interval(Real, 0.0, 0.5, "left")],
    "n_support": [Options((None,)),
                  Interval(Integral, Derived("n_classes if n_classes > 2 else 1", _least_support),
                           Derived("n_samples - 1", lambda p: p["n_samples"] - 1))],
    "n_test": [Interval(Integral, 1, None)],
    "random_state": [RandomState()],
}


def estimated_bytes(n_samples: int, n_features: int, n_test: int) -> float:
    """Peak memory of ``make_separable``: a few (n + n_test, d) arrays and d x d rotations
    (measured with tracemalloc: at most 5.3 (n + n_test) d + 4.1 d^2 float64 values)."""
    rows = n_samples + n_test
    return 8.0 * (6 * rows * n_features + 6 * n_features**2 + 4 * rows)


def make_separable(n_samples: int = 100, n_features: int = 2, *, margin: float,
                   radius: float = 1.0, n_classes: int = 2, class_weights=None, spectrum=None,
                   label_noise: float = 0.0, n_support: int | None = None, n_test: int = 256,
                   random_state=None) -> Dataset:
    """Generate separable data with a certified margin, max-margin direction and support set.

    The construction (see the module docstring) plants support vectors exactly at margin
    ``margin`` in the KKT cone of the max-margin direction and puts every other point strictly
    beyond it; the point farthest from the origin has norm exactly ``radius``. Binary data
    certifies the no-bias hard-margin SVM of the whole set; multiclass data certifies the
    pairwise margin: for every pair of classes ``(a, b)``, the no-bias hard-margin SVM on the
    points of ``a`` (+1) and ``b`` (-1) has margin ``margin`` and direction
    ``(class_axes[a] - class_axes[b]) / sqrt(2)`` with the support vectors of ``a`` and ``b``;
    the multiclass (Crammer-Singer) no-bias hard-margin SVM is certified too (direction
    ``u_star``, margin ``multiclass_margin``, same support set).

    Non-support points: a Gaussian with variances ``spectrum`` along random orthonormal axes,
    folded onto the positive side of the margin axis, shifted past the margin and scaled by the
    largest factor that keeps every point within ``radius``.

    Label noise flips exactly ``floor(label_noise * n_samples + 0.5)`` labels while keeping the
    requested class counts: each flipped point is placed on the ray of a distinct unflipped
    partner of its clean class (``x_i = s x_j``, ``s >= 1``). A linear classifier without bias
    gives ``x`` and ``s x`` the same class, so every such pair costs at least one error: the data
    is certifiably not separable and the fewest training errors of any linear classifier
    without bias is exactly the number of flipped labels (``u_star`` achieves it).

    Parameters
    ----------
    n_samples : int, default=100
        Number of training points, at least 2.
    n_features : int, default=2
        Dimension, at least 1 (binary) or at least ``n_classes`` (multiclass).
    margin : float
        Certified margin gamma, in ``[1e-8 radius, 0.9999 radius]`` (binary) or
        ``[1e-8 radius, 0.9999 radius / sqrt(2)]`` (multiclass): the range in which the card's
        margin is the stored data's exact max margin to 1e-6 relative and the support set is
        unambiguous at 1e-6 (``PARAMETER_CONSTRAINTS``).
    radius : float, default=1.0
        R = max ||x|| over the training points, attained exactly; in ``[1e-50, 1e50]``.
    n_classes : int, default=2
        Number of classes, in ``[2, n_samples]``.
    class_weights : sequence of float, default=None
        Positive class proportions (normalised to sum 1); ``None`` is balanced. Training and
        test class counts are the largest-remainder rounding of ``n * weights``.
    spectrum : float or sequence of float, default=None
        Anisotropy of the non-support points: ``None`` isotropic, a condition number in
        ``[1, 1e8]`` (variances decay geometrically), or ``n_features`` variances in
        ``[1e-50, 1e50]`` with max/min at most 1e8.
    label_noise : float, default=0.0
        Fraction of flipped training labels, in ``[0, 0.5)``.
    n_support : int, default=None
        Number of support vectors, split evenly over the classes; ``None`` means
        ``max(n_classes, min(n_features, n_samples // 4))``. Allowed: in
        ``[1, n_samples - 1]`` (binary) or ``[n_classes, n_samples - 1]`` (multiclass), at most
        the class counts, one per class where the geometry has no room for more (binary with
        ``n_features == 1``, multiclass with ``n_features == n_classes``).
    n_test : int, default=256
        Number of held-out points (clean labels, non-support distribution), at least 1.
    random_state : int, numpy.random.Generator or None, default=None
        Seed; the card records the integer seed actually used.

    Returns
    -------
    Dataset
        Kind ``"separable"``. Arrays: ``u_star`` (binary: (d,); multiclass: the (C, d)
        unit-Frobenius Crammer-Singer direction), ``class_axes`` (multiclass only: (C, d)),
        ``support`` (support-vector indices), ``support_dual`` (KKT multipliers lambda_j of the
        hard-margin SVM for ``support``; multiclass: valid for every pair containing the point's
        class), ``flipped``, ``flip_partners`` (partner of each flipped index) and ``y_clean``.

    Raises
    ------
    ValueError
        If a parameter is outside its allowed range (the message names it), or if the arrays
        would not fit in the memory available (the message gives the estimate).
    """
    params = dict(n_samples=n_samples, n_features=n_features, margin=margin, radius=radius,
                  n_classes=n_classes, class_weights=class_weights, spectrum=spectrum,
                  label_noise=label_noise, n_support=n_support, n_test=n_test,
                  random_state=random_state)
    checked = validate_params(PARAMETER_CONSTRAINTS, params)
    n_samples, n_classes, n_features, radius, margin, label_noise, n_test = (
        checked[name] for name in ("n_samples", "n_classes", "n_features", "radius", "margin",
                                   "label_noise", "n_test"))
    multiclass = n_classes > 2
    margin_ceiling = _margin_ceiling(checked)
    weights = np.ones(n_classes) if class_weights is None else checked["class_weights"]
    variances = spectrum_variances(checked["spectrum"], n_features)
    check_fits_in_memory(estimated_bytes(n_samples, n_features, n_test),
                         f"make_separable with n_samples={n_samples}, n_features={n_features}, "
                         f"n_test={n_test}")
    seed, rng = check_random_state(random_state)
    params["random_state"] = seed

    counts = split_counts(n_samples, weights)
    test_counts = split_counts(n_test, weights)
    if counts.min() < 1:
        raise ValueError(f"class_weights must give every class at least one of the {n_samples} "
                         f"samples; got counts {counts.tolist()}")
    if n_support is None:
        n_support = max(n_classes, min(n_features, n_samples // 4))
    n_support = validate_params({"n_support": PARAMETER_CONSTRAINTS["n_support"][1:]},
                                {"n_support": n_support}, context=checked)["n_support"]
    support_counts = split_counts(n_support, np.ones(n_classes))
    room = 1 if n_features == (n_classes if multiclass else 1) else n_samples
    if np.any(support_counts > np.minimum(counts, room)):
        raise ValueError(f"n_support={n_support} does not fit: support vectors per class "
                         f"{support_counts.tolist()} must be at most the class counts "
                         f"{counts.tolist()} and at most {room} per class for "
                         f"n_features={n_features}")
    n_flipped = int(np.floor(label_noise * n_samples + 0.5))
    free = counts - support_counts
    max_flips = int(min(free.sum() // 2, free.sum() - free.max()))
    if n_flipped > max_flips:
        raise ValueError(f"label_noise={label_noise} asks for {n_flipped} flips but at most "
                         f"{max_flips} fit (each flip needs an unflipped non-support partner of "
                         f"another class); use label_noise <= {max_flips / n_samples:.4g}")

    axes = _orthonormal_rows(rng, n_classes if multiclass else 1, n_features)
    gaussian_axes = _orthonormal_rows(rng, n_features, n_features)
    scale = np.sqrt(2.0) if multiclass else 1.0  # margin coordinate m -> coefficient on the axis
    projector = np.eye(n_features) - axes.T @ axes

    y = rng.permutation(np.repeat(np.arange(n_classes), counts))
    y_test = rng.permutation(np.repeat(np.arange(n_classes), test_counts))
    support = np.sort(np.concatenate([
        rng.choice(np.flatnonzero(y == c), size=support_counts[c], replace=False)
        for c in range(n_classes)]))
    cloud_index = np.setdiff1d(np.arange(n_samples), support)

    def draw_gaussian(size):
        return (rng.standard_normal((size, n_features)) * np.sqrt(variances)) @ gaussian_axes

    def axis_of(labels):
        # The margin axis in the space where the point must lie beyond gamma: binary works with
        # signed points z, multiclass with x itself along its class axis.
        return np.repeat(axes, len(labels), axis=0) if not multiclass else axes[labels]

    def cloud(labels):
        # Folded Gaussian: height along the margin axis, perpendicular part, and the axis.
        g = draw_gaussian(len(labels))
        axis = axis_of(labels)
        return np.abs(np.sum(g * axis, axis=1)), g @ projector, axis

    offset = scale * (margin + NON_SUPPORT_GAP * (margin_ceiling - margin))
    height, perp, axis = cloud(y[cloud_index])
    reach = _scale_to_radius(offset, height, np.linalg.norm(perp, axis=1), radius)
    binding = int(np.argmin(reach))
    t = reach[binding]
    points = (offset + t * height)[:, None] * axis + t * perp
    points[binding] *= radius / np.linalg.norm(points[binding])
    # Test points from the same construction, redrawn where they would leave the ball.
    test_points = np.empty((n_test, n_features))
    pending = np.arange(n_test)
    while len(pending):
        height, perp, axis = cloud(y_test[pending])
        fits = _scale_to_radius(offset, height, np.linalg.norm(perp, axis=1), radius) >= t
        test_points[pending[fits]] = ((offset + t * height[fits])[:, None] * axis[fits]
                                      + t * perp[fits])
        pending = pending[~fits]

    # Support points: margin exactly gamma, perpendicular parts cancelling with positive weights.
    support_points = np.empty((n_support, n_features))
    cone_weights = rng.uniform(0.5, 1.5, size=n_support)
    groups = [np.arange(n_support)] if not multiclass else [
        np.flatnonzero(y[support] == c) for c in range(n_classes)]
    for group in groups:
        v = draw_gaussian(len(group)) @ projector
        weights_g = cone_weights[group]
        v[-1] = -(weights_g[:-1] @ v[:-1]) / weights_g[-1]
        longest = np.linalg.norm(v, axis=1).max()
        room_perp = np.sqrt(radius**2 - (scale * margin) ** 2)
        v *= min(t, room_perp / longest) if longest > 0 else 0.0
        support_points[group] = scale * margin * axis_of(y[support][group]) + v

    signs = 2.0 * y - 1.0 if not multiclass else np.ones(n_samples)
    X = np.empty((n_samples, n_features))
    X[cloud_index] = points * signs[cloud_index, None]
    X[support] = support_points * signs[support, None]
    X_test = test_points * (2.0 * y_test - 1.0 if not multiclass else np.ones(n_test))[:, None]

    flipped, partners = _plant_flips(rng, y, cloud_index, n_flipped,
                                     radius_index=cloud_index[binding])
    y_clean = y.copy()
    y_clean[flipped] = y[partners]
    for i, j in zip(flipped, partners):
        # max(): the partner that attains the radius may exceed it by rounding.
        X[i] = rng.uniform(1.0, max(1.0, float(radius / np.linalg.norm(X[j])))) * X[j]

    if multiclass:
        dual = cone_weights.copy()
        for group in groups:
            dual[group] /= dual[group].sum() * 2.0 * margin**2
        clean_margins = X @ axes.T
        clean_margins = clean_margins[np.arange(n_samples), y_clean] / scale
        definition = ("pairwise: for every pair of classes (a, b), the no-bias hard-margin SVM on "
                      "the clean points of a (+1) and b (-1) has this margin, direction "
                      "(class_axes[a] - class_axes[b]) / sqrt(2) and the support vectors of a "
                      "and b. The multiclass (Crammer-Singer) no-bias hard-margin SVM has "
                      "margin multiclass_margin, unit-Frobenius direction u_star and the same "
                      "support vectors")
    else:
        dual = cone_weights / (cone_weights.sum() * margin**2)
        clean_margins = (2.0 * y_clean - 1.0) * (X @ axes[0])
        definition = ("binary: the no-bias hard-margin SVM on the clean labels has this margin, "
                      "direction u_star and these support vectors")
    non_support = np.setdiff1d(np.arange(n_samples), support)

    card = base_card(kind="separable", generator=make_separable, params=params, seed=seed,
                     X=X, y=y, X_test=X_test, n_classes=n_classes)
    card.update({
        "margin_requested": margin,
        "margin": float(clean_margins.min()),
        "margin_definition": definition,
        **({"multiclass_margin": float(clean_margins.min()) * np.sqrt(2.0 / (n_classes - 1))}
           if multiclass else {}),
        "non_support_margin": float(clean_margins[non_support].min()),
        "radius_requested": radius,
        "radius": float(np.linalg.norm(X, axis=1).max()),
        "separable": n_flipped == 0,
        "label_noise": label_noise,
        "n_flipped": n_flipped,
        "min_linear_errors": n_flipped,
        "n_support": n_support,
        "support_indices": support.tolist(),
        "test_labels": "clean",
    })
    arrays = {
        "u_star": (axes - axes.mean(axis=0)) / np.sqrt(n_classes - 1) if multiclass else axes[0],
        **({"class_axes": axes} if multiclass else {}),
        "support": support,
        "support_dual": dual,
        "flipped": flipped,
        "flip_partners": partners,
        "y_clean": y_clean,
    }
    return Dataset(X=X, y=y, X_test=X_test, y_test=y_test, card=card, arrays=arrays)


def _orthonormal_rows(rng: np.random.Generator, k: int, d: int) -> np.ndarray:
    """``k`` Haar-random orthonormal vectors in R^d, as the rows of a (k, d) array."""
    q, r = np.linalg.qr(rng.standard_normal((d, k)))
    return (q * np.sign(np.diag(r))).T


def _scale_to_radius(offset: float, height: np.ndarray, perp_norm: np.ndarray,
                     radius: float) -> np.ndarray:
    """Largest t per point with ||(offset + t h) axis + t p|| <= radius (inf where h = p = 0)."""
    a = height**2 + perp_norm**2
    with np.errstate(divide="ignore", invalid="ignore"):
        root = (-offset * height + np.sqrt((offset * height) ** 2 - a * (offset**2 - radius**2)))
        return np.where(a > 0, root / a, np.inf)


def _plant_flips(rng: np.random.Generator, y: np.ndarray, candidates: np.ndarray, n_flipped: int,
                 *, radius_index: int) -> tuple[np.ndarray, np.ndarray]:
    """Choose ``n_flipped`` disjoint (flipped, partner) pairs of non-support points whose labels
    differ; the point that attains the radius is never the one moved."""
    pools = {c: list(rng.permutation(candidates[y[candidates] == c])) for c in np.unique(y)}
    flipped, partners = [], []
    for _ in range(n_flipped):
        first, second = sorted(pools, key=lambda c: -len(pools[c]))[:2]
        pair = [pools[first].pop(), pools[second].pop()]
        order = rng.permutation(2) if radius_index not in pair else (
            [1, 0] if pair[0] == radius_index else [0, 1])
        flipped.append(pair[order[0]])
        partners.append(pair[order[1]])
    order = np.argsort(flipped)
    return (np.asarray(flipped, dtype=np.int64)[order], np.asarray(partners, dtype=np.int64)[order])
