"""Which samples are left out, and which model of a batched call is which."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from verify.run.task import Task
from verify.seeding import run_seed

EXACT, STRATIFIED, PARTIAL = "exact", "stratified", "partial"
# Every sampled stratum gets at least this many left-out sets (where it has them), so that its
# within-stratum variance, and with it the standard error of E_i, is defined.
MIN_PER_STRATUM = 2


@dataclass(frozen=True)
class LeftOutPlan:
    """The left-out samples of a dataset and how they estimate E_i, the mean over all n samples.

    The samples are a stratified random sample without replacement: stratum 1 the certified support
    vectors, stratum 0 the others (one stratum where no support vectors are known). Each non-empty
    stratum gets a guaranteed share of the budget (:data:`MIN_PER_STRATUM`), the rest is split in
    proportion to the strata's sizes; every sample is left out where ``n <= exact_up_to`` or the budget
    covers S.

    Attributes
    ----------
    samples : (L,) int64
        The left-out indices, support vectors first, each stratum in random order.
    stratum : (L,) int64
        1 where the sample is a support vector, else 0.
    stratum_sizes : (2,) int64
        Sizes of stratum 0 (others) and 1 (support vectors) in S.
    estimator : {"exact", "stratified", "partial"}
        ``exact``: every sample is left out; ``stratified``: every non-empty stratum is sampled, and
        ``weights @ values`` is unbiased for the mean over S; ``partial``: some non-empty stratum has
        no left-out sample (the budget is below the number of strata), so the weighted mean is the
        mean over the sampled strata only and is not an estimate of E_i (the verdicts leave it out).
    """

    samples: np.ndarray
    stratum: np.ndarray
    stratum_sizes: np.ndarray
    estimator: str

    @property
    def n_samples(self) -> int:
        return int(self.stratum_sizes.sum())

    def used(self) -> np.ndarray:
        """(2,) left-out samples drawn from stratum 0 (others) and 1 (support vectors)."""
        return np.bincount(self.stratum, minlength=2)

    def weights(self) -> np.ndarray:
        """(L,) weight of each left-out model in E_i: its stratum's share of S over the stratum's
        sampled members (a partial plan: over the sampled strata only). The weights sum to 1."""
        used = self.used()
        sampled = used > 0
        if not sampled.any():
            return np.zeros(0)
        shares = np.where(sampled, self.stratum_sizes, 0) / self.stratum_sizes[sampled].sum()
        return (shares / np.maximum(used, 1))[self.stratum]

    def standard_error(self, values: np.ndarray) -> float:
        """Standard error of ``weights() @ values`` as an estimate of the mean over S.

        The stratified-sampling formula with the finite-population correction,
        SE² = Σ_h (N_h/N)² (1 − n_h/N_h) s_h²/n_h, s_h² the sample variance (ddof 1) of stratum h:
        0 for an exact plan (and for a stratum left out entirely), NaN where it is undefined (a partial
        plan, a stratum with one sample out of several, or a NaN value).
        """
        values = np.asarray(values, dtype=np.float64)
        if self.estimator == PARTIAL or not np.isfinite(values).all():
            return np.nan
        variance = 0.0
        for h, size in enumerate(self.stratum_sizes):
            members = values[self.stratum == h]
            if members.size == size:
                continue
            if members.size < 2:
                return np.nan
            share = size / self.n_samples
            variance += share**2 * (1 - members.size / size) * members.var(ddof=1) / members.size
        return float(np.sqrt(variance))


def _allocate(sizes: np.ndarray, budget: int) -> np.ndarray:
    """Left-out sets per stratum: MIN_PER_STRATUM (or the stratum) each, the rest of the budget in
    proportion to the strata's sizes (largest remainders), never more than a stratum holds."""
    counts = np.minimum(sizes, MIN_PER_STRATUM)
    if counts.sum() > budget:
        # Fewer sets than guaranteed shares: one per stratum first, the largest strata first.
        counts = np.zeros_like(sizes)
        for h in np.argsort(-sizes, kind="stable")[:budget]:
            counts[h] = min(sizes[h], 1)
    while counts.sum() < budget:
        room = sizes - counts
        target = budget * sizes / sizes.sum()
        h = int(np.argmax(np.where(room > 0, target - counts, -np.inf)))
        counts[h] += 1
    return counts


def choose_left_out(dataset_id: str, n_samples: int, support: np.ndarray, *, budget: int,
                    exact_up_to: int = 0) -> LeftOutPlan:
    """Which samples get a leave-one-out model, and how they estimate E_i.

    The choice depends on the dataset only (not on config, stabiliser or seed), so every config and
    stabiliser is compared on the same left-out samples.

    Parameters
    ----------
    dataset_id : str
        Seeds the random order.
    n_samples : int
        n, the size of the full training set S.
    support : array of int
        Indices of the certified support vectors (empty where the notion does not apply).
    budget : int
        Left-out sets where E_i is estimated; 0 trains none (no left-out rows).
    exact_up_to : int, default=0
        Every sample is left out (exact E_i) where ``n_samples <= exact_up_to``.

    Returns
    -------
    LeftOutPlan
    """
    if budget < 0:
        raise ValueError(f"budget: must be >= 0, got {budget}")
    support = np.unique(np.asarray(support, dtype=np.int64))
    strata = [np.setdiff1d(np.arange(n_samples), support), support]
    sizes = np.array([len(members) for members in strata], dtype=np.int64)
    exact = n_samples <= max(exact_up_to, budget)
    counts = sizes if exact else _allocate(sizes, budget)
    rng = np.random.default_rng(run_seed(dataset_id, "left_out"))
    drawn = [rng.permutation(members) for members in strata]
    samples = np.concatenate([drawn[1][:counts[1]], drawn[0][:counts[0]]]).astype(np.int64)
    stratum = np.concatenate([np.ones(counts[1], np.int64), np.zeros(counts[0], np.int64)])
    if exact:
        estimator = EXACT
    elif len(samples) == 0 or np.any((sizes > 0) & (counts == 0)):
        estimator = PARTIAL
    else:
        estimator = STRATIFIED
    return LeftOutPlan(samples=samples, stratum=stratum, stratum_sizes=sizes, estimator=estimator)


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
