"""Batched head tuning: linear heads on fixed features, M models trained as one tensor program.

Model m trains on its own samples ``masks[m]`` (the mean loss over them). All M models, their
``n_heads`` heads and, for softmax, their C class vectors are the columns of one ``(d, U)`` weight
matrix, ``U = C * M * n_heads`` (class-major: the columns of class c are one block); one step is two
matrix products over all columns at once (``(n, d) x (d, U)`` for the scores, ``(d, n) x (n, U)``
for the gradient) plus elementwise work on the ``(n, U)`` scores, with every buffer allocated once.
The scores are viewed as ``(n, C, M, H)``: the softmax and logsumexp over the classes then run over a
leading axis with the models' columns contiguous inside it, which torch vectorises (over a size-3..5
last axis it is about 10x slower).

Losses (``y`` holds labels 0..C-1; the binary losses use the signs ``s = 2y - 1``):

- ``"logistic"``: ``log(1 + exp(-s w.x))``;
- ``"exponential"``: ``exp(-s w.x)``;
- ``"softmax"``: cross-entropy of ``softmax(W x)`` with ``W`` of shape ``(C, d)``, C = max(y) + 1.

Heads (MHLoss): with ``n_heads = H > 1`` every model has H heads; its loss is the mean (or, with
``head_reduction="sum"``, the sum) of the heads' losses and its prediction is the mean logit, i.e. the
prediction of the mean of its heads' weights. The heads only interact through that reduction, so each
head follows gradient descent on its own loss with step ``lr / H`` (mean) or ``lr`` (sum).

Initialisation: ``"zero"``, ``"random"`` or an explicit array. ``"random"`` draws every model's heads
from its seed's ``"head_init"`` stream (``torch.Generator`` seeded with
``run_seed(seed, "head_init")``), each entry uniform on ``[-1/sqrt(d), 1/sqrt(d)]`` (the default of
``torch.nn.Linear``); the H heads of a model are independent draws, and models sharing a seed (the
model on S and those on S\\i) share their initial heads.

SGD coupling (the standard one of algorithmic stability, shared with :mod:`verify.trainers.mlp`): at
each step the seed's ``"train_stream"`` generator (seeded with ``run_seed(seed, "train_stream")``)
draws a permutation of all n samples and its first ``batch_size`` entries are the minibatch of every
model with that seed; each model averages its loss over the minibatch members that are among its own
samples, and makes no update when there are none. The model on S\\i therefore sees exactly the
sample stream of the model on S with sample i removed wherever it occurs; with ``batch_size = n``,
SGD is full-batch GD for every model. The permutations are replayed in bulk from the same stream
(:mod:`verify.trainers.permutations`), and where every seed has as many models, an SGD step computes
the scores of each seed's minibatch rows only (one small product per seed instead of two over all n
samples; the same weights up to rounding, about 1e-14).

Divergence: model m diverges at the first iteration t whose training loss L_m(w_t) (mean loss over its
own samples, reduced over heads) is NaN, inf or above ``BLOWUP`` times the reference
``max(L_m(w_0), L_m(0))`` (its initial loss, or the loss of the zero head if that is larger, so a
near-perfect initialisation does not make every later loss a blow-up). From iteration t on, its
weights and loss are NaN in the trace and ``diverged_at[m] = t``; the model is frozen (its columns are
zeroed) so it cannot disturb the others. The test is exact and cheap: a bound on every model's loss
from the extreme scores (``phi(max Q)``; for softmax ``max z - min z + log C``) is compared with the
smallest threshold, and only when it crosses it are the per-model losses computed. For the logistic
and softmax losses, whose derivatives are bounded by 1, one step moves any score by at most
``lr * max_i ||x_i||²`` (the largest lr where models have their own), so after a passing test the
next one is due only when the scores could have used up the headroom; the exponential loss is
tested at every iteration.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Protocol

import numpy as np
import torch

from verify.seeding import run_seed
from verify.trainers.checkpoints import check_checkpoints
from verify.trainers.permutations import PermutationStream, permutation_prefixes
from verify.trainers.trace import Trace

LOSSES = ("logistic", "exponential", "softmax")
HEAD_REDUCTIONS = ("mean", "sum")
BLOWUP = 1e6
INIT_STREAM = "head_init"
BATCH_STREAM = "train_stream"
# SGD draws its minibatches this many values (coefficients, gathered features) ahead (1 MiB of
# float64: the chunk stays in a core's L2 cache).
BATCH_CHUNK = 1 << 17


# ------------------------------------------------------------------------------ the losses -------
# A head's score for sample i is Q_i = F_i . w with F the loss's feature matrix: the binary losses
# fold the label sign into the features (F_i = -s_i x_i, so Q_i is minus the margin and the loss is an
# increasing function phi(Q_i)); softmax scores are the logits (F = X).

class _Loss(Protocol):
    """What the batched trainer needs of a loss (one of the classes below)."""

    n_outputs: int
    zero_loss: float

    @property
    def headroom_rate(self) -> float | None: ...

    def features(self, X: torch.Tensor, y: torch.Tensor) -> torch.Tensor: ...

    def derivative_(self, Q: torch.Tensor) -> torch.Tensor: ...

    def minibatch_targets(self, rows: torch.Tensor) -> torch.Tensor | None: ...

    def minibatch_derivative_(self, Q: torch.Tensor, targets: torch.Tensor | None) -> torch.Tensor: ...

    def per_sample(self, Q: torch.Tensor) -> torch.Tensor: ...

    def headroom(self, Q: torch.Tensor, level: float) -> float: ...


def _binary_features(X: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return -(2.0 * y - 1.0)[:, None] * X


class _Logistic:
    n_outputs = 1

    def __init__(self, y: torch.Tensor):
        self.zero_loss = math.log(2.0)

    features = staticmethod(_binary_features)

    def derivative_(self, Q: torch.Tensor) -> torch.Tensor:
        """Overwrite the scores with phi'(Q) and return them."""
        return Q.sigmoid_()

    def minibatch_targets(self, rows: torch.Tensor) -> torch.Tensor | None:
        """What :meth:`minibatch_derivative_` needs of the samples ``rows``: nothing, the label
        sign is in the features."""
        return None

    def minibatch_derivative_(self, Q: torch.Tensor, targets: torch.Tensor | None) -> torch.Tensor:
        """phi'(Q) in place, for the scores (seeds, b, 1, ...) of a minibatch."""
        return self.derivative_(Q)

    def per_sample(self, Q: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.softplus(Q).squeeze(1)

    # |phi'| <= 1, so one step moves every score by at most (step size) * max ||F_i||^2.
    headroom_rate: float | None = 1.0

    def headroom(self, Q: torch.Tensor, level: float) -> float:
        """How far the largest score may rise before the loss bound phi(max Q) exceeds ``level``."""
        return level + math.log(-math.expm1(-level)) - float(Q.max())


class _Exponential(_Logistic):
    def __init__(self, y: torch.Tensor):
        self.zero_loss = 1.0

    def derivative_(self, Q: torch.Tensor) -> torch.Tensor:
        return Q.exp_()

    def per_sample(self, Q: torch.Tensor) -> torch.Tensor:
        return torch.exp(Q).squeeze(1)

    headroom_rate = None   # phi' = exp is unbounded: no guarantee beyond the current step

    def headroom(self, Q: torch.Tensor, level: float) -> float:
        return math.log(level) - float(Q.max())


class _Softmax:
    def __init__(self, y: torch.Tensor):
        self.n_outputs = int(y.max()) + 1
        self.zero_loss = math.log(self.n_outputs)
        self.labels = y.long()
        self.one_hot = torch.nn.functional.one_hot(self.labels, self.n_outputs).to(y.dtype)[:, :, None, None]
        self.probabilities: torch.Tensor | None = None

    @staticmethod
    def features(X: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return X

    def derivative_(self, Q: torch.Tensor) -> torch.Tensor:
        """Return softmax(Q) - one_hot(y) (in a buffer of its own: softmax cannot run in place)."""
        if self.probabilities is None or self.probabilities.shape != Q.shape:
            self.probabilities = torch.empty_like(Q)
        torch.softmax(Q, 1, out=self.probabilities)
        return self.probabilities.sub_(self.one_hot)

    def minibatch_targets(self, rows: torch.Tensor) -> torch.Tensor:
        """The (len(rows), C) one-hot labels of the samples ``rows``."""
        return self.one_hot.view(len(self.labels), -1).index_select(0, rows)

    def minibatch_derivative_(self, Q: torch.Tensor, targets: torch.Tensor | None) -> torch.Tensor:
        """softmax(Q) - one_hot(y) for the logits (seeds, b, C, ...) of a minibatch, its one-hot
        labels ``targets`` (seeds, b, C, 1, 1), in a buffer of its own."""
        if self.probabilities is None or self.probabilities.shape != Q.shape:
            self.probabilities = torch.empty_like(Q)
        assert targets is not None
        torch.softmax(Q, 2, out=self.probabilities)
        return self.probabilities.sub_(targets)

    def per_sample(self, Q: torch.Tensor) -> torch.Tensor:
        index = self.labels.view(-1, 1, 1, 1).expand(Q.shape[0], 1, *Q.shape[2:])
        return torch.logsumexp(Q, 1) - Q.gather(1, index).squeeze(1)

    # |p - onehot| <= 1, so one step moves every logit by at most (step size) * max ||x_i||^2 and
    # the spread max(z) - min(z) by twice that.
    headroom_rate = 2.0

    def headroom(self, Q: torch.Tensor, level: float) -> float:
        """How far the spread may grow before logsumexp(z) - z_y <= spread + log C exceeds ``level``."""
        low, high = torch.aminmax(Q)
        return level - self.zero_loss - float(high - low)


_LOSS_CLASSES: dict[str, Callable[[torch.Tensor], _Loss]] = {
    "logistic": _Logistic, "exponential": _Exponential, "softmax": _Softmax}


# ---------------------------------------------------------------------------- validation -------

@dataclass(frozen=True)
class HeadProblem:
    """Validated inputs of a head-tuning run, shared by the batched and the naive trainer."""

    X: np.ndarray            # (n, d) float64
    y: np.ndarray            # (n,) int64
    masks: np.ndarray        # (M, n) bool
    init: np.ndarray         # (M, H, C, d) initial heads; C = 1 for the binary losses
    loss: str
    lr: np.ndarray           # (M,) step size of each model
    n_steps: int
    checkpoints: np.ndarray  # (K,) int64
    batch_size: int | None
    seeds: np.ndarray | None  # (M,) int64
    n_heads: int
    head_reduction: str

    @property
    def head_scale(self) -> float:
        """Factor of each head's own gradient in the model's gradient (1/H for the mean)."""
        return 1.0 / self.n_heads if self.head_reduction == "mean" else 1.0

    def weights_shape(self, n_models: int) -> tuple[int, ...]:
        """Shape of one checkpoint's weights: (M, [H,] [C,] d)."""
        _, n_heads, n_outputs, d = self.init.shape
        return ((n_models,) + ((n_heads,) if n_heads > 1 else ())
                + ((n_outputs,) if self.loss == "softmax" else ()) + (d,))


def _is_int(value) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def check_head_problem(X, y, *, masks, init, loss, lr, n_steps, checkpoints, batch_size, seeds,
                       n_heads, head_reduction) -> HeadProblem:
    """Validate the arguments of :func:`train_heads` and draw the initial heads.

    Raises
    ------
    ValueError
        Naming the first invalid parameter and its allowed values.
    """
    if loss not in LOSSES:
        raise ValueError(f"loss: must be one of {LOSSES}, got {loss!r}")
    if head_reduction not in HEAD_REDUCTIONS:
        raise ValueError(f"head_reduction: must be one of {HEAD_REDUCTIONS}, got {head_reduction!r}")
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2 or X.shape[0] < 1 or X.shape[1] < 1 or not np.isfinite(X).all():
        raise ValueError(f"X: must be a finite (n, d) array with n, d >= 1, got shape {X.shape}")
    n, d = X.shape
    y = np.asarray(y)
    if y.shape != (n,) or not np.issubdtype(y.dtype, np.integer) or y.min() < 0:
        raise ValueError(f"y: must be ({n},) integer labels >= 0, got shape {y.shape}, "
                         f"dtype {y.dtype}")
    y = y.astype(np.int64)
    if loss != "softmax" and y.max() > 1:
        raise ValueError(f"y: the {loss} loss is binary and needs labels in {{0, 1}}, "
                         f"got max {y.max()}")
    if loss == "softmax" and y.max() < 1:
        raise ValueError("y: the softmax loss needs at least 2 classes (max label >= 1)")
    masks = np.asarray(masks)
    if masks.ndim != 2 or masks.shape[1] != n or masks.shape[0] < 1 or not np.isin(masks, (0, 1)).all():
        raise ValueError(f"masks: must be an (M, {n}) array of 0/1 with M >= 1, got shape {masks.shape}")
    masks = masks.astype(bool)
    n_models = masks.shape[0]
    if not masks.any(axis=1).all():
        raise ValueError("masks: every model needs at least one sample, got an all-zero row")
    lr = _step_sizes(lr, n_models)
    if not _is_int(n_steps) or n_steps < 0:
        raise ValueError(f"n_steps: must be an integer >= 0, got {n_steps!r}")
    points = check_checkpoints(checkpoints, n_steps)
    if batch_size is not None and (not _is_int(batch_size) or not 1 <= batch_size <= n):
        raise ValueError(f"batch_size: must be None or an integer in [1, {n}], got {batch_size!r}")
    if not _is_int(n_heads) or n_heads < 1:
        raise ValueError(f"n_heads: must be an integer >= 1, got {n_heads!r}")
    needs_seeds = batch_size is not None or (isinstance(init, str) and init == "random")
    if seeds is not None:
        seeds = np.asarray(seeds)
        if seeds.shape != (n_models,) or not np.issubdtype(seeds.dtype, np.integer) or seeds.min() < 0:
            raise ValueError(f"seeds: must be {n_models} integers >= 0 (one per model), "
                             f"got {seeds!r}")
        seeds = seeds.astype(np.int64)
    elif needs_seeds:
        raise ValueError("seeds: required (one integer per model) for SGD or random initialisation")
    n_outputs = int(y.max()) + 1 if loss == "softmax" else 1
    heads = _initial_heads(init, seeds, (n_models, n_heads, n_outputs, d), loss)
    return HeadProblem(X=X, y=y, masks=masks, init=heads, loss=loss, lr=lr,
                       n_steps=int(n_steps), checkpoints=points,
                       batch_size=None if batch_size is None else int(batch_size),
                       seeds=seeds, n_heads=int(n_heads), head_reduction=head_reduction)


def _step_sizes(lr, n_models: int) -> np.ndarray:
    """``lr`` as (M,) step sizes: one finite number > 0, or one per model."""
    values: np.ndarray | None
    if isinstance(lr, (int, float, np.floating)) and not isinstance(lr, bool):
        values = np.full(n_models, float(lr))
    else:
        values = np.asarray(lr, dtype=np.float64) if isinstance(lr, (list, tuple, np.ndarray)) else None
        if values is None or values.shape != (n_models,):
            raise ValueError(f"lr: must be a finite number > 0 or {n_models} of them (one per "
                             f"model), got {lr!r}")
    if not (np.isfinite(values).all() and (values > 0).all()):
        raise ValueError(f"lr: must be finite and > 0, got {lr!r}")
    return values


def _initial_heads(init, seeds, shape: tuple[int, int, int, int], loss: str) -> np.ndarray:
    """Initial heads of shape (M, H, C, d) from "zero", "random" or an array."""
    n_models, n_heads, n_outputs, d = shape
    if isinstance(init, str):
        if init == "zero":
            return np.zeros(shape)
        if init == "random":
            bound = 1.0 / math.sqrt(d)
            draws = [torch.rand(shape[1:], dtype=torch.float64, generator=torch.Generator()
                                .manual_seed(run_seed(int(seed), INIT_STREAM))).numpy()
                     for seed in seeds]
            return (2.0 * np.stack(draws) - 1.0) * bound
        raise ValueError(f"init: must be 'zero', 'random' or an array, got {init!r}")
    expected = ((n_models,) + ((n_heads,) if n_heads > 1 else ())
                + ((n_outputs,) if loss == "softmax" else ()) + (d,))
    array = np.asarray(init, dtype=np.float64)
    if array.shape != expected or not np.isfinite(array).all():
        raise ValueError(f"init: an array must be finite with shape {expected} (M, [n_heads,] "
                         f"[C,] d), got shape {array.shape}")
    return array.reshape(shape).copy()


# --------------------------------------------------------------------------- the trainer -------

def train_heads(X, y, *, masks, init, loss, lr, n_steps, checkpoints, batch_size=None, seeds=None,
                n_heads=1, head_reduction="mean", dtype=torch.float64) -> Trace:
    """Train M linear heads on fixed features at once by full-batch GD or minibatch SGD.

    Parameters
    ----------
    X : array of shape (n, d)
        Fixed features, shared by all models.
    y : array of shape (n,)
        Integer labels 0..C-1 (binary losses: 0/1).
    masks : array of shape (M, n)
        0/1 sample membership; model m minimises the mean loss over its own samples.
    init : {"zero", "random"} or array of shape (M, [n_heads,] [C,] d)
        Initial heads (see the module docstring for "random").
    loss : {"logistic", "exponential", "softmax"}
    lr : float or array of shape (M,)
        Step size η > 0 (of the model's loss; see ``head_reduction``), shared or one per model
        (so that configs differing only in their step train in one call).
    n_steps : int
        Number of updates T >= 0.
    checkpoints : sequence of int
        Strictly increasing iterations in ``[0, n_steps]`` at which weights and loss are recorded
        (e.g. :func:`verify.trainers.checkpoints.log_spaced_checkpoints`).
    batch_size : int, optional
        None for full-batch GD; otherwise the minibatch size of SGD in ``[1, n]`` with the coupling of
        the module docstring.
    seeds : array of shape (M,) of int, optional
        Per-model seeds; required for SGD and for ``init="random"``.
    n_heads : int, default=1
        Heads per model (MHLoss).
    head_reduction : {"mean", "sum"}, default="mean"
        How a model's loss combines its heads' losses.
    dtype : torch.dtype, default=torch.float64
        Precision of the computation.

    Returns
    -------
    Trace
        ``weights["w"]`` of shape (K, M, [n_heads,] [C,] d); ``train_loss`` (K, M) the model's loss
        on its own samples; ``diverged_at`` per model.
    """
    problem = check_head_problem(X, y, masks=masks, init=init, loss=loss, lr=lr, n_steps=n_steps,
                                 checkpoints=checkpoints, batch_size=batch_size, seeds=seeds,
                                 n_heads=n_heads, head_reduction=head_reduction)
    return _BatchedHeads(problem, dtype).run()


class _BatchedHeads:
    """The state and buffers of one batched run; ``run`` is the training loop."""

    def __init__(self, problem: HeadProblem, dtype: torch.dtype):
        self.order = _seed_major_order(problem)
        if self.order is not None:
            problem = _models_in_order(problem, self.order)
        self.problem = problem
        n_models, n_heads, n_outputs, d = problem.init.shape
        n = problem.X.shape[0]
        self.shape = (n, n_outputs, n_models, n_heads)
        X = torch.as_tensor(problem.X, dtype=dtype)
        y = torch.as_tensor(problem.y)
        self.loss = _LOSS_CLASSES[problem.loss](y.to(dtype))
        self.features = self.loss.features(X, y.to(dtype)).contiguous()         # (n, d)
        self.features_t = self.features.t().contiguous()                        # (d, n)
        n_columns = n_models * n_heads * n_outputs
        self.weights = (torch.as_tensor(problem.init, dtype=dtype).permute(2, 0, 1, 3)
                        .reshape(n_columns, d).t().contiguous())
        self.scores = torch.empty(n, n_columns, dtype=dtype)
        masks = torch.as_tensor(problem.masks, dtype=dtype)
        self.mean_weights = (masks / masks.sum(1, keepdim=True)).t().contiguous()  # (n, M)
        self.alive = torch.ones(n_models, dtype=torch.bool)
        self.step_size = torch.as_tensor(problem.lr * problem.head_scale, dtype=dtype)
        self.coefficients = (self.mean_weights * self.step_size).contiguous()  # GD: (n, M)
        self.minibatches: _SeedMajorMinibatches | None = None
        if problem.batch_size is not None:
            self.masks = masks
            assert problem.seeds is not None  # check_head_problem requires seeds for SGD
            seed_values, seed_of_model = np.unique(problem.seeds, return_inverse=True)
            self.streams = [PermutationStream(run_seed(int(seed), BATCH_STREAM), n)
                            for seed in seed_values]
            self.seed_of_model = torch.as_tensor(seed_of_model)
            if self.order is None:
                self.chunk = _chunk_steps(n * n_models, int(problem.checkpoints[-1]))
                self.batch_buffer = torch.empty(self.chunk, n, n_models, dtype=dtype)
            else:
                self.minibatches = _SeedMajorMinibatches(self, len(seed_values))
                self.chunk = self.minibatches.chunk
            self.batches = torch.empty(0)                             # the steps drawn ahead
            self.batches_start = 0
        self.diverged_at = torch.full((n_models,), -1, dtype=torch.int64)
        # A model's loss is at most heads_factor times the largest loss of one of its heads.
        self.heads_factor = 1.0 if problem.head_reduction == "mean" else float(problem.n_heads)
        self.threshold = torch.full((n_models,), math.inf, dtype=dtype)
        self.safe_level = math.inf
        self.score_drift = (float(problem.lr.max()) * problem.head_scale
                            * float((self.features ** 2).sum(1).max()))
        self.next_check = 0

    def view4(self, columns: torch.Tensor) -> torch.Tensor:
        return columns.view(self.shape)

    def model_losses(self) -> torch.Tensor:
        """Exact (M,) training losses at the current scores (NaN for frozen models)."""
        per_head = torch.einsum("imh,im->mh", self.loss.per_sample(self.view4(self.scores)),
                                self.mean_weights)
        losses = per_head.mean(1) if self.problem.head_reduction == "mean" else per_head.sum(1)
        return torch.where(self.alive, losses, torch.nan)

    def set_thresholds(self, initial: torch.Tensor) -> None:
        """Blow-up thresholds BLOWUP * max(L_m(w_0), L_m(0)) from the initial losses."""
        zero_level = self.loss.zero_loss * self.heads_factor
        reference = torch.where(torch.isfinite(initial), initial.clamp(min=zero_level), zero_level)
        self.threshold = BLOWUP * reference
        self.safe_level = float(self.threshold.min())

    def check_divergence(self, t: int) -> torch.Tensor | None:
        """Freeze the models whose loss at iteration t diverged; return the exact losses if computed.

        A bound on every model's loss from the extreme scores is compared with the smallest
        threshold; for the Lipschitz losses, how fast the scores can move then tells how many
        further iterations need no test at all.
        """
        if t < self.next_check:
            return None
        room = self.loss.headroom(self.scores, self.safe_level / self.heads_factor)
        if room >= 0:
            rate = self.loss.headroom_rate
            if rate is not None and self.score_drift > 0:
                self.next_check = t + 1 + int(room / (rate * self.score_drift))
            return None
        losses = self.model_losses()
        newly = self.alive & ~(losses <= self.threshold)
        if newly.any():
            self.diverged_at[newly] = t
            self.alive &= ~newly
            for columns in (self.weights.view(-1, *self.shape[1:]), self.view4(self.scores)):
                columns[:, :, newly] = 0.0
            self.step_size[newly] = 0.0
            self.coefficients[:, newly] = 0.0
            if self.problem.batch_size is not None:
                if self.minibatches is None:
                    self.batches[:, :, newly] = 0.0
                else:
                    self.minibatches.freeze(newly)
            losses = torch.where(self.alive, losses, torch.nan)
        return losses

    def batch_index(self, t: int) -> int:
        """Where step t's minibatch coefficients are in ``batches``.

        The minibatches of the next steps are drawn together, up to ``BATCH_CHUNK`` coefficients
        (each seed's stream yields its permutations in the same order as one step at a time), so
        the gathers and scatters run once per chunk instead of once per step.
        """
        k = t - self.batches_start
        if k >= len(self.batches):
            remaining = int(self.problem.checkpoints[-1]) - t
            self.draw_batches(max(1, min(remaining, self.chunk)))
            self.batches_start, k = t, 0
        return k

    def draw_batches(self, n_steps: int) -> None:
        """Draw the next ``n_steps`` steps' minibatches into ``batches``: the coefficients
        ``step_m / |B ∩ S_m|`` of each model's batch members, (n_steps, n, M) on all samples or
        (:class:`_SeedMajorMinibatches`) (n_steps, seeds, b, models per seed) on the batch rows."""
        assert self.problem.batch_size is not None
        prefixes = torch.from_numpy(permutation_prefixes(self.streams, n_steps, self.problem.batch_size))
        rows = prefixes[:, self.seed_of_model]                                     # (K, M, b)
        members = self.masks.expand(n_steps, -1, -1).gather(2, rows)
        counts = members.sum(2, keepdim=True).clamp(min=1.0)
        coefficients = members.mul_(self.step_size[:, None] / counts)
        if self.minibatches is None:
            self.batches = self.batch_buffer[:n_steps].zero_()
            self.batches.transpose(1, 2).scatter_(2, rows, coefficients)
        else:
            self.batches = self.minibatches.draw(prefixes, coefficients)

    def full_step(self, coefficients: torch.Tensor) -> None:
        """One update from the scores of all n samples, with (n, M) per-sample coefficients."""
        n, n_outputs, n_models, n_heads = self.shape
        terms = self.loss.derivative_(self.view4(self.scores))
        if n_outputs == n_heads == 1:
            terms.view(n, n_models).mul_(coefficients)
        else:
            terms.mul_(coefficients[:, None, :, None])
        self.weights.addmm_(self.features_t, terms.view(n, -1), alpha=-1.0)

    def run(self) -> Trace:
        problem = self.problem
        n, n_outputs, n_models, n_heads = self.shape
        points = problem.checkpoints.tolist()
        recorded_weights = np.empty((len(points), n_models) + problem.init.shape[1:])
        recorded_loss = np.empty((len(points), n_models))
        minibatches = self.minibatches
        k = 0
        for t in range(problem.n_steps + 1):
            if minibatches is None:
                torch.mm(self.features, self.weights, out=self.scores)
            elif t >= self.next_check or t == points[k]:
                minibatches.write_weights()
                torch.mm(self.features, self.weights, out=self.scores)
            if t == 0:
                self.set_thresholds(self.model_losses())
            losses = self.check_divergence(t)
            if t == points[k]:
                losses = self.model_losses() if losses is None else losses
                recorded_loss[k] = losses.numpy()
                recorded_weights[k] = (self.weights.t().view(n_outputs, n_models, n_heads, -1)
                                       .permute(1, 2, 0, 3).numpy())
                recorded_weights[k][~self.alive.numpy()] = np.nan
                k += 1
                if k == len(points):
                    break
            if problem.batch_size is None:
                self.full_step(self.coefficients)
            else:
                j = self.batch_index(t)
                if minibatches is None:
                    self.full_step(self.batches[j])
                else:
                    minibatches.step(j)
        diverged_at = self.diverged_at.numpy()
        if self.order is not None:
            original = np.argsort(self.order)
            recorded_weights, recorded_loss = recorded_weights[:, original], recorded_loss[:, original]
            diverged_at = diverged_at[original]
        return Trace(iterations=problem.checkpoints,
                     weights={"w": recorded_weights.reshape((len(points),)
                                                            + problem.weights_shape(n_models))},
                     train_loss=recorded_loss, diverged_at=diverged_at)


class _SeedMajorMinibatches:
    """SGD on each seed's minibatch rows only, the models in seed-major order (as many per seed).

    A step is then one small batched matrix product per seed, ``(b, d) x (d, U_s)`` for the scores
    and ``(d, b) x (b, U_s)`` for the gradient, instead of two over all n samples. The weights live
    here seed-major, ``(seeds, d, C, models per seed * H)``; :meth:`write_weights` copies them into
    the trainer's class-major ``(d, U)`` matrix where all n scores are needed (the divergence test
    when due, the checkpoints), and :meth:`freeze` zeroes a frozen model's weights in both. A
    chunk's features, targets and coefficients are gathered when it is drawn, so a step is five
    tensor operations.
    """

    def __init__(self, heads: _BatchedHeads, n_seeds: int):
        n, n_outputs, n_models, n_heads = heads.shape
        assert heads.problem.batch_size is not None
        self.heads, self.batch_size = heads, heads.problem.batch_size
        self.d = heads.features.shape[1]
        self.blocks = (n_seeds, n_outputs, n_models // n_seeds, n_heads)
        self.weights = (heads.weights.view(self.d, n_outputs, n_seeds, -1).permute(2, 0, 1, 3)
                        .contiguous())
        self.weights_3d = self.weights.view(n_seeds, self.d, -1)
        self.scores = torch.empty(n_seeds, self.batch_size, self.weights_3d.shape[2],
                                  dtype=self.weights.dtype)
        self.scores_5d = self.scores.view(n_seeds, self.batch_size, n_outputs, -1, n_heads)
        self.features = heads.features.numpy()
        per_step = self.batch_size * (n_models + n_seeds * (self.d + n_outputs))
        self.chunk = _chunk_steps(per_step, int(heads.problem.checkpoints[-1]))
        self.drawn: list[tuple] = []

    def draw(self, prefixes: torch.Tensor, coefficients: torch.Tensor) -> torch.Tensor:
        """Gather the features (and softmax targets) of the drawn rows ``prefixes`` (K, seeds, b);
        return the coefficients (K, M, b) laid out (K, seeds, b, models per seed)."""
        n_steps = len(prefixes)
        n_seeds, _, per_seed, _ = self.blocks
        rows = prefixes.reshape(-1)
        features = torch.from_numpy(self.features.take(rows.numpy(), axis=0)).view(*prefixes.shape, self.d)
        targets = self.heads.loss.minibatch_targets(rows)
        laid_out = (coefficients.view(n_steps, n_seeds, per_seed, self.batch_size).transpose(2, 3)
                    .contiguous())
        self.drawn = list(zip(features.unbind(0), features.transpose(2, 3).unbind(0),
                              laid_out[:, :, :, None, :, None].unbind(0),
                              [None] * n_steps if targets is None
                              else targets.view(*prefixes.shape, -1, 1, 1).unbind(0)))
        return laid_out

    def step(self, k: int) -> None:
        """The update of the k-th drawn step."""
        features, features_t, coefficients, targets = self.drawn[k]
        torch.bmm(features, self.weights_3d, out=self.scores)
        terms = self.heads.loss.minibatch_derivative_(self.scores_5d, targets).mul_(coefficients)
        self.weights_3d.baddbmm_(features_t, terms.view(self.scores.shape), alpha=-1.0)

    def write_weights(self) -> None:
        n_seeds, n_outputs, _, _ = self.blocks
        self.heads.weights.view(self.d, n_outputs, n_seeds, -1).copy_(self.weights.permute(1, 2, 0, 3))

    def freeze(self, models: torch.Tensor) -> None:
        """Zero the weights and the drawn-ahead coefficients of the (M,) boolean ``models``."""
        n_seeds, _, per_seed, n_heads = self.blocks
        frozen = models.view(n_seeds, 1, 1, per_seed, 1)
        self.weights.view(n_seeds, self.d, -1, per_seed, n_heads).masked_fill_(frozen, 0.0)
        self.heads.batches.masked_fill_(models.view(1, n_seeds, 1, per_seed), 0.0)


def _chunk_steps(per_step: int, last_checkpoint: int) -> int:
    """How many steps' minibatches SGD draws at once: ``BATCH_CHUNK`` values of ``per_step`` each."""
    return max(1, min(last_checkpoint, BATCH_CHUNK // per_step))


def _seed_major_order(problem: HeadProblem) -> np.ndarray | None:
    """The order (seed-major, stable) in which SGD trains the models on their minibatch rows only,
    or None where every step computes all n scores: GD, minibatches of all n samples, the
    exponential loss (its divergence test needs every score at every step: ``headroom_rate`` is
    None), or seeds with unequal numbers of models."""
    if (problem.batch_size is None or problem.batch_size == len(problem.X)
            or problem.loss == "exponential"):
        return None
    assert problem.seeds is not None
    _, counts = np.unique(problem.seeds, return_counts=True)
    if (counts != counts[0]).any():
        return None
    return np.argsort(problem.seeds, kind="stable")


def _models_in_order(problem: HeadProblem, order: np.ndarray) -> HeadProblem:
    assert problem.seeds is not None
    return replace(problem, masks=problem.masks[order], init=problem.init[order],
                   lr=problem.lr[order], seeds=problem.seeds[order])


# ---------------------------------------------------------------------------- step sizes -------

def smoothness(X, loss, masks=None):
    """Smoothness β̂ of the mean training loss, so that a config can set ``lr = lr_scale / β̂``.

    With ``λ = λ_max(Xᵀ X / n)`` (over each model's own samples when ``masks`` is given):

    - ``"logistic"``: ``λ / 4`` (the logistic loss has curvature at most 1/4 in the margin);
    - ``"softmax"``: ``λ / 2`` (the Hessian of cross-entropy in the logits, ``diag(p) - p pᵀ``, has
      eigenvalues at most 1/2);
    - ``"exponential"``: ``λ``. The exponential loss is not globally smooth (its Hessian
      ``mean e^{-m_i} x_i x_iᵀ`` grows with the loss); this is its Hessian at ``w = 0``, i.e. the
      curvature at loss level 1, the loss of the zero head. From a zero head, GD with a step below
      ``1/λ`` decreases the loss on separable data, and the curvature decreases with it.
    - ``"squared"``: ``λ`` (½(x·w - y)²; add the strengths of L2-SP and weight decay yourself).

    Parameters
    ----------
    X : array of shape (n, d)
    loss : {"logistic", "exponential", "softmax", "squared"}
    masks : array of shape (M, n), optional

    Returns
    -------
    float, or ndarray of shape (M,) when ``masks`` is given
    """
    factors = {"logistic": 0.25, "softmax": 0.5, "exponential": 1.0, "squared": 1.0}
    if loss not in factors:
        raise ValueError(f"loss: must be one of {tuple(factors)}, got {loss!r}")
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2 or X.shape[0] < 1:
        raise ValueError(f"X: must be an (n, d) array with n >= 1, got shape {X.shape}")
    if masks is None:
        return factors[loss] * float(np.linalg.eigvalsh(X.T @ X / len(X))[-1])
    masks = np.asarray(masks, dtype=np.float64)
    if masks.ndim != 2 or masks.shape[1] != len(X) or not (masks.sum(1) > 0).all():
        raise ValueError(f"masks: must be an (M, {len(X)}) 0/1 array with no empty row, "
                         f"got shape {masks.shape}")
    weights = masks / masks.sum(1, keepdims=True)
    hessians = np.einsum("mi,ij,ik->mjk", weights, X, X)
    return factors[loss] * np.linalg.eigvalsh(hessians)[:, -1]
