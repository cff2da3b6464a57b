"""Batched head tuning: equal to the per-model loop, correct gradients, masks, SGD coupling,
divergence, implicit bias towards the max-margin direction, reproducibility."""
import math

import numpy as np
import pytest
import scipy.optimize
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from verify.trainers import head, naive
from verify.trainers.checkpoints import log_spaced_checkpoints


def leave_one_out_masks(n, seeds=1):
    """Seed-major: for each seed, the full set S, then S without sample i for each i."""
    block = np.ones((n + 1, n), dtype=bool)
    block[np.arange(1, n + 1), np.arange(n)] = False
    return np.tile(block, (seeds, 1))


def blobs(n, d, n_classes=2, seed=0):
    rng = np.random.default_rng(seed)
    y = np.arange(n) % n_classes
    centres = rng.normal(size=(n_classes, d)) * 1.5
    return centres[y] + rng.normal(size=(n, d)), y


CASES = [
    dict(),
    dict(batch_size=5),
    dict(init="random", n_heads=3),
    dict(init="random", n_heads=2, head_reduction="sum", batch_size=7),
]


@pytest.mark.parametrize("loss", head.LOSSES)
@pytest.mark.parametrize("case", CASES,
                         ids=lambda case: ",".join(f"{k}={v}" for k, v in case.items()) or "gd")
def test_batched_equals_naive_loop(loss, case):
    n_classes = 3 if loss == "softmax" else 2
    X, y = blobs(8, 4, n_classes)
    masks = leave_one_out_masks(8, seeds=2)
    options = {"init": "zero", "seeds": np.repeat([11, 12], 9), **case}
    lr = 1.5 / head.smoothness(X, loss)
    arguments = dict(masks=masks, loss=loss, lr=lr, n_steps=60, checkpoints=[0, 1, 7, 60],
                     **options)
    batched = head.train_heads(X, y, **arguments)
    loop = naive.train_heads(X, y, **arguments)
    np.testing.assert_allclose(batched.weights["w"], loop.weights["w"], rtol=0, atol=1e-10)
    np.testing.assert_allclose(batched.train_loss, loop.train_loss, rtol=0, atol=1e-10)
    assert (batched.diverged_at == -1).all() and (loop.diverged_at == -1).all()
    assert batched.train_loss[-1].max() < batched.train_loss[0].min()  # training does something


@settings(max_examples=10)
@given(seed=st.integers(0, 10_000), n=st.integers(3, 9), d=st.integers(1, 4),
       lr_scale=st.floats(0.1, 1.9), batch=st.booleans())
def test_batched_equals_naive_on_random_problems(seed, n, d, lr_scale, batch):
    rng = np.random.default_rng(seed)
    X, y = rng.normal(size=(n, d)), rng.integers(0, 2, n)
    y[:2] = [0, 1]
    masks = rng.random((5, n)) < 0.7
    masks[:, 0] = True
    arguments = dict(masks=masks, loss="logistic", init="random", seeds=rng.integers(0, 3, 5),
                     lr=lr_scale / head.smoothness(X, "logistic"), n_steps=40,
                     checkpoints=[0, 3, 40], batch_size=min(2, n) if batch else None)
    np.testing.assert_allclose(head.train_heads(X, y, **arguments).weights["w"],
                               naive.train_heads(X, y, **arguments).weights["w"], rtol=0, atol=1e-10)


def documented_loss(loss, W, X, y, reduction):
    """The model loss of the module docstring, written with autograd-friendly torch ops."""
    logits = torch.einsum("hcd,id->hic", W, X)
    if loss == "softmax":
        per_head = torch.nn.functional.cross_entropy(logits.transpose(1, 2), y.expand(len(W), -1),
                                                     reduction="none").mean(1)
    else:
        margins = (2.0 * y - 1.0) * logits[..., 0]
        per_head = (torch.nn.functional.softplus(-margins) if loss == "logistic"
                    else torch.exp(-margins)).mean(1)
    return per_head.mean() if reduction == "mean" else per_head.sum()


