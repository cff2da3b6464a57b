"""The in-place AdamW equals the functional optimiser of verify.trainers.optimisers, dense and on
row-sparse gradients (a word-embedding matrix), with bias correction on and off."""
import pytest
import torch

from verify.real.protocol.adamw import InPlaceAdamW
from verify.optimiser_spec import OptimiserSpec
from verify.trainers.optimisers import Optimiser, apply_updates


@pytest.mark.parametrize("bias_correction", [True, False])
@pytest.mark.parametrize("weight_decay", [0.0, 0.1])
def test_in_place_adamw_matches_the_functional_optimiser(bias_correction, weight_decay):
    spec = OptimiserSpec(name="adamw", bias_correction=bias_correction, weight_decay=weight_decay,
                         warmup_steps=2, decay="linear")
    generator = torch.Generator().manual_seed(0)
    start = {"dense": torch.randn(5, 3, generator=generator, dtype=torch.float64),
             "rows": torch.randn(20, 4, generator=generator, dtype=torch.float64)}
    reference = {name: value.clone() for name, value in start.items()}
    ours = {name: value.clone() for name, value in start.items()}
    functional = Optimiser(spec, lr=0.05, n_steps=8)
    state = functional.init(reference)
    in_place = InPlaceAdamW(spec, lr=0.05, n_steps=8, scales={"dense": 0.5}, row_sparse=["rows"])
    for step in range(8):
        grads = {"dense": torch.randn(5, 3, generator=generator, dtype=torch.float64),
                 "rows": torch.zeros(20, 4, dtype=torch.float64)}
        used = torch.randperm(20, generator=generator)[:3]  # a batch's tokens
        grads["rows"][used] = torch.randn(3, 4, generator=generator, dtype=torch.float64)
        updates, state = functional.update(grads, state, reference)
        updates["dense"] = 0.5 * updates["dense"]  # the per-tensor learning-rate multiplier
        reference = apply_updates(reference, updates)
        in_place.step(ours, grads)
        for name in start:
            torch.testing.assert_close(ours[name], reference[name], rtol=1e-12, atol=1e-12)
    assert not torch.equal(ours["rows"], start["rows"])


def test_only_adamw_is_accepted():
    with pytest.raises(ValueError, match="spec: must be AdamW"):
        InPlaceAdamW(OptimiserSpec(name="sgd"), lr=0.1, n_steps=2)
