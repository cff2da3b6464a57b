"""Which samples are left out, and which model of a batched call is which."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from verify.run.task import Task
from verify.seeding import run_seed


def choose_left_out(dataset_id: str, n_samples: int, support: np.ndarray, max_left_out: int) -> np.ndarray:
    """Which samples get a leave-one-out model: support vectors first, then the others, each in random order.

    The choice depends on the dataset only (not on config, stabiliser or seed), so every config and
    stabiliser is compared on the same left-out samples.

    Parameters
    ----------
    dataset_id : str
        Seeds the random order.
    n_samples : int
        n, the size of the full training set S.
    support : array of int
        Indices of the support vectors (empty where the notion does not apply).
    max_left_out : int
        At most this many indices are returned.

    Returns
    -------
    ndarray of int64
        Distinct indices in ``[0, n_samples)``.
    """
    support = np.unique(np.asarray(support, dtype=np.int64))
    others = np.setdiff1d(np.arange(n_samples), support)
    rng = np.random.default_rng(run_seed(dataset_id, "left_out"))
    return np.concatenate([rng.permutation(support), rng.permutation(others)])[:max_left_out]


def left_out_weights(left_out: np.ndarray, support: np.ndarray, n_samples: int) -> np.ndarray:
    """Weights that turn the left-out models of one seed and iteration into an estimate of E_i over S.

    The left-out samples are a stratified random sample (support vectors, others). Each stratum that
    was sampled gets the share of S it stands for, split evenly over its sampled members, and the
    weights sum to 1; ``sum(weight * measure)`` is then unbiased for ``(1/n) sum_i measure_i`` whenever
    every non-empty stratum was sampled (the plain mean over left-out rows is not, since support
    vectors are always taken first).
    """
    is_support = np.isin(left_out, np.asarray(support, dtype=np.int64))
    n_support = int(np.isin(np.arange(n_samples), support).sum())
    strata = [(is_support, n_support), (~is_support, n_samples - n_support)]
    covered = sum(size for members, size in strata if members.any())
    weights = np.zeros(len(left_out))
    for members, size in strata:
        if members.any():
            weights[members] = size / (members.sum() * covered)
    return weights


@dataclass(frozen=True)
class ModelLayout:
    """Which model of a batched call is which: seed-major, the full set S first, then each S\\i.

    Model ``m`` has seed index ``seeds[m]`` and left-out index ``left_out[m]`` (-1 for the full set).
    """

    seeds: np.ndarray      # (M,) seed index
    left_out: np.ndarray   # (M,) left-out sample index, -1 = trained on all of S
    model_seeds: np.ndarray  # (M,) run_seed of each model (same for one seed's left-out sets)

    @property
    def n_models(self) -> int:
        return len(self.seeds)

    def masks(self, n_samples: int) -> np.ndarray:
        """(M, n) 0/1 float64 sample membership: all ones, with a zero at the left-out sample."""
        masks = np.ones((self.n_models, n_samples))
        loo = self.left_out >= 0
        masks[np.flatnonzero(loo), self.left_out[loo]] = 0.0
        return masks

    def full_model(self) -> np.ndarray:
        """(M,) index of the full-set model with the same seed as each model."""
        first = {int(s): m for m, s in enumerate(self.seeds) if self.left_out[m] < 0}
        return np.array([first[int(s)] for s in self.seeds])


def model_layout(task: Task, left_out: np.ndarray) -> ModelLayout:
    """The layout of a task's models: for each seed, the full set then every left-out set."""
    per_seed = np.concatenate([[-1], np.asarray(left_out, dtype=np.int64)])
    seeds = np.repeat(np.asarray(task.seeds, dtype=np.int64), len(per_seed))
    model_seeds = np.array([task.model_seed(int(s)) for s in seeds], dtype=np.int64)
    return ModelLayout(seeds=seeds, left_out=np.tile(per_seed, len(task.seeds)), model_seeds=model_seeds)