@pytest.mark.parametrize("loss", head.LOSSES)
@pytest.mark.parametrize("reduction", head.HEAD_REDUCTIONS)
def test_one_step_is_gradient_descent_on_the_documented_loss(loss, reduction):
    X, y = blobs(9, 3, 3 if loss == "softmax" else 2, seed=4)
    masks = leave_one_out_masks(9)[:3]
    lr = 0.7
    trace = head.train_heads(X, y, masks=masks, init="random", seeds=[5, 5, 6], loss=loss, lr=lr,
                             n_steps=1, checkpoints=[0, 1], n_heads=2, head_reduction=reduction)
    for m in range(3):
        rows = np.flatnonzero(masks[m])
        w0 = torch.tensor(trace.weights["w"][0, m]).reshape(2, -1, 3).requires_grad_()
        value = documented_loss(loss, w0, torch.tensor(X[rows]), torch.tensor(y[rows]), reduction)
        (gradient,) = torch.autograd.grad(value, w0)
        expected = (w0 - lr * gradient).detach().numpy().reshape(trace.weights["w"][1, m].shape)
        np.testing.assert_allclose(trace.weights["w"][1, m], expected, rtol=0, atol=1e-13)
        assert trace.train_loss[0, m] == pytest.approx(value.item(), rel=1e-13)


@pytest.mark.parametrize("batch_size", [None, 3])
def test_masked_out_sample_has_no_influence(batch_size):
    X, y = blobs(8, 3)
    masks = leave_one_out_masks(8)
    arguments = dict(masks=masks, loss="logistic", init="random", seeds=np.zeros(9, int), lr=1.0,
                     n_steps=50, checkpoints=[50], batch_size=batch_size)
    changed = X.copy()
    changed[2] = [30.0, -7.0, 4.0]
    before = head.train_heads(X, y, **arguments).weights["w"][0]
    after = head.train_heads(changed, y, **arguments).weights["w"][0]
    excludes = ~masks[:, 2]
    np.testing.assert_array_equal(after[excludes], before[excludes])
    assert np.abs(after[~excludes] - before[~excludes]).min() > 1e-6


def test_sgd_with_full_batches_is_gradient_descent():
    X, y = blobs(9, 3)
    arguments = dict(masks=leave_one_out_masks(9), loss="softmax", init="zero", lr=1.0, n_steps=30,
                     checkpoints=[30], seeds=np.arange(10))
    sgd = head.train_heads(X, y, batch_size=9, **arguments)
    gd = head.train_heads(X, y, **arguments)
    np.testing.assert_allclose(sgd.weights["w"], gd.weights["w"], rtol=0, atol=1e-13)


def test_sgd_coupling_leave_one_out_sees_the_same_stream_without_i():
    # With batch_size 1 the model on S and the model on S\i share every draw except the steps that
    # draw i, where S\i makes no update. Zeroing x_i makes that step a no-op for S as well, so under
    # the coupling the two models stay identical (up to the rounding of different matmul columns); a
    # model with another seed does not.
    X, y = blobs(7, 2)
    X[[1, 4]] = 0.0
    masks = leave_one_out_masks(7, seeds=2)
    seeds = np.repeat([21, 22], 8)
    trace = head.train_heads(X, y, masks=masks, seeds=seeds, loss="logistic", init="zero", lr=0.5,
                             n_steps=200, checkpoints=[200], batch_size=1)
    w = trace.weights["w"][0]
    for block in (0, 8):
        np.testing.assert_allclose(w[block + 1 + 1], w[block], rtol=0, atol=1e-13)
        np.testing.assert_allclose(w[block + 1 + 4], w[block], rtol=0, atol=1e-13)
        assert np.abs(w[block + 1 + 0] - w[block]).max() > 1e-3
    assert np.abs(w[0] - w[8]).max() > 1e-3


MARGIN_LOSSES = {  # per-sample loss of the margin m and its derivative, as scalar reference code
    "exponential": (lambda m: math.exp(min(-m, 709.0)), lambda m: -math.exp(min(-m, 709.0))),
    "logistic": (lambda m: math.log1p(math.exp(-m)) if m > -30 else -m,
                 lambda m: -1.0 / (1.0 + math.exp(m)) if m < 700 else 0.0),
}


def two_point_divergence_step(loss, w0, lr, n_steps):
    """First t at which L(w_t) > BLOWUP * max(L(w0), L(0)) for L(w) = (l(w) + l(-w)) / 2."""
    value, slope = MARGIN_LOSSES[loss]
    objective = lambda w: 0.5 * (value(w) + value(-w))  # noqa: E731
    w, threshold = w0, head.BLOWUP * max(objective(w0), objective(0.0))
    for t in range(n_steps + 1):
        if objective(w) > threshold:
            return t
        w -= lr * 0.5 * (slope(w) - slope(-w))
    return -1


