"""Turn a batched trainer's Trace into result rows: one per model and checkpoint, with every measure.

Models are laid out as ``verify.tasks.ModelLayout`` says (seed-major; the full set S, then each S\\i).
A model family is described by a :class:`Evaluator` (per-sample losses and predictions from flat
weights), so the same code measures linear heads, quadratic tasks and MLPs.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from itertools import combinations
from typing import Any

import numpy as np

from theory.stability import head_direction_stability, parameter_stability, pointwise_hypothesis_stability
from verify.tasks import ModelLayout

# (M, P) flat weights, (n, d) inputs, (n,) targets -> (M, n) per-sample losses
PerSampleLoss = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]
# (M, P) flat weights, (n, d) inputs -> (M, n) predicted class labels
Predict = Callable[[np.ndarray, np.ndarray], np.ndarray]


@dataclass(frozen=True)
class Evaluator:
    """How to evaluate one model family from flat weights.

    Attributes
    ----------
    per_sample_loss : callable
        ``(W, X, y) -> (M, n)`` loss of every model on every sample (the training loss's ℓ).
    predict : callable or None
        ``(W, X) -> (M, n)`` predicted labels; None for regression (no accuracy).
    head : ndarray of int or None
        The entries of the flat weights that form the linear head (the direction measures); None
        when the whole model is a linear head.
    margins : callable or None
        ``(W_head, X, y) -> (M, n)`` un-normalised margins of a linear head on its inputs; None
        where the head does not act on the inputs directly (MLP), so no margin is reported.
    features : callable or None
        ``(W, X) -> (M, n, h)`` the encoder's features (MLP), the inputs of its linear head; None
        for linear models.
    """

    per_sample_loss: PerSampleLoss
    predict: Predict | None
    head: np.ndarray | None = None
    margins: Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray] | None = None
    features: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None


def _signed(y: np.ndarray) -> np.ndarray:
    return 2.0 * np.asarray(y, dtype=np.float64) - 1.0


def linear_scores(W: np.ndarray, X: np.ndarray, n_classes: int) -> np.ndarray:
    """Scores of linear heads: (M, n) for binary heads (w ∈ R^d), (M, n, C) for (C, d) heads."""
    if n_classes <= 2:
        return W @ X.T
    return np.einsum("mcd,nd->mnc", W.reshape(len(W), n_classes, -1), X)


def linear_evaluator(loss: str, n_classes: int) -> Evaluator:
    """The evaluator of a linear model on fixed inputs (heads and the quadratic tasks).

    ``loss`` is "logistic" (binary; softmax cross-entropy when ``n_classes > 2``), "exponential",
    "softmax" or "squared" (ℓ = ½(x·w − y)², regression).
    """
    if loss == "squared":
        return Evaluator(per_sample_loss=lambda W, X, y: 0.5 * (W @ X.T - y) ** 2, predict=None)
    if n_classes > 2 or loss == "softmax":
        from scipy.special import logsumexp

        def softmax_loss(W, X, y):
            scores = linear_scores(W, X, max(n_classes, 2)) if n_classes > 2 else _binary_as_two(W, X)
            picked = np.take_along_axis(scores, np.asarray(y)[None, :, None], axis=2)[..., 0]
            return logsumexp(scores, axis=2) - picked

        def softmax_margins(W, X, y):
            scores = linear_scores(W, X, n_classes)
            picked = np.take_along_axis(scores, np.asarray(y)[None, :, None], axis=2)[..., 0]
            rivals = np.where(np.arange(n_classes)[None, None, :] == np.asarray(y)[None, :, None],
                              -np.inf, scores).max(axis=2)
            return picked - rivals

        return Evaluator(per_sample_loss=softmax_loss,
                         predict=lambda W, X: linear_scores(W, X, n_classes).argmax(axis=2),
                         margins=softmax_margins if n_classes > 2 else _binary_margins)
    if loss == "logistic":
        per_sample = lambda W, X, y: np.logaddexp(0.0, -_signed(y) * (W @ X.T))  # noqa: E731
    elif loss == "exponential":
        per_sample = lambda W, X, y: np.exp(-_signed(y) * (W @ X.T))  # noqa: E731
    else:
        raise ValueError(f"loss: must be one of logistic, exponential, softmax, squared; got {loss!r}")
    return Evaluator(per_sample_loss=per_sample, predict=lambda W, X: (W @ X.T > 0).astype(np.int64),
                     margins=_binary_margins)


def _binary_as_two(W: np.ndarray, X: np.ndarray) -> np.ndarray:
    scores = W @ X.T
    return np.stack([np.zeros_like(scores), scores], axis=2)


def _binary_margins(W: np.ndarray, X: np.ndarray, y: np.ndarray) -> np.ndarray:
    return _signed(y) * (W @ X.T)


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
        weights, or for MLP tasks the pre-trained w0 (``verify.tasks.Trained.w_pretrained``).
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
            stability = {
                "parameter_stability": parameter_stability(W[full[loo]], W[loo]),
                "head_direction_stability": head_direction_stability(heads[full[loo]], heads[loo]),
                "pointwise_hypothesis_stability": pointwise_hypothesis_stability(
                    _loss_at(evaluator, W[full[loo]], inputs, left_out),
                    _loss_at(evaluator, W[loo], inputs, left_out)),
            }
        position = {m: j for j, m in enumerate(loo)}
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
    from theory.estimators import max_margin_solution, signed_points
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
    from theory.asymptotics import asymptotic_weights
    from theory.estimators import max_margin_solution, signed_points
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


def bound_rows(rows: list[dict], *, weights: np.ndarray, w_init: np.ndarray, layout: ModelLayout,
               context: dict, setting: str, max_models: int | None = None,
               last_only: bool = False) -> list[dict]:
    """Evaluate every bound of ``setting`` in ``theory.bounds.BOUNDS`` on every left-out row.

    Parameters
    ----------
    rows : list of dict
        From :func:`trace_rows` (checkpoint-major: row ``k * M + m`` is model m at checkpoint k).
    weights : (K, M, P), w_init : (M, P)
        The flat weights the rows were measured on.
    layout : ModelLayout
    context : dict
        The RunContext fields shared by every row: ``model, loss, X, y, lr, batch_size, l2sp,
        objective, arrays, card``.
    setting : {"head", "full"}
    max_models : int or None
        Bound only the first this many left-out models in layout order (None: all).
    last_only : bool
        Bound the last checkpoint only (where constants are costly, e.g. Lanczos on an MLP).

    Returns
    -------
    list of dict
        ``row, bound, measure, measured, value, violated, constants``. A bound whose estimate fails
        is recorded with value NaN and ``violated = ["estimate_failed: <error>"]``; the measured row
        is kept either way.
    """
    from theory.bounds import BOUNDS
    from theory.context import RunContext

    applicable = [bound for bound in BOUNDS.values() if bound.setting == setting]
    full = layout.full_model()
    n_models = layout.n_models
    last = max(row["iteration"] for row in rows) if rows else 0
    bounded = set(np.flatnonzero(layout.left_out >= 0)[:max_models].tolist())
    out = []
    for r, row in enumerate(rows):
        k, m = divmod(r, n_models)
        if m not in bounded or (last_only and row["iteration"] != last):
            continue
        run = RunContext(setting=setting, left_out=row["left_out"], iteration=row["iteration"],
                         w0=w_init[m], w_full=weights[k, full[m]], w_loo=weights[k, m], **context)
        for bound in applicable:
            try:
                constants = bound.estimate_constants(run)
                value, violated = bound.value(**constants), list(bound.assumptions(**constants))
            except Exception as exc:  # recorded, never fatal: the measurement stands without its bound
                constants, value = {}, np.nan
                violated = [f"estimate_failed: {type(exc).__name__}: {exc}"]
            out.append({"row": r, "bound": bound.name, "measure": bound.measure,
                        "measured": row.get(bound.measure), "value": float(value), "violated": violated,
                        "constants": {key: float(v) for key, v in constants.items()}})
    return out


@dataclass(frozen=True)
class FlatNetwork:
    """A torch network seen as a function of one flat float64 weight vector (names in ``names`` order).

    Gives the MLP's :class:`Evaluator` (batched over models with ``torch.func.vmap``) and the
    ``RunContext.objective`` the theory differentiates.
    """

    model: Any
    names: tuple[str, ...]
    shapes: tuple[tuple[int, ...], ...]
    loss: str

    @classmethod
    def of(cls, model: Any, loss: str) -> FlatNetwork:
        from verify.trainers.mlp import parameter_layout
        layers, _ = parameter_layout(model)
        names = tuple(name for layer in layers for name in layer)
        parameters = dict(model.named_parameters())
        return cls(model, names, tuple(tuple(parameters[name].shape) for name in names), loss)

    def flatten(self, weights: dict[str, np.ndarray], lead: int) -> np.ndarray:
        """Concatenate per-name arrays of shape ``(*lead_dims, [H,] *shape)`` into ``(*lead_dims, P)``.

        A heads axis H (MHLoss) is averaged away: a multi-head model predicts with its mean logit,
        which for linear heads is the prediction of its mean head.
        """
        parts = []
        for name, shape in zip(self.names, self.shapes, strict=True):
            value = weights[name]
            if value.ndim == lead + len(shape) + 1:
                value = value.mean(axis=lead)
            parts.append(value.reshape(*value.shape[:lead], -1))
        return np.concatenate(parts, axis=-1)

    def n_heads(self, weights: dict[str, np.ndarray], lead: int) -> int:
        """The size of the heads axis of ``weights`` (1 when there is none)."""
        name = next(name for name in self.names if name.startswith("head."))
        shape = self.shapes[self.names.index(name)]
        value = weights[name]
        return int(value.shape[lead]) if value.ndim == lead + len(shape) + 1 else 1

    def head_indices(self) -> np.ndarray:
        sizes = [int(np.prod(shape)) for shape in self.shapes]
        starts = np.cumsum([0, *sizes])
        return np.concatenate([np.arange(starts[j], starts[j + 1])
                               for j, name in enumerate(self.names) if name.startswith("head.")])

    def _unflatten(self, w: Any) -> dict[str, Any]:
        out, start = {}, 0
        for name, shape in zip(self.names, self.shapes, strict=True):
            size = int(np.prod(shape))
            out[name] = w[..., start:start + size].reshape(*w.shape[:-1], *shape)
            start += size
        return out

    def _logits(self, w: Any, X: Any) -> Any:
        from torch.func import functional_call
        return functional_call(self.model, self._unflatten(w), (X,))

    def _features(self, w: Any, X: Any) -> Any:
        from torch.func import functional_call
        encoder = {name[len("encoder."):]: value for name, value in self._unflatten(w).items()
                   if name.startswith("encoder.")}
        return functional_call(self.model.encoder, encoder, (X,))

    def features(self, W: np.ndarray, X: np.ndarray) -> np.ndarray:
        """(M, n, h) encoder features of every model (flat weights ``W``) on ``X``."""
        import torch
        from torch.func import vmap
        with torch.no_grad():
            inputs = torch.as_tensor(np.asarray(X, dtype=np.float64))
            return vmap(lambda w: self._features(w, inputs))(torch.as_tensor(W)).numpy()

    def _batched(self, W: np.ndarray, X: np.ndarray, function: Callable) -> np.ndarray:
        import torch
        from torch.func import vmap
        with torch.no_grad():
            inputs = torch.as_tensor(np.asarray(X, dtype=np.float64))
            result = vmap(lambda w: function(self._logits(w, inputs)))(torch.as_tensor(W))
        return result.numpy()

    def evaluator(self) -> Evaluator:
        import torch
        from verify.trainers.mlp import sample_losses

        def per_sample_loss(W, X, y):
            labels = torch.as_tensor(np.asarray(y, dtype=np.int64))
            return self._batched(W, X, lambda logits: sample_losses(logits, labels, self.loss))

        return Evaluator(per_sample_loss=per_sample_loss,
                         predict=lambda W, X: self._batched(W, X, lambda logits: logits.argmax(-1)),
                         head=self.head_indices(), features=self.features)

    def objective(self, X: np.ndarray, y: np.ndarray) -> Callable:
        """``(w_flat, sample_weights) -> Σ_j s_j ℓ_j(w) / Σ_j s_j`` as torch (RunContext.objective)."""
        import torch
        from verify.trainers.mlp import sample_losses
        inputs = torch.as_tensor(np.asarray(X, dtype=np.float64))
        labels = torch.as_tensor(np.asarray(y, dtype=np.int64))

        def objective(w, sample_weights):
            losses = sample_losses(self._logits(w, inputs), labels, self.loss)
            return (losses * sample_weights).sum() / sample_weights.sum()

        return objective
