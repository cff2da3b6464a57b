import numpy as np
import pytest

from synth.mlp import build_model, init_pretraining_params

ARCHITECTURE = {"n_features": 3, "hidden": [4, 4], "n_classes": 2}


@pytest.fixture(scope="session")
def tiny_task():
    """A tiny tanh MLP (3 -> 4 -> 4 -> 2) with random 'pre-trained' weights and 8 labelled points."""
    rng = np.random.default_rng(1)
    X = rng.normal(size=(8, 3))
    y = (X[:, 0] + 0.5 * X[:, 1] > 0).astype(np.int64)
    return build_model(ARCHITECTURE), init_pretraining_params(ARCHITECTURE, rng), X, y
