"""The minibatches of ``torch.randperm`` drawn in bulk: the same sample stream, without a call per step.

On the CPU, ``torch.randperm(n, generator=g)`` (for ``n < 2**32 / 20``) is a Fisher-Yates shuffle of
``arange(n)``: for ``i = 0 .. n-2`` it swaps entry ``i`` with entry ``i + r_i % (n - i)``, ``r_i`` the
generator's next 32-bit Mersenne Twister output, and a generator seeded with ``s`` is MT19937
initialised with the low 32 bits of ``s``. Entry ``i`` is final after swap ``i``, so the first ``b``
entries of a permutation (a minibatch) depend only on the first ``b`` of its ``n - 1`` outputs.
:class:`PermutationStream` replays that stream with numpy's MT19937 (the same generator, drawn in
bulk) and shuffles only the minibatch positions, for many steps and seeds at once; the tests check
it against ``torch.randperm`` itself.
"""
from __future__ import annotations

import numpy as np

# Above this length torch.randperm switches to another algorithm.
TORCH_SHUFFLE_LIMIT = (2**32 - 1) // 20
MT_STATE_SIZE = 624


def mersenne_key(seed: int) -> np.ndarray:
    """The MT19937 state of a ``torch.Generator`` seeded with ``seed`` (Matsumoto and Nishimura's
    ``init_genrand`` of the seed's low 32 bits)."""
    key = np.empty(MT_STATE_SIZE, dtype=np.uint32)
    value = seed & 0xFFFFFFFF
    for j in range(MT_STATE_SIZE):
        key[j] = value
        value = (1812433253 * (value ^ (value >> 30)) + j + 1) & 0xFFFFFFFF
    return key


class PermutationStream:
    """The permutations ``torch.randperm(n, generator=torch.Generator().manual_seed(seed))`` draws
    one call after another, of which :meth:`prefixes` returns the first entries in bulk.

    Parameters
    ----------
    seed : int
        The ``torch.Generator`` seed, >= 0.
    n : int
        Length of every permutation, in ``[1, TORCH_SHUFFLE_LIMIT)``.
    """

    def __init__(self, seed: int, n: int):
        if not 1 <= n < TORCH_SHUFFLE_LIMIT:
            raise ValueError(f"n: must be in [1, {TORCH_SHUFFLE_LIMIT}) (torch.randperm's "
                             f"Fisher-Yates range), got {n}")
        if seed < 0:
            raise ValueError(f"seed: must be >= 0, got {seed}")
        self.n = n
        self.generator = np.random.MT19937()
        self.generator.state = {"bit_generator": "MT19937",
                                "state": {"key": mersenne_key(seed), "pos": MT_STATE_SIZE}}

    def outputs(self, n_permutations: int, length: int) -> np.ndarray:
        """(n_permutations, length) first 32-bit outputs of each of the next permutations' n - 1."""
        draws = self.generator.random_raw(n_permutations * (self.n - 1))
        return draws.reshape(n_permutations, self.n - 1)[:, :length]


def permutation_prefixes(streams: list[PermutationStream], n_permutations: int, length: int) -> np.ndarray:
    """(n_permutations, len(streams), length): the first ``length`` entries of each stream's next
    ``n_permutations`` permutations, as ``torch.randperm`` would return them; the streams advance
    past those permutations.

    Parameters
    ----------
    streams : list of PermutationStream
        Streams of one permutation length n.
    n_permutations : int
        Permutations drawn from each stream, >= 1.
    length : int
        Entries kept of each, in ``[1, n]``.
    """
    n = streams[0].n
    if any(stream.n != n for stream in streams):
        raise ValueError("streams: must all draw permutations of one length")
    if not 1 <= length <= n:
        raise ValueError(f"length: must be in [1, {n}], got {length}")
    swaps = min(length, n - 1)
    if swaps == 0:                        # n = 1: the identity, no draws
        return np.zeros((n_permutations, len(streams), length), dtype=np.intp)
    outputs = np.stack([stream.outputs(n_permutations, swaps) for stream in streams], 1)
    offsets = (outputs.reshape(-1, swaps) % np.arange(n, n - swaps, -1, dtype=np.uint64)).astype(np.intp)
    shuffled = np.broadcast_to(np.arange(n), (len(offsets), n)).copy()
    rows = np.arange(len(offsets))
    for i in range(swaps):
        target = offsets[:, i] + i
        entry = shuffled[:, i].copy()
        shuffled[:, i] = shuffled[rows, target]
        shuffled[rows, target] = entry
    return shuffled[:, :length].reshape(n_permutations, len(streams), length)
