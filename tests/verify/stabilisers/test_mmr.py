"""MMR: scale-invariant, and it raises the feature margin relative to the feature radius."""
import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from sklearn.svm import SVC

from verify.stabilisers import MMR
from verify.stabilisers.mmr import soft_min_margin
from verify.trainers.mlp import train_mlp


def relative_margin(features, y):
    """Hard-margin SVM margin (with bias) over the largest distance from the mean: gamma / R."""
    svm = SVC(kernel="linear", C=1e8).fit(features, y)
    gamma = 1.0 / np.linalg.norm(svm.coef_)
    return gamma / np.linalg.norm(features - features.mean(0), axis=1).max()


@given(scale=st.floats(1e-3, 1e3), shift=st.floats(-10, 10), seed=st.integers(0, 2**16))
def test_penalty_unchanged_by_scaling_and_translating_the_features(scale, shift, seed):
    rng = np.random.default_rng(seed)
    features = torch.as_tensor(rng.normal(size=(7, 3)))
    labels = torch.as_tensor([0, 1, 0, 1, 1, 0, 1])
    weights = torch.full((7,), 1 / 7, dtype=torch.float64)
    base = soft_min_margin(features, labels, weights, 0.05)
    moved = soft_min_margin(scale * features + shift, labels, weights, 0.05)
    assert float(moved) == pytest.approx(float(base), rel=1e-6, abs=1e-9)


def test_inflating_the_features_gives_no_gradient():
    features = torch.tensor([[0.0, 1.0], [1.0, 0.5], [2.0, 2.0], [0.5, -1.0]], dtype=torch.float64)
    scale = torch.tensor(1.0, dtype=torch.float64, requires_grad=True)
    value = soft_min_margin(scale * features, torch.tensor([0, 1, 0, 1]),
                            torch.full((4,), 0.25, dtype=torch.float64), 0.05)
    (derivative,) = torch.autograd.grad(value, scale)
    assert abs(float(derivative)) < 1e-8


def test_excluded_samples_and_single_class_batches():
    features = torch.tensor([[0.0, 0.0], [1.0, 0.0], [3.0, 0.0]], dtype=torch.float64)
    labels = torch.tensor([0, 1, 1])
    only_far = torch.tensor([0.5, 0.0, 0.5], dtype=torch.float64)
    # the close pair (0, 1) is excluded: soft-min ~ distance 3 over 2R with R = 1.5
    assert float(soft_min_margin(features, labels, only_far, 0.01)) == pytest.approx(1.0, abs=1e-6)
    one_class = torch.tensor([0.0, 0.5, 0.5], dtype=torch.float64)
    assert float(soft_min_margin(features, labels, one_class, 0.01)) == 0.0


def test_mmr_raises_the_certified_feature_margin_relative_to_the_radius(tiny_task):
    model, pretrained, X, y = tiny_task
    kwargs = dict(masks=np.ones((3, len(X))), seeds=[0, 1, 2], lr=0.3, n_steps=60,
                  checkpoints=[60])
    margins = {}
    for label, stabilisers in (("plain", ()), ("mmr", (MMR(strength=1.0),))):
        trace = train_mlp(model, pretrained, X, y, stabilisers=stabilisers, **kwargs)
        margins[label] = []
        for m in range(3):
            weights = {name: torch.as_tensor(value[-1, m]) for name, value in trace.weights.items()}
            encoder = {name.split(".", 1)[1]: value for name, value in weights.items()
                       if name.startswith("encoder.")}
            with torch.no_grad():
                features = torch.func.functional_call(model.encoder, encoder, (torch.as_tensor(X),))
            margins[label].append(relative_margin(features.numpy(), y))
    assert min(margins["mmr"]) > max(margins["plain"])
