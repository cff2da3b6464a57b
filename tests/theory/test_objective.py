"""The full fine-tuning constants of a network use its exact training objective (penalties on groups)."""
import numpy as np
import pytest
import torch

from theory.bounds.full_constants import full_constants
from theory.context import RunContext
from theory.objective import training_objective


def _least_squares_objective(X, y):
    inputs, targets = torch.as_tensor(X), torch.as_tensor(y)

    def objective(w, sample_weights):
        losses = 0.5 * (inputs @ w - targets) ** 2
        return (losses * sample_weights).sum() / sample_weights.sum()

    return objective


def _run(l2sp_mask, weight_decay_mask, anchor):
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(12, 6)), rng.normal(size=12)
    w0, w_full, w_loo = rng.normal(size=(3, 6))
    return RunContext(setting="full", model="mlp", loss="squared", X=X, y=y, left_out=3, lr=0.1,
                      iteration=10, batch_size=None, w0=w0, w_full=w_full, w_loo=w_loo, l2sp=0.7,
                      weight_decay=0.3, objective=_least_squares_objective(X, y), l2sp_anchor=anchor,
                      l2sp_mask=l2sp_mask, weight_decay_mask=weight_decay_mask)


@pytest.mark.parametrize("groups", ["split", "all"])
def test_network_constants_carry_each_penalty_only_on_its_weights(groups):
    # A linear "network" with a least-squares loss: the surrogate path (Lanczos on HVPs of the
    # training objective) must give the exact constants of data loss + ½λ‖(w − a)_A‖² + ½λ_wd‖w_B‖².
    first = np.arange(6) < 3
    anchor = np.random.default_rng(1).normal(size=6)
    masks = (first, ~first) if groups == "split" else (None, None)
    run = _run(*masks, anchor)
    in_a = first if groups == "split" else np.ones(6, bool)
    in_b = ~first if groups == "split" else np.ones(6, bool)
    penalty = np.diag(0.7 * in_a + 0.3 * in_b)
    keep = np.delete(np.arange(12), 3)
    H = run.X.T @ run.X / 12 + penalty
    H_loo = run.X[keep].T @ run.X[keep] / 11 + penalty
    w = run.w_full
    x_i = run.X[3]
    g_i = x_i * (x_i @ w - run.y[3]) + 0.7 * in_a * (w - anchor) + 0.3 * in_b * w
    c = full_constants(run)
    spectrum, spectrum_loo = np.linalg.eigvalsh(H), np.linalg.eigvalsh(H_loo)
    assert c["mu"] == pytest.approx(spectrum[0], rel=1e-6)
    assert c["mu_loo"] == pytest.approx(spectrum_loo[0], rel=1e-6)
    assert c["beta"] == pytest.approx(max(spectrum[-1], spectrum_loo[-1]), rel=1e-6)
    assert c["rho"] == pytest.approx(np.linalg.norm(g_i), rel=1e-12)
    assert c["delta_H"] == pytest.approx(np.max(np.abs(np.linalg.eigvalsh(H - H_loo))), rel=1e-6)


def test_training_objective_is_data_loss_plus_the_grouped_penalties():
    first = np.arange(6) < 3
    anchor = np.random.default_rng(1).normal(size=6)
    run = _run(first, ~first, anchor)
    objective = training_objective(run)
    w = torch.tensor(np.random.default_rng(2).normal(size=6), requires_grad=True)
    ones = torch.ones(12, dtype=torch.float64)
    value = objective(w, ones)
    expected = (run.objective(w, ones) + 0.35 * ((w - torch.as_tensor(anchor))[:3] ** 2).sum()
                + 0.15 * (w[3:] ** 2).sum())
    assert value.item() == pytest.approx(expected.item(), rel=1e-14)
    with pytest.raises(ValueError, match="l2sp_mask"):
        training_objective(_run(np.ones(5, bool), None, anchor))