@pytest.mark.parametrize("trainer", [head.train_heads, naive.train_heads])
@pytest.mark.parametrize("loss, lr", [("exponential", 3.0), ("logistic", 4e6)])
def test_divergence_detected_at_the_right_step(trainer, loss, lr):
    # Two opposite samples on one feature: L(w) = (l(w) + l(-w)) / 2 (cosh(w) for the exponential
    # loss), and a step far too large makes GD overshoot until the loss blows up. A second model
    # trains on the first sample only (l(w), which GD decreases for any step).
    X, y = np.array([[1.0], [1.0]]), np.array([1, 0])
    masks = np.array([[1, 1], [1, 0]])
    n_steps = 10
    expected = two_point_divergence_step(loss, 0.5, lr, n_steps)
    assert 1 < expected < n_steps
    trace = trainer(X, y, masks=masks, init=np.array([[0.5], [0.5]]), loss=loss, lr=lr,
                    n_steps=n_steps, checkpoints=np.arange(n_steps + 1))
    assert trace.diverged_at.tolist() == [expected, -1]
    assert np.isfinite(trace.weights["w"][:expected, 0]).all()
    assert np.isnan(trace.weights["w"][expected:, 0]).all()
    assert np.isnan(trace.train_loss[expected:, 0]).all()
    alone = trainer(X, y, masks=masks[1:], init=np.array([[0.5]]), loss=loss, lr=lr,
                    n_steps=n_steps, checkpoints=np.arange(n_steps + 1))
    np.testing.assert_allclose(trace.weights["w"][:, 1], alone.weights["w"][:, 0], rtol=1e-14)


def max_margin_direction(X, s):
    """Hard-margin SVM without bias, min ||w||^2 s.t. s_i w.x_i >= 1, by SLSQP; returns w_hat."""
    result = scipy.optimize.minimize(
        lambda w: w @ w, np.ones(X.shape[1]), jac=lambda w: 2 * w, method="SLSQP",
        constraints={"type": "ineq", "fun": lambda w: s * (X @ w) - 1, "jac": lambda w: s[:, None] * X},
        options={"ftol": 1e-14, "maxiter": 500})
    assert result.success
    return result.x


