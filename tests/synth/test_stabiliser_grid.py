"""The stabiliser benchmark grid reuses datasets of the default grid, so that T1 and F9 compare
stabilisers on datasets whose plain runs are in the same results database."""
from synth.grids import load_grid


def test_stabiliser_grid_is_a_subset_of_the_default_grid_covering_every_kind():
    default = {spec.id for spec in load_grid("default")}
    stabilisers = load_grid("stabilisers")
    assert {spec.id for spec in stabilisers} <= default
    assert {spec.kind for spec in stabilisers} == {"separable", "quadratic", "mlp"}
    assert len({spec.id for spec in stabilisers}) == len(stabilisers) == 12
