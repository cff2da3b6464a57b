"""Contract tests every registered stabiliser must pass."""
import numpy as np
import pytest

from verify.stabilisers import STABILISERS, Stabiliser
from verify.stabilisers.base import TRAINERS
from verify.trainers.mlp import make_objective, train_mlp

THEORY_QUANTITIES = {"mu", "D", "rho", "gamma_over_R", "init_variance", "eta_T"}
BAD_PARAMS = {
    "mmr": {"strength": -1.0}, "mhloss": {"n_heads": 0}, "surt": {"mask_rate": 1.0},
    "l2sp": {"strength": float("nan")}, "weight_decay": {"groups": ["decoder"]},
    "mixout": {"p": 1.0}, "reinit_top": {"n_layers": 0}, "llrd": {"factor": 0.0},
    "lnsr": {"noise": 0.0}, "small_lr_long": {"factor": 0.5},
}


def test_registry_covers_the_paper_and_the_baselines():
    assert set(STABILISERS) == set(BAD_PARAMS)
    assert {"mmr", "mhloss", "surt"} <= set(STABILISERS)


@pytest.mark.parametrize("name", sorted(STABILISERS))
def test_declares_its_theory_targets_and_trainers(name):
    cls = STABILISERS[name]
    assert issubclass(cls, Stabiliser) and cls.name == name
    assert cls.targets and set(cls.targets) <= THEORY_QUANTITIES
    assert cls.applies_to and cls.applies_to <= set(TRAINERS)


@pytest.mark.parametrize("name", sorted(STABILISERS))
def test_params_round_trip_and_bad_params_name_the_parameter(name):
    stabiliser = STABILISERS[name]()
    rebuilt = STABILISERS[name].from_params(**stabiliser.params())
    assert rebuilt.params() == stabiliser.params()
    (key, value), = BAD_PARAMS[name].items()
    with pytest.raises(ValueError, match=key):
        STABILISERS[name].from_params(**{key: value})
    with pytest.raises(ValueError, match="unknown parameter"):
        STABILISERS[name].from_params(no_such_parameter=1)


@pytest.mark.parametrize("name", sorted(STABILISERS))
def test_adapters_are_accepted_by_the_trainers_they_apply_to(name, tiny_task):
    stabiliser = STABILISERS[name]()
    model, pretrained, X, y = tiny_task
    lr, n_steps = stabiliser.adjust_schedule(0.1, 10)
    assert lr * n_steps == pytest.approx(1.0)
    objective = make_objective(model, X, y, w0=pretrained, **stabiliser.objective_kwargs())
    assert objective is not None
    if "head" not in stabiliser.applies_to:
        assert stabiliser.head_kwargs() == {}
    if "quadratic" in stabiliser.applies_to:
        from verify.trainers.quadratic import train_quadratic
        trace = train_quadratic(X, X[:, 0], masks=np.ones((1, len(X))), w0=np.zeros(3), lr=0.1,
                                n_steps=2, checkpoints=[2], **stabiliser.quadratic_kwargs())
        assert np.isfinite(trace.train_loss).all()


def test_quadratic_adapters_drive_the_penalty_arguments():
    assert STABILISERS["l2sp"](strength=0.3).quadratic_kwargs() == {"l2sp": 0.3}
    assert STABILISERS["weight_decay"](strength=0.2).quadratic_kwargs() == {"weight_decay": 0.2}
    assert STABILISERS["mhloss"](n_heads=5, reduction="sum").head_kwargs() == {
        "n_heads": 5, "head_reduction": "sum"}


def test_small_lr_long_keeps_eta_t_and_lands_near_the_same_point(tiny_task):
    model, pretrained, X, y = tiny_task
    small = STABILISERS["small_lr_long"](factor=4)
    assert small.adjust_schedule(0.8, 25) == (0.2, 100)
    kwargs = dict(masks=np.ones((1, len(X))), seeds=[0])
    coarse = train_mlp(model, pretrained, X, y, lr=0.8, n_steps=25, checkpoints=[25], **kwargs)
    lr, n_steps = small.adjust_schedule(0.8, 25)
    fine = train_mlp(model, pretrained, X, y, lr=lr, n_steps=n_steps, checkpoints=[n_steps], **kwargs)
    start = train_mlp(model, pretrained, X, y, lr=0.8, n_steps=25, checkpoints=[0], **kwargs)
    travelled = np.linalg.norm(coarse.weights["head.weight"][-1] - start.weights["head.weight"][0])
    apart = np.linalg.norm(coarse.weights["head.weight"][-1] - fine.weights["head.weight"][-1])
    assert apart < 0.1 * travelled  # same eta*T: both follow the same gradient flow
    assert fine.train_loss[-1, 0] == pytest.approx(coarse.train_loss[-1, 0], rel=0.1)
