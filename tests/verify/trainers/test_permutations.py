"""The bulk permutation stream: the first entries of exactly the permutations torch.randperm draws."""
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from verify.trainers.permutations import PermutationStream, permutation_prefixes


def torch_permutations(seed, n, count):
    generator = torch.Generator().manual_seed(seed)
    return np.stack([torch.randperm(n, generator=generator).numpy() for _ in range(count)])


@settings(max_examples=40, deadline=None)
@given(seed=st.one_of(st.integers(0, 2**32 - 1), st.integers(2**32, 2**63 - 1)),
       n=st.integers(1, 300), length=st.integers(1, 20), calls=st.lists(st.integers(1, 5), min_size=1,
                                                                          max_size=3))
def test_prefixes_are_torch_randperms_across_calls(seed, n, length, calls):
    # Consecutive calls continue one stream: together they are torch's next sum(calls) permutations.
    length = min(length, n)
    stream = PermutationStream(seed, n)
    drawn = np.concatenate([permutation_prefixes([stream], count, length)[:, 0] for count in calls])
    np.testing.assert_array_equal(drawn, torch_permutations(seed, n, sum(calls))[:, :length])


def test_whole_permutations_and_several_streams_at_once():
    seeds, n = [0, 7, 2**40 + 3], 17
    prefixes = permutation_prefixes([PermutationStream(seed, n) for seed in seeds], 6, n)
    assert prefixes.shape == (6, 3, n)
    for s, seed in enumerate(seeds):
        np.testing.assert_array_equal(prefixes[:, s], torch_permutations(seed, n, 6))
    assert not (prefixes[:, 0] == prefixes[:, 1]).all()


@pytest.mark.parametrize("call, message", [
    (lambda: PermutationStream(0, 0), "n: must be in"),
    (lambda: PermutationStream(-1, 5), "seed: must be >= 0"),
    (lambda: permutation_prefixes([PermutationStream(0, 5)], 2, 6), "length: must be in"),
    (lambda: permutation_prefixes([PermutationStream(0, 5), PermutationStream(1, 6)], 2, 3),
     "streams: must all"),
])
def test_bad_arguments_name_the_parameter(call, message):
    with pytest.raises(ValueError, match=message):
        call()
