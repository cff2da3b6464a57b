"""The linear evaluators read the weights as the head trainer lays them out: a binary softmax head is
two class vectors, and its loss, prediction and margin are those of their difference."""
from __future__ import annotations

import numpy as np
import pytest

from verify.run.evaluators import linear_evaluator
from verify.trainers.head import train_heads

# Two models of two class vectors each, flat (M, 2 d) class-major: [w_0 | w_1]. The first has w_0 = 0
# (scores [0, w.x]); the second does not.
W = np.array([[0.0, 0.0, 1.0, -2.0],
              [0.5, 1.0, -0.5, 0.25]])
X = np.array([[1.0, 0.0], [0.0, 1.0], [2.0, 1.5], [-1.0, 0.5], [0.3, -0.2]])
y = np.array([1, 0, 1, 0, 1])


def test_binary_softmax_is_the_logistic_rule_of_the_class_difference():
    evaluator = linear_evaluator("softmax", 2)
    v = W[:, 2:] - W[:, :2]                       # w_1 - w_0
    score = v @ X.T                               # (M, n)
    signs = 2 * y - 1
    assert not np.any(score == 0)                 # no ties: argmax and the sign rule agree
    np.testing.assert_array_equal(evaluator.predict(W, X), (score > 0).astype(np.int64))
    np.testing.assert_allclose(evaluator.per_sample_loss(W, X, y), np.log1p(np.exp(-signs * score)),
                               rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(evaluator.margins(W, X, y), signs * score, rtol=1e-13, atol=1e-15)
    # With w_0 = 0 it is the logistic loss of the one vector w = w_1.
    logistic = linear_evaluator("logistic", 2)
    np.testing.assert_allclose(evaluator.per_sample_loss(W[:1], X, y),
                               logistic.per_sample_loss(W[:1, 2:], X, y), rtol=1e-13, atol=1e-15)
    np.testing.assert_array_equal(evaluator.predict(W[:1], X), logistic.predict(W[:1, 2:], X))


def test_binary_softmax_evaluator_reproduces_the_trainers_loss_on_its_weights():
    masks = np.array([[1, 1, 1, 1, 1], [1, 1, 0, 1, 1]])
    trace = train_heads(X, y, masks=masks, init="random", loss="softmax", lr=0.5, n_steps=20,
                        checkpoints=[5, 20], seeds=np.array([0, 1]))
    weights = trace.weights["w"]
    assert weights.shape == (2, 2, 2, 2)         # (K, M, C, d): two class vectors per model
    flat = weights.reshape(*weights.shape[:2], -1)
    own = masks / masks.sum(1, keepdims=True)
    evaluator = linear_evaluator("softmax", 2)
    for k in range(len(flat)):
        np.testing.assert_allclose((evaluator.per_sample_loss(flat[k], X, y) * own).sum(1),
                                   trace.train_loss[k], rtol=1e-10)
        assert evaluator.predict(flat[k], X).shape == (2, len(X))


def test_a_real_softmax_head_task_on_two_classes_is_measured(monkeypatch, tmp_path):
    """``RealConfig``'s default loss is softmax: a head task on a two-class dataset reaches the binary
    softmax evaluator (features are given here, so no encoder runs)."""
    from verify.real.configs import RealConfig
    from verify.real.datasets import RealDataset, dataset_card
    from verify.real.runner import RealRunner
    from verify.run.task import Task

    rng = np.random.default_rng(0)
    labels, test_labels = np.array([0, 1] * 4), np.array([0, 1] * 3)
    features = rng.normal(size=(8, 4)) + 2.0 * (2 * labels - 1)[:, None]
    test_features = rng.normal(size=(6, 4)) + 2.0 * (2 * test_labels - 1)[:, None]
    card = dataset_card(dataset_id="two", kind="real-digits", generator="hand", params={}, seed=0,
                        y=labels, n_features=4, n_test=6)
    dataset = RealDataset(X=features, y=labels, X_test=test_features, y_test=test_labels, card=card)
    monkeypatch.setattr(RealRunner, "features", lambda self, data, encoder="minilm-l6":
                        (features, test_features))
    config = RealConfig(name="h", setting="head", kinds=("real-digits",), n_steps=40, lr_scale=1.0,
                        batch_size=4, n_checkpoints=3)
    assert config.loss == "softmax"
    rows = RealRunner(tmp_path)(Task("two", config, seeds=(0,)), dataset).runs
    final = [r for r in rows if r["iteration"] == 40]
    assert len(final) == 1 + len(labels)
    assert all(0 <= r["test_accuracy"] <= 1 and np.isfinite(r["test_loss"]) for r in final)
    assert all(np.isfinite(r["head_direction_stability"]) for r in final if r["left_out"] is not None)
    assert [r["test_accuracy"] for r in final if r["left_out"] is None] == [pytest.approx(1.0)]
