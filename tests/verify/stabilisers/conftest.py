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


@pytest.fixture(scope="session")
def mlp_dataset():
    """A small pre-trained MLP task and a full-batch GD config for it (run-layer tests)."""
    from synth.pretrained import make_pretrained_mlp_task
    from verify.configs import TrainingConfig
    dataset = make_pretrained_mlp_task(n_samples=12, n_features=4, hidden=[5, 5], n_source=64,
                                       pretrain_steps=30, n_test=16, distance=0.2, random_state=0)
    config = TrainingConfig(name="test_mlp_gd", setting="full", kinds=("mlp",), loss="logistic",
                            init="pretrained", lr_scale=0.5, n_steps=3, n_checkpoints=2,
                            max_left_out=2, bound_models=0)
    return dataset, config


@pytest.fixture(scope="session")
def quadratic_dataset():
    from dataclasses import replace

    from synth.quadratic import make_quadratic_task
    from verify.configs import CONFIGS
    dataset = make_quadratic_task(12, 3, distance=1.0, noise=0.1, random_state=0)
    return dataset, replace(CONFIGS["full_quadratic_gd"], n_steps=20, max_left_out=2)


@pytest.fixture(scope="session")
def separable_dataset():
    from dataclasses import replace

    from synth.separable import make_separable
    from verify.configs import CONFIGS
    dataset = make_separable(12, 3, margin=0.3, radius=1.0, random_state=0)
    return dataset, replace(CONFIGS["head_sgd_logistic_random"], n_steps=20, max_left_out=2,
                            batch_size=4)
