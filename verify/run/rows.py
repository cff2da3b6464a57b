"""Turn a batched trainer's trace into result rows: one per model and checkpoint, with every measure.

Models are laid out as ``verify.run.layout.ModelLayout`` says (seed-major; the full set S, then
each S\\i); the model family is an ``verify.run.evaluators.Evaluator``.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from itertools import combinations

import numpy as np
from scipy.stats import DegenerateDataWarning

from theory.asymptotics import asymptotic_weights
from theory.estimators import max_margin_solution, signed_points
from theory.stability import (
    head_direction_spread,
    head_direction_stability,
    parameter_stability,
    pointwise_hypothesis_stability,
)
from verify.run.evaluators import Evaluator
from verify.run.layout import LeftOutPlan, ModelLayout

STABILITY_MEASURES = ("parameter_stability", "head_direction_stability",
                      "pointwise_hypothesis_stability")


@dataclass(frozen=True)
class RowInputs:
    """Everything besides the trace that the rows need.

    Attributes
    ----------
    X, y : ndarray
        The full training set S (inputs the evaluator takes: features for heads).
    X_test, y_test : ndarray
        Held-out data.
    n_classes : int
        0 for regression.
    w_init : ndarray
        (M, P) flat weights that ``distance_from_init`` is measured from: each model's initial
        weights, or for MLP tasks the pre-trained w0 (``verify.run.train.Trained.w_pretrained``).
    u_star : ndarray or None
        Flat unit max-margin direction of the head (separable data), else None.
    lr : float
        The learning rate used.
    """

    X: np.ndarray
    y: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    n_classes: int
    w_init: np.ndarray
    u_star: np.ndarray | None
    lr: float


def _unit(W: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(W, axis=-1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return W / norms


def trace_rows(iterations: np.ndarray, weights: np.ndarray, train_loss: np.ndarray,
               diverged_at: np.ndarray, *, layout: ModelLayout, evaluator: Evaluator,
               inputs: RowInputs, masks: np.ndarray) -> list[dict]:
    """One row per (checkpoint, model) with every measured column of the ``runs`` table.

    Parameters
    ----------
    iterations : (K,) int
    weights : (K, M, P) float64
        Flat weights of every model at every checkpoint.
    train_loss : (K, M)
    diverged_at : (M,) int, -1 where the model never diverged
    layout : ModelLayout
    evaluator : Evaluator
    inputs : RowInputs
    masks : (M, n) 0/1
        Training membership (the margin is taken over each model's own training samples).

    Returns
    -------
    list of dict
        Keys ``seed, left_out, iteration, lr`` and the measured columns; left-out rows also carry
        the three stability measures (NaN where either model diverged).
    """
    full = layout.full_model()
    loo = np.flatnonzero(layout.left_out >= 0)
    left_out = layout.left_out[loo]
    majority = (float(np.bincount(np.asarray(inputs.y_test, dtype=np.int64)).max() / len(inputs.y_test))
                if inputs.n_classes else np.nan)
    rows = []
    for k, iteration in enumerate(np.asarray(iterations, dtype=np.int64)):
        W = weights[k]
        with np.errstate(all="ignore"):
            heads = W if evaluator.head is None else W[:, evaluator.head]
            test_loss = evaluator.per_sample_loss(W, inputs.X_test, inputs.y_test).mean(axis=1)
            accuracy = ((evaluator.predict(W, inputs.X_test) == inputs.y_test).mean(axis=1)
                        if evaluator.predict is not None else np.full(len(W), np.nan))
            direction_error = (np.linalg.norm(_unit(heads) - inputs.u_star, axis=1)
                               if inputs.u_star is not None else np.full(len(W), np.nan))
            if evaluator.margins is not None:
                margins = evaluator.margins(heads, inputs.X, inputs.y) / np.linalg.norm(heads, axis=1)[:, None]
                margin = np.where(masks > 0, margins, np.inf).min(axis=1)
            else:
                margin = np.full(len(W), np.nan)
            distance = np.linalg.norm(W - inputs.w_init, axis=1)
            # A seed-spread task has no left-out model (and nothing to compare).
            stability = {
                "parameter_stability": parameter_stability(W[full[loo]], W[loo]),
                "head_direction_stability": head_direction_stability(heads[full[loo]], heads[loo]),
                "pointwise_hypothesis_stability": pointwise_hypothesis_stability(
                    _loss_at(evaluator, W[full[loo]], inputs, left_out),
                    _loss_at(evaluator, W[loo], inputs, left_out)),
            } if len(loo) else {}
        position = {int(m): j for j, m in enumerate(loo)}
        for m in range(layout.n_models):
            step = int(diverged_at[m])
            row = {"seed": int(layout.seeds[m]), "left_out": None, "iteration": int(iteration),
                   "lr": float(inputs.lr), "train_loss": float(train_loss[k, m]),
                   "test_loss": float(test_loss[m]), "test_accuracy": float(accuracy[m]),
                   "majority_accuracy": majority, "direction_error": float(direction_error[m]),
                   "normalised_margin": float(margin[m]), "distance_from_init": float(distance[m]),
                   "diverged": int(0 <= step <= iteration), "diverged_at": step if step >= 0 else None}
            if m in position:
                j = position[m]
                row["left_out"] = int(layout.left_out[m])
                broken = row["diverged"] or (0 <= int(diverged_at[full[m]]) <= iteration)
                for name, values in stability.items():
                    row[name] = np.nan if broken else float(values[j])
            rows.append(row)
    return rows


def add_left_out_estimates(rows: list[dict], plan: LeftOutPlan) -> None:
    """Say on every left-out row how it enters E_i (its model's stratum and weight, the estimator,
    how many of each stratum were left out) and the standard error of E_i of each stability measure
    for its seed and checkpoint (:meth:`LeftOutPlan.standard_error`: 0 where exact, NaN where
    undefined). Rows of models trained on all of S get NULL (None) in these columns."""
    weights = plan.weights()
    position = {int(sample): j for j, sample in enumerate(plan.samples)}
    n_other, n_support = (int(count) for count in plan.used())
    groups: dict[tuple[int, int], list[dict]] = {}
    for row in rows:
        for column in ("left_out_support", "left_out_weight", "left_out_estimator",
                       "left_out_n_support", "left_out_n_other", *(f"{m}_se" for m in STABILITY_MEASURES)):
            row[column] = None
        if row["left_out"] is None:
            continue
        j = position[row["left_out"]]
        row.update(left_out_support=int(plan.stratum[j]), left_out_weight=float(weights[j]),
                   left_out_estimator=plan.estimator, left_out_n_support=n_support,
                   left_out_n_other=n_other)
        groups.setdefault((row["seed"], row["iteration"]), []).append(row)
    for group in groups.values():
        order = np.argsort([position[row["left_out"]] for row in group])
        for measure in STABILITY_MEASURES:
            values = np.array([group[k][measure] for k in order], dtype=np.float64)
            error = plan.standard_error(values)
            for row in group:
                row[f"{measure}_se"] = error


def add_bound_weights(rows: list[dict], layout: ModelLayout, plan: LeftOutPlan,
                      bounded: LeftOutPlan) -> np.ndarray:
    """Which left-out models the bounds are evaluated on (``bounded``: a plan whose samples are a
    subset of ``plan``'s, drawn from the same random order), and each one's weight in the E_i of a
    bound's value (``bound_weight``; NULL on rows whose model is not bounded).

    Returns
    -------
    (M,) bool
        The models to bound.
    """
    if not set(bounded.samples.tolist()) <= set(plan.samples.tolist()):
        raise ValueError("bounded: the bounded left-out samples must be left out")
    weight = dict(zip(bounded.samples.tolist(), bounded.weights().tolist()))
    for row in rows:
        row["bound_weight"] = None if row["left_out"] is None else weight.get(row["left_out"])
    return np.isin(layout.left_out, bounded.samples) & (layout.left_out >= 0)


def _loss_at(evaluator: Evaluator, W: np.ndarray, inputs: RowInputs, samples: np.ndarray) -> np.ndarray:
    """ℓ(w_j; z_{samples[j]}) for each model j."""
    losses = evaluator.per_sample_loss(W, inputs.X[samples], inputs.y[samples])
    return np.diagonal(losses).copy()


def feature_margin(features: np.ndarray, y: np.ndarray) -> float:
    """Scale-invariant hard margin γ/R of features: the quantity MMR enlarges.

    The features are centred on their mean and R is the largest norm of a centred feature, as in
    :func:`verify.stabilisers.mmr.normalised_class_distances`; γ is the no-bias hard-margin of the
    centred features (exact QP, :func:`theory.estimators.max_margin_solution`), for several classes
    the smallest over class pairs. The result does not change when the features are scaled or
    translated.

    Returns
    -------
    float
        γ/R in (0, 1], or NaN when some pair of classes is not linearly separable (γ ≤ 0) or the
        features are all equal.
    """
    features = np.asarray(features, dtype=np.float64)
    y = np.asarray(y)
    centred = features - features.mean(axis=0)
    radius = float(np.linalg.norm(centred, axis=1).max())
    classes = np.unique(y)
    if not radius > 0 or classes.size < 2 or not np.isfinite(centred).all():
        return np.nan
    gammas = []
    for a, b in combinations(classes.tolist(), 2):
        pair = (y == a) | (y == b)
        solution = max_margin_solution(signed_points(centred[pair], y[pair] == b))
        if not (solution.separable and solution.gamma > 0):
            return np.nan
        gammas.append(solution.gamma)
    return min(gammas) / radius


def add_feature_margins(rows: list[dict], weights: np.ndarray, *, layout: ModelLayout,
                        evaluator: Evaluator, X: np.ndarray, y: np.ndarray) -> None:
    """Set ``feature_margin`` (:func:`feature_margin` of the trained encoder's features on S) on the
    rows of the models trained on all of S at the last checkpoint; NULL (None) on every other row.

    ``rows`` are checkpoint-major as :func:`trace_rows` makes them; ``weights`` is (K, M, P).
    """
    for row in rows:
        row["feature_margin"] = None
    if evaluator.features is None or not rows:
        return
    last = weights.shape[0] - 1
    full = np.flatnonzero(layout.left_out < 0)
    with np.errstate(all="ignore"):
        features = evaluator.features(weights[last, full], X)
    for j, m in enumerate(full):
        row = rows[last * layout.n_models + m]
        if not row["diverged"]:
            row["feature_margin"] = feature_margin(features[j], y)


def add_head_seed_spread(rows: list[dict], weights: np.ndarray | None, *, layout: ModelLayout,
                         evaluator: Evaluator, random_state: int) -> None:
    """Set ``head_seed_spread`` and its bootstrap interval ``head_seed_spread_low`` /
    ``head_seed_spread_high`` on the rows of the models trained on all of S, at every checkpoint.

    The spread is mean_k ‖u_k − ū‖² over the seeds' head directions u_k = w_k/‖w_k‖ on the same S
    (:func:`theory.stability.head_direction_spread`, seeds resampled), every seed's row of one
    checkpoint holding the same value. NULL (None) on left-out rows, where fewer than two seeds have
    a model that did not diverge, and everywhere when ``weights`` is None (the caller's choice for
    full fine-tuning, whose last layer sits on moving features).
    """
    for row in rows:
        row["head_seed_spread"] = row["head_seed_spread_low"] = row["head_seed_spread_high"] = None
    full = np.flatnonzero(layout.left_out < 0)
    if weights is None or len(full) < 2 or not rows:
        return
    for k in range(weights.shape[0]):
        members = [m for m in full if not rows[k * layout.n_models + m]["diverged"]]
        if len(members) < 2:
            continue
        heads = weights[k, members] if evaluator.head is None else weights[k, members][:, evaluator.head]
        with warnings.catch_warnings():
            # Few seeds or equal directions make the BCa interval degenerate (theory.stability then
            # falls back to the percentile interval); the warnings on the way say nothing actionable.
            warnings.simplefilter("ignore", DegenerateDataWarning)
            warnings.simplefilter("ignore", RuntimeWarning)
            estimate = head_direction_spread(heads, random_state=np.random.default_rng([random_state, k]))
        for m in members:
            rows[k * layout.n_models + m].update(head_seed_spread=estimate.value,
                                                 head_seed_spread_low=estimate.low,
                                                 head_seed_spread_high=estimate.high)


def add_asymptotic_predictions(rows: list[dict], weights: np.ndarray, iterations: np.ndarray, *,
                               layout: ModelLayout, w_init: np.ndarray, X: np.ndarray, y: np.ndarray,
                               u_star: np.ndarray | None, head_lr: float | None) -> None:
    """Compare the heads trained on all of S with Soudry et al.'s w(t) ≈ ŵ log t + w̃.

    Sets, on every row of a model trained on all of S, ``predicted_direction_error``
    (‖w_pred(t)/‖w_pred(t)‖ − u*‖) and ``predictor_relative_error`` (‖w(t) − w_pred(t)‖ / ‖w(t)‖),
    with w_pred from :func:`theory.asymptotics.asymptotic_weights` (mean loss over S, step
    ``head_lr``, the model's initial head for the component the data never moves). The caller
    passes ``head_lr=None`` where the predictor does not apply (it needs a linear binary head on
    separable data, full-batch GD below 2/β on the logistic or exponential loss); every column is
    then NULL (None), as on left-out rows and on diverged models.
    """
    for row in rows:
        row["predicted_direction_error"] = row["predictor_relative_error"] = None
    if head_lr is None or not rows or not max_margin_solution(signed_points(X, y)).separable:
        return
    for m in np.flatnonzero(layout.left_out < 0):
        predicted = asymptotic_weights(X, y, lr=head_lr, iteration=iterations, w0=w_init[m],
                                       reduction="mean")
        for k, w_pred in enumerate(predicted):
            row = rows[k * layout.n_models + m]
            if row["diverged"]:
                continue
            w = weights[k, m]
            if u_star is not None:
                row["predicted_direction_error"] = float(np.linalg.norm(w_pred / np.linalg.norm(w_pred) - u_star))
            row["predictor_relative_error"] = float(np.linalg.norm(w - w_pred) / np.linalg.norm(w))


def add_start_distances(rows: list[dict], weights: np.ndarray, *, layout: ModelLayout,
                        w_start: np.ndarray, w_pretrained: np.ndarray,
                        teacher: np.ndarray | None, encoder: np.ndarray | None = None) -> None:
    """Where training started, against the pre-trained weights and the teacher, on every row.

    Sets ``distance_from_start`` (‖w_t − w_start‖ over all weights: the fine-tuning move from where
    training began, after a stabiliser's stage such as SURT; at the last checkpoint it estimates
    Theorem F's D), ``encoder_distance_from_start`` (the same over the encoder's weights, where
    ``encoder`` masks them in the flat layout: MLPs), and, when the task has a teacher backbone (``teacher``: flat, NaN outside the
    encoder), on the encoder weights: ``teacher_distance_pretrained`` (‖w0 − θ*‖, before SURT),
    ``teacher_distance_start`` (‖w_start − θ*‖, after it), ``teacher_distance`` (‖w_t − θ*‖) and
    ``start_move_cosine``, the cosine between the stage's move w_start − w0 and the teacher
    direction θ* − w0 (NULL when the stage did not move the encoder). Teacher columns are NULL
    without a teacher, every column on diverged models.

    ``w_start``, ``w_pretrained`` are (M, P): each model's first weights and the dataset's w0 with
    that model's initial head (:class:`verify.run.train.Trained`).
    """
    taught = None if teacher is None else np.isfinite(teacher)
    for r, row in enumerate(rows):
        k, m = divmod(r, layout.n_models)
        values = dict.fromkeys(("distance_from_start", "encoder_distance_from_start",
                                "teacher_distance_pretrained", "teacher_distance_start",
                                "teacher_distance", "start_move_cosine"))
        if not row["diverged"]:
            move_now = weights[k, m] - w_start[m]
            values["distance_from_start"] = float(np.linalg.norm(move_now))
            if encoder is not None:
                values["encoder_distance_from_start"] = float(np.linalg.norm(move_now[encoder]))
            if teacher is not None and taught is not None:
                target = teacher[taught]
                w0, start, now = w_pretrained[m][taught], w_start[m][taught], weights[k, m][taught]
                move, direction = start - w0, target - w0
                values.update(teacher_distance_pretrained=float(np.linalg.norm(direction)),
                              teacher_distance_start=float(np.linalg.norm(target - start)),
                              teacher_distance=float(np.linalg.norm(target - now)))
                scale = np.linalg.norm(move) * np.linalg.norm(direction)
                if scale > 0:
                    values["start_move_cosine"] = float(move @ direction / scale)
        row.update(values)