def test_logistic_gd_from_zero_approaches_the_max_margin_direction():
    rng = np.random.default_rng(3)
    X = rng.normal(size=(16, 2))
    direction = np.array([0.6, 0.8])
    s = np.where(X @ direction >= 0, 1.0, -1.0)
    X += 0.5 * s[:, None] * direction          # margin at least 0.5 along `direction`
    y = ((s + 1) // 2).astype(int)
    w_hat = max_margin_direction(X, s)
    points = log_spaced_checkpoints(20_000, num=9)
    trace = head.train_heads(X, y, masks=np.ones((1, 16)), init="zero", loss="logistic",
                             lr=1.0 / head.smoothness(X, "logistic"), n_steps=20_000,
                             checkpoints=points)
    w = trace.weights["w"][:, 0]
    error = np.linalg.norm(w / np.linalg.norm(w, axis=1, keepdims=True) - w_hat / np.linalg.norm(w_hat),
                           axis=1)
    late = points >= 100
    assert np.all(np.diff(error[late]) < 0)
    assert error[-1] < 0.05 < error[0]
    # ||w_t|| ~ ||w_hat|| log t: the slope of the norm against log t tends to ||w_hat||.
    slope = np.diff(np.linalg.norm(w, axis=1)[-3:]) / np.diff(np.log(points[-3:]))
    assert slope[-1] == pytest.approx(np.linalg.norm(w_hat), rel=0.1)


def test_same_seeds_reproduce_bitwise_and_other_seeds_differ():
    X, y = blobs(8, 3, 3)
    arguments = dict(masks=leave_one_out_masks(8), loss="softmax", init="random", lr=0.5,
                     n_steps=40, checkpoints=[40], batch_size=3, n_heads=2)
    first = head.train_heads(X, y, seeds=np.full(9, 7), **arguments)
    again = head.train_heads(X, y, seeds=np.full(9, 7), **arguments)
    other = head.train_heads(X, y, seeds=np.full(9, 8), **arguments)
    np.testing.assert_array_equal(first.weights["w"], again.weights["w"])
    np.testing.assert_array_equal(first.train_loss, again.train_loss)
    assert (np.abs(first.weights["w"] - other.weights["w"]).max(axis=(2, 3, 4)) > 1e-3).all()


@pytest.mark.parametrize("loss", ["logistic", "softmax", "exponential"])
def test_smoothness_bounds_the_hessian(loss):
    X, y = blobs(12, 3, 3 if loss == "softmax" else 2, seed=1)
    beta = head.smoothness(X, loss)
    outputs = 3 if loss == "softmax" else 1

    def mean_loss(w):
        return documented_loss(loss, w.reshape(1, outputs, 3), torch.tensor(X), torch.tensor(y), "mean")

    for scale in (0.0, 0.3, 1.0):
        w = torch.tensor(np.random.default_rng(2).normal(size=outputs * 3) * scale)
        top = np.linalg.eigvalsh(torch.autograd.functional.hessian(mean_loss, w).numpy())[-1]
        if loss == "logistic" and scale == 0.0:
            assert top == pytest.approx(beta, rel=1e-12)      # the bound is attained at w = 0
        elif loss == "exponential" and scale == 0.0:
            assert top == pytest.approx(beta, rel=1e-12)      # the curvature at loss level 1
        elif loss != "exponential":
            assert top <= beta * (1 + 1e-12)
    per_model = head.smoothness(X, loss, masks=leave_one_out_masks(12)[:2])
    assert per_model[0] == pytest.approx(beta, rel=1e-12)


@pytest.mark.parametrize("change, message", [
    (dict(loss="hinge"), "loss"),
    (dict(lr=0.0), "lr"),
    (dict(lr=[1.0, 1.0, 1.0]), "lr"),
    (dict(lr=np.array([1.0, np.inf])), "lr"),
    (dict(lr=True), "lr"),
    (dict(n_steps=-1), "n_steps"),
    (dict(checkpoints=[5, 3]), "checkpoints"),
    (dict(checkpoints=[11]), "checkpoints"),
    (dict(batch_size=9), "batch_size"),
    (dict(masks=np.zeros((2, 8))), "masks"),
    (dict(init="random"), "seeds"),
    (dict(init=np.zeros((2, 4))), "init"),
    (dict(n_heads=0), "n_heads"),
    (dict(head_reduction="max"), "head_reduction"),
])
def test_invalid_arguments_raise_naming_the_parameter(change, message):
    X, y = blobs(8, 3)
    arguments = dict(masks=np.ones((2, 8)), init="zero", loss="logistic", lr=1.0, n_steps=10,
                     checkpoints=[10])
    with pytest.raises(ValueError, match=message):
        head.train_heads(X, y, **{**arguments, **change})


def test_log_spaced_checkpoints():
    points = log_spaced_checkpoints(20_000, num=9)
    assert points[0] == 1 and points[-1] == 20_000 and np.all(np.diff(points) > 0)
    ratios = points[1:] / points[:-1]
    np.testing.assert_allclose(ratios[points[:-1] >= 10], 20_000 ** (1 / 8), rtol=0.05)
    assert log_spaced_checkpoints(3, num=10, include_zero=True).tolist() == [0, 1, 2, 3]
    with pytest.raises(ValueError, match="n_steps"):
        log_spaced_checkpoints(0)


def test_a_masked_out_outlier_does_not_trigger_divergence():
    # The cheap divergence bound looks at every score, including the scores of samples a model does
    # not train on; a huge one must fall through to the exact per-model check, not flag the model.
    X, y = blobs(9, 2, seed=5)
    towards_class_1 = X[y == 1].mean(0) - X[y == 0].mean(0)
    X[0], y[0] = 150.0 * towards_class_1 / np.linalg.norm(towards_class_1), 0   # far on the wrong side
    masks = np.ones((2, 9), dtype=bool)
    masks[0, 0] = False
    arguments = dict(masks=masks, loss="exponential", init="zero", n_steps=200,
                     checkpoints=[200], lr=1.0 / head.smoothness(X[1:], "exponential"))
    trace = head.train_heads(X, y, **arguments)
    margin = -X[0] @ trace.weights["w"][0, 0]
    assert -margin > np.log(head.BLOWUP) + 5     # exp(-margin) of the outlier alone exceeds the bound
    assert trace.diverged_at[0] == -1 and trace.diverged_at[1] >= 0   # (the one training on it blows up)
    np.testing.assert_array_equal(trace.diverged_at, naive.train_heads(X, y, **arguments).diverged_at)


MULTICLASS_CASES = [dict(init="zero"),
                    dict(init="random", n_heads=2),
                    dict(init="random", batch_size=8, n_heads=3, head_reduction="sum")]


@pytest.mark.parametrize("case", MULTICLASS_CASES,
                         ids=lambda case: ",".join(f"{k}={v}" for k, v in case.items()))
def test_class_major_multiclass_heads_equal_the_per_model_loop_to_1e_12(case):
    # The batched trainer lays the classes out leading (columns c-major, softmax over axis 1); the
    # per-model loop keeps them innermost, as the batched trainer did before. Every left-out set of
    # a 4-class dataset, 300 steps at lr = 1/β̂ (weights of order 1): equal to 1e-12.
    X, y = blobs(24, 5, n_classes=4, seed=2)
    masks = leave_one_out_masks(24, seeds=2)
    seeds = np.repeat([7, 8], 25)
    arguments = dict(loss="softmax", lr=1.0 / head.smoothness(X, "softmax"), n_steps=300,
                     checkpoints=log_spaced_checkpoints(300, include_zero=True), **case)
    batched = head.train_heads(X, y, masks=masks, seeds=seeds, **arguments)
    checked = [0, 13, 25, 49]
    loop = naive.train_heads(X, y, masks=masks[checked], seeds=seeds[checked], **arguments)
    assert np.abs(batched.weights["w"]).max() > 0.5
    np.testing.assert_allclose(batched.weights["w"][:, checked], loop.weights["w"], rtol=0, atol=1e-12)
    np.testing.assert_allclose(batched.train_loss[:, checked], loop.train_loss, rtol=0, atol=1e-12)


def test_a_diverging_multiclass_model_is_frozen_without_touching_the_others():
    # Three classes on three nearly parallel samples: a step of 1e7 makes the full-set model's
    # logits overshoot until its loss blows up at t = 2; the models on fewer samples stay finite.
    X, y = np.array([[1.0, 0.2], [1.0, -0.1], [0.9, 0.0]]), np.array([1, 0, 2])
    masks = np.array([[1, 1, 1], [1, 0, 0], [1, 1, 0]])
    arguments = dict(init="random", loss="softmax", lr=1e7, n_steps=12, checkpoints=np.arange(13),
                     n_heads=2)
    trace = head.train_heads(X, y, masks=masks, seeds=[1, 2, 3], **arguments)
    loop = naive.train_heads(X, y, masks=masks, seeds=[1, 2, 3], **arguments)
    assert trace.diverged_at.tolist() == loop.diverged_at.tolist() == [2, -1, -1]
    assert np.isnan(trace.weights["w"][2:, 0]).all() and np.isfinite(trace.weights["w"][:, 1:]).all()
    np.testing.assert_allclose(trace.weights["w"], loop.weights["w"], rtol=1e-12, atol=0)
    alone = head.train_heads(X, y, masks=masks[1:], seeds=[2, 3], **arguments)
    np.testing.assert_array_equal(trace.weights["w"][:, 1:], alone.weights["w"])


# Equal numbers of models per seed: SGD computes each seed's minibatch rows only; unequal: all n rows.
SGD_PATHS = {"minibatch-rows": np.repeat([3, 4], 9), "all-rows": np.repeat([3, 4], [9, 8])}


@pytest.mark.parametrize("path", SGD_PATHS)
@pytest.mark.parametrize("chunk_steps", [1, 7, None], ids=["per-step", "chunks-of-7", "default"])
def test_sgd_minibatches_drawn_ahead_in_chunks_equal_one_step_at_a_time(monkeypatch, chunk_steps, path):
    # SGD draws the minibatches of several steps at once; the seeds' streams, and so the weights,
    # are bitwise those of drawing one step at a time (chunk of 1), across chunk boundaries and a
    # partial last chunk (60 steps in chunks of 7), and equal the per-model loop.
    X, y = blobs(8, 3)
    seeds = SGD_PATHS[path]
    arguments = dict(masks=leave_one_out_masks(8, seeds=2)[:len(seeds)], loss="logistic",
                     init="random", seeds=seeds, lr=1.0, n_steps=60, checkpoints=[0, 5, 31, 60],
                     batch_size=3)
    assert (head._seed_major_order(head.check_head_problem(X, y, n_heads=1, head_reduction="mean",
                                                           **arguments)) is None) == (path == "all-rows")
    monkeypatch.setattr(head, "_chunk_steps", lambda per_step, last: 1)
    one_at_a_time = head.train_heads(X, y, **arguments)
    if chunk_steps is not None:
        monkeypatch.setattr(head, "_chunk_steps", lambda per_step, last: chunk_steps)
    else:
        monkeypatch.undo()
    chunked = head.train_heads(X, y, **arguments)
    np.testing.assert_array_equal(chunked.weights["w"], one_at_a_time.weights["w"])
    np.testing.assert_allclose(chunked.weights["w"], naive.train_heads(X, y, **arguments).weights["w"],
                               rtol=0, atol=1e-10)


SGD_ROWS_CASES = [dict(loss="logistic"), dict(loss="softmax"),
                  dict(loss="logistic", n_heads=3), dict(loss="softmax", n_heads=2, head_reduction="sum")]


@pytest.mark.parametrize("case", SGD_ROWS_CASES,
                         ids=lambda case: ",".join(f"{k}={v}" for k, v in case.items()))
def test_sgd_on_the_minibatch_rows_equals_sgd_on_all_rows(monkeypatch, case):
    # The seed-major path (scores of each seed's minibatch rows only, models reordered by seed when
    # they come interleaved) against every step computing all n scores: the same weights and losses
    # up to rounding (measured 1.5e-14 on weights of order 5), 400 steps, three seeds given out of order.
    X, y = blobs(30, 4, n_classes=3 if case["loss"] == "softmax" else 2, seed=4)
    masks = np.tile(leave_one_out_masks(30)[:4], (3, 1))
    seeds = np.tile([9, 2, 5], 4)
    arguments = dict(masks=masks, init="random", seeds=seeds, n_steps=400, batch_size=6,
                     lr=1.0 / head.smoothness(X, case["loss"]), checkpoints=[0, 17, 400], **case)
    rows = head.train_heads(X, y, **arguments)
    monkeypatch.setattr(head, "_seed_major_order", lambda problem: None)
    everything = head.train_heads(X, y, **arguments)
    assert np.abs(rows.weights["w"][-1] - rows.weights["w"][0]).max() > 0.1   # training moved
    np.testing.assert_allclose(rows.weights["w"], everything.weights["w"], rtol=0, atol=1e-12)
    np.testing.assert_allclose(rows.train_loss, everything.train_loss, rtol=0, atol=1e-12)


def test_sgd_on_the_minibatch_rows_freezes_a_diverging_model():
    # The multiclass blow-up problem (lr = 1e7) by SGD on batches of 2 of its 3 samples, one model
    # per seed: whichever models blow up are frozen at the loop's step, the others train on
    # unchanged, equal to the per-model loop.
    X, y = np.array([[1.0, 0.2], [1.0, -0.1], [0.9, 0.0]]), np.array([1, 0, 2])
    masks = np.array([[1, 1, 1], [1, 0, 0], [1, 1, 0]])
    arguments = dict(masks=masks, seeds=[1, 2, 3], init="random", loss="softmax", lr=1e7,
                     n_steps=12, checkpoints=np.arange(13), batch_size=2)
    trace = head.train_heads(X, y, **arguments)
    loop = naive.train_heads(X, y, **arguments)
    assert trace.diverged_at.tolist() == loop.diverged_at.tolist()
    assert (trace.diverged_at >= 0).any() and (trace.diverged_at == -1).any()
    np.testing.assert_allclose(trace.weights["w"], loop.weights["w"], rtol=1e-12, atol=0)


def test_freezing_zeroes_a_model_in_the_seed_major_weights_and_its_drawn_steps():
    # A frozen model's weights are zeroed where the minibatch path keeps them too (else its scores,
    # copied back for the divergence test, would keep the test from skipping steps), and so are
    # its drawn-ahead step coefficients; the other models are untouched.
    X, y = blobs(12, 3, n_classes=3, seed=1)
    problem = head.check_head_problem(X, y, masks=np.tile(leave_one_out_masks(12)[:3], (2, 1)),
                                      init="random", loss="softmax", lr=0.5, n_steps=20,
                                      checkpoints=[20], batch_size=4, seeds=[5, 5, 5, 6, 6, 6],
                                      n_heads=2, head_reduction="mean")
    trainer = head._BatchedHeads(problem, torch.float64)
    trainer.batch_index(0)
    weights = trainer.minibatches.weights.clone()          # (seeds, d, C, models per seed * H)
    coefficients = trainer.batches.clone()                 # (K, seeds, b, models per seed)
    frozen = torch.tensor([False, True, False, False, False, True])
    trainer.minibatches.freeze(frozen)
    per_model = trainer.minibatches.weights.view(2, 3, 3, 3, 2)       # (seeds, d, C, model, head)
    assert (per_model[0, :, :, 1] == 0).all() and (per_model[1, :, :, 2] == 0).all()
    assert (trainer.batches[:, 0, :, 1] == 0).all() and (trainer.batches[:, 1, :, 2] == 0).all()
    kept = ~frozen.view(2, 3)
    torch.testing.assert_close(per_model.permute(0, 3, 1, 2, 4)[kept],
                               weights.view(2, 3, 3, 3, 2).permute(0, 3, 1, 2, 4)[kept], rtol=0, atol=0)
    torch.testing.assert_close(trainer.batches.permute(1, 3, 0, 2)[kept],
                               coefficients.permute(1, 3, 0, 2)[kept], rtol=0, atol=0)
    assert (weights.view(2, 3, 3, 3, 2)[0, :, :, 1] != 0).any()        # there was something to zero


def test_sgd_model_diverging_inside_a_chunk_is_frozen(monkeypatch):
    # Full batches (SGD = GD) on the two opposite samples of the divergence test, in chunks of 3
    # steps: the full-set model blows up mid-chunk at the step GD predicts; the other is untouched.
    monkeypatch.setattr(head, "BATCH_CHUNK", 3 * 2 * 2)
    X, y = np.array([[1.0], [1.0]]), np.array([1, 0])
    masks = np.array([[1, 1], [1, 0]])
    arguments = dict(masks=masks, init=np.array([[0.5], [0.5]]), loss="logistic", lr=4e6,
                     n_steps=10, checkpoints=np.arange(11))
    gd = head.train_heads(X, y, **arguments)
    sgd = head.train_heads(X, y, batch_size=2, seeds=[0, 1], **arguments)
    assert 1 < gd.diverged_at[0] < 10 and gd.diverged_at[0] % 3 != 0
    assert sgd.diverged_at.tolist() == gd.diverged_at.tolist()
    np.testing.assert_array_equal(sgd.weights["w"], gd.weights["w"])


@pytest.mark.parametrize("loss", ["logistic", "softmax"])
def test_per_model_step_sizes_equal_one_call_per_step_size(loss):
    # Configs that differ only in their step (a learning-rate sweep) train in one call with one lr
    # per model: each block of models equals its own call at its scalar lr (to 1e-12), and the
    # per-model loop.
    X, y = blobs(10, 3, n_classes=3 if loss == "softmax" else 2, seed=5)
    block = leave_one_out_masks(10)
    scales = [0.1, 1.0, 3.0]
    beta = head.smoothness(X, loss)
    arguments = dict(loss=loss, init="zero", n_steps=400, checkpoints=[0, 9, 400])
    merged = head.train_heads(X, y, masks=np.tile(block, (3, 1)),
                              lr=np.repeat(np.array(scales) / beta, len(block)), **arguments)
    for c, scale in enumerate(scales):
        alone = head.train_heads(X, y, masks=block, lr=scale / beta, **arguments)
        rows = slice(c * len(block), (c + 1) * len(block))
        np.testing.assert_allclose(merged.weights["w"][:, rows], alone.weights["w"], rtol=0, atol=1e-12)
        np.testing.assert_allclose(merged.train_loss[:, rows], alone.train_loss, rtol=0, atol=1e-12)
    loop = naive.train_heads(X, y, masks=block[[0, 4, 0]], lr=np.array(scales) / beta, **arguments)
    np.testing.assert_allclose(merged.weights["w"][:, [0, 15, 22]], loop.weights["w"], rtol=0, atol=1e-12)
    assert not np.allclose(merged.weights["w"][-1, 0], merged.weights["w"][-1, 11])
