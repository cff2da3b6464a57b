"""Paired stabiliser verdicts: each stabiliser against plain training on the same datasets, configs
and seeds, with a paired bootstrap CI over datasets and a verdict per task family.

A **pair** is one dataset trained with one config, once plain and once with one setting of a
stabiliser (the same seeds: a run's seed is derived from its coordinates, so plain and stabilised
runs of a seed share the data order and the head's initial draw). Per pair and side the inputs are,
per seed of the final checkpoint, the test accuracy, whether the run failed (at or below the
majority-class accuracy, or diverged), E_i of the setting's leave-one-out measure (absent where the
left-out estimate is partial, where a left-out model diverged or lacks the measure, or where no set
was left out), the stabiliser's target quantities and the validation accuracy (for selecting a
strength); a side's E_i, quantities and validation accuracy are means over the seeds that record
them.

Measures, each an estimator over the pairs of a family (sums run over pairs):

- ``seed_std``: ratio of the pooled seed std, sqrt(Σ s²_stabilised / Σ s²_plain), s² the unbiased
  (ddof = 1) seed variance of test accuracy; pairs with fewer than two seeds with an accuracy on a
  side are left out. < 1: the stabiliser lowers seed instability.
- ``failed_rate``: mean over pairs of the difference of failed-run rates (stabilised − plain),
  unbiased. < 0: fewer failed runs.
- ``leave_one_out``: ratio of summed E_i, Σ L_stabilised / Σ L_plain, each side's L the mean E_i
  over the pair's **matched seeds**, those with an E_i on both sides (:func:`matched_leave_one_out`):
  a seed whose E_i group the estimator rule dropped on one side is dropped on the other too, so
  the two sides are means over the same seeds (a side's own kept seeds would be the stratum where
  its left-out models stayed stable, and a stabiliser whose left-out models diverge would look more
  stable for it). Pairs without a matched seed are left out. The row counts, per side and summed
  over its pairs, the seeds kept and dropped by the rule, the matched seeds and the pairs left out
  (:func:`leave_one_out_counts`), so a ratio on fewer seeds than the row holds says so. < 1: more
  stable.
- ``target:<quantity>``: the change of each quantity the stabiliser declares it targets
  (``Stabiliser.targets``), as the ratio of sums or the mean difference (:class:`Quantity`), judged
  against the direction the theory says the stabiliser moves it. Where no pair of the row records
  the quantity on either side (e.g. the head direction's seed spread, MHLoss's target, on MLP
  tasks, whose runs do not measure it), its verdict reads "not measured here", not "no data": the
  change is not small or uncertain, it was never measured on that family.

The CI is a percentile interval of a paired cluster bootstrap: datasets are resampled with
replacement and carry all their pairs, both sides together (a resample drawing a dataset k times
weights its sums k times, computed for all resamples at once); the seed is derived from the
verdict's coordinates, so the verdicts are deterministic. ``se`` is the bootstrap standard
deviation. A resample whose denominator is 0 is left out of its percentiles. With fewer than two
datasets there is no interval and the verdict is "no data"; with fewer than ``MIN_DATASETS`` (5) the
interval is reported but the verdict is "too few datasets" (for a ratio, datasets where both sides
are 0 do not count).

Strength selection: where a stabiliser ran at several settings on a pair, the
**validation-selected** row is cross-fitted, so that the seeds whose luck picked a setting are not
the seeds that judge it (a seed's model shares its luck between validation and test accuracy: a run
that fails, fails on both, and picking the best of several settings on those seeds would credit the
setting whose seeds happened to fail less). The seeds of a pair are split into two folds by their
seed index, even and odd (:data:`N_FOLDS`, :func:`seed_fold`). Per fold, the setting is selected
on the *other* fold's mean validation accuracy (ties: the default, then the settings' order) and
evaluated on this fold's seeds; plain training is evaluated on the same folds, so the pairing
holds. Each seed is thus evaluated exactly once, under a selection that did not see it, and the
two folds combine into one pair:

- ``seed_std``: s² of each side is the pooled within-fold variance, Σ_folds Σ_seeds (x − x̄_fold)² /
  Σ_folds (n_fold − 1) over the seeds with an accuracy (the two folds may run different settings,
  so deviations are taken from each fold's own mean), plain's computed on the same folds;
- ``failed_rate``, ``leave_one_out`` and target quantities: over all evaluated seeds, as for one
  setting (the failed-run rate of the ten evaluated seeds, the mean E_i over the matched ones and
  the mean quantity over them).

A pair with fewer than two seeds in a fold (on plain or on any setting) cannot be cross-fitted and
is left out of the selected row (``unfoldable_pairs``); one where some setting records no
validation accuracy on a fold is left out as ``unselectable_pairs``. ``chosen`` counts the folds
(two per pair) each setting was selected on. The reported test accuracy is never used to select.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from verify.seeding import run_seed
from verify.verdicts.stats import CONFIDENCE, N_RESAMPLES

PLAIN = "none"
RATIO, DIFFERENCE = "ratio", "difference"
STABILISES, DESTABILISES, INCONCLUSIVE, NO_DATA = ("stabilises", "destabilises", "inconclusive",
                                                   "no data")
TOO_FEW = "too few datasets"
NOT_MEASURED = "not measured here"
# A bootstrap over fewer clusters than this has too few distinct resamples for its percentiles to
# mean a 95% interval (two datasets give three): the interval is reported, the verdict is not made.
MIN_DATASETS = 5
RAISED, LOWERED = "raised", "lowered"
DEFAULT, SELECTED = "default", "validation-selected"
# Cross-fitting folds of a pair's seeds (even / odd seed index): each is selected on the other.
N_FOLDS = 2


@dataclass(frozen=True)
class Quantity:
    """A theory quantity a stabiliser targets, and how its change is compared.

    Attributes
    ----------
    name : str
        The name stabilisers declare in ``targets`` (``"gamma_over_R"``, ``"D"``, ...).
    label : str
        What is measured, in words.
    comparison : {"ratio", "difference"}
        Ratio of sums over pairs (positive quantities) or mean difference (signed quantities).
    intended : {-1, 0, 1}
        The direction in which the theory says a smaller instability lies (0: none, e.g. η·T, which
        a stabiliser may hold fixed on purpose).
    """

    name: str
    label: str
    comparison: str
    intended: int

    def __post_init__(self) -> None:
        if self.comparison not in (RATIO, DIFFERENCE):
            raise ValueError(f"comparison must be {RATIO!r} or {DIFFERENCE!r}, got {self.comparison!r}")
        if self.intended not in (-1, 0, 1):
            raise ValueError(f"intended must be -1, 0 or 1, got {self.intended!r}")


def seed_fold(seed: int) -> int:
    """The cross-fitting fold of a seed index: even seeds form fold 0, odd seeds fold 1."""
    return int(seed) % N_FOLDS


@dataclass(frozen=True)
class Unit:
    """One dataset × config × stabiliser setting at its task's final checkpoint.

    Every per-seed tuple has one entry per seed, in the order of ``seeds``.

    Attributes
    ----------
    dataset_id, family, config, stabiliser, params : str
        Coordinates; ``family`` labels the task family (kind, and the teacher where the card has
        one); ``params`` the canonical JSON of the stabiliser's parameters.
    accuracy : tuple of float
        Test accuracy per seed (NaN where undefined: diverged).
    failed : tuple of bool
        Whether each seed's run failed.
    seeds : tuple of int, default=()
        The seed index of each entry; empty: 0, 1, ... in order.
    leave_one_out : tuple of float, default=()
        E_i of the setting's leave-one-out measure per seed (NaN: not estimated; empty: none).
    targets : mapping of str to tuple of float
        Target quantity -> its value per seed (NaN where not measured; absent: never measured).
    validation : tuple of float, default=()
        Validation accuracy per seed (NaN where none; empty: the runs record none).
    leave_one_out_dropped : tuple of bool, default=()
        Per seed, whether the seed's E_i group (its left-out runs) was dropped by the estimator
        rule: its left-out estimate is partial, or a left-out model diverged or lacks the measure
        (its ``leave_one_out`` is then NaN). Empty: none was dropped. A seed with no left-out runs
        at all is neither kept nor dropped.
    within_folds : bool, default=False
        Whether the seed variance pools the deviations within each seed fold (:func:`seed_fold`)
        rather than over all seeds: a cross-fitted side, whose folds may run different settings.
    """

    dataset_id: str
    family: str
    config: str
    stabiliser: str
    params: str
    accuracy: tuple[float, ...]
    failed: tuple[bool, ...]
    seeds: tuple[int, ...] = ()
    leave_one_out: tuple[float, ...] = ()
    targets: Mapping[str, tuple[float, ...]] = field(default_factory=dict)
    validation: tuple[float, ...] = ()
    leave_one_out_dropped: tuple[bool, ...] = ()
    within_folds: bool = False

    def __post_init__(self) -> None:
        n = len(self.accuracy)
        if not self.seeds:
            object.__setattr__(self, "seeds", tuple(range(n)))
        for name, values in (("failed", self.failed), ("seeds", self.seeds),
                             ("leave_one_out", self.leave_one_out), ("validation", self.validation),
                             ("leave_one_out_dropped", self.leave_one_out_dropped),
                             *((f"targets[{q!r}]", v) for q, v in self.targets.items())):
            if name in ("failed", "seeds") or values:
                if len(values) != n:
                    raise ValueError(f"{name} must have one entry per seed ({n}), got {len(values)}")
        kept = self.leave_one_out_by_seed
        if any(dropped and seed in kept
               for seed, dropped in zip(self.seeds, self.leave_one_out_dropped)):
            raise ValueError("leave_one_out_dropped marks a seed whose leave_one_out is estimated; "
                             "a dropped seed has no E_i (NaN)")

    @property
    def seed_variance(self) -> float | None:
        """Unbiased seed variance of test accuracy (ddof = 1), pooled within the seed folds where
        ``within_folds``: Σ (x − x̄_group)² / Σ (n_group − 1) over the seeds with an accuracy. None
        where no group holds two such seeds."""
        accuracy = np.asarray(self.accuracy, dtype=float)
        groups = ([np.asarray(self.seeds) % N_FOLDS == fold for fold in range(N_FOLDS)]
                  if self.within_folds else [np.ones(accuracy.size, dtype=bool)])
        squares, freedom = 0.0, 0
        for group in groups:
            defined = accuracy[group & np.isfinite(accuracy)]
            if defined.size:
                squares += float(np.sum((defined - defined.mean()) ** 2))
                freedom += defined.size - 1
        return squares / freedom if freedom >= 1 else None

    @property
    def failed_rate(self) -> float | None:
        return float(np.mean(self.failed)) if self.failed else None

    @property
    def mean_leave_one_out(self) -> float | None:
        """E_i, mean over the seeds that estimate it (None: none does)."""
        return _finite_mean(self.leave_one_out)

    @property
    def leave_one_out_by_seed(self) -> dict[int, float]:
        """Seed index -> E_i, for the seeds that estimate it (kept by the estimator rule)."""
        if not self.leave_one_out:
            return {}
        return {int(seed): float(value) for seed, value in zip(self.seeds, self.leave_one_out)
                if math.isfinite(value)}

    @property
    def leave_one_out_kept(self) -> int:
        """How many seeds estimate E_i (their E_i group kept by the estimator rule)."""
        return len(self.leave_one_out_by_seed)

    @property
    def leave_one_out_dropped_seeds(self) -> int:
        """How many seeds' E_i groups the estimator rule dropped (``leave_one_out_dropped``)."""
        return int(sum(self.leave_one_out_dropped))

    @property
    def validation_accuracy(self) -> float | None:
        """Mean validation accuracy over the seeds that record one (None: none does)."""
        return _finite_mean(self.validation)

    def target(self, quantity: str) -> float | None:
        """Mean of a target quantity over the seeds that measure it (None: none does)."""
        return _finite_mean(self.targets.get(quantity, ()))

    def fold_seeds(self, fold: int) -> int:
        """How many seeds of the unit lie in ``fold``."""
        return sum(seed_fold(seed) == fold for seed in self.seeds)

    def restricted(self, fold: int) -> Unit:
        """The unit on the seeds of one fold only."""
        keep = [k for k, seed in enumerate(self.seeds) if seed_fold(seed) == fold]

        def pick(values: tuple) -> tuple:
            return tuple(values[k] for k in keep) if values else ()

        return replace(self, accuracy=pick(self.accuracy), failed=pick(self.failed),
                       seeds=pick(self.seeds), leave_one_out=pick(self.leave_one_out),
                       validation=pick(self.validation),
                       leave_one_out_dropped=pick(self.leave_one_out_dropped),
                       targets={q: pick(v) for q, v in self.targets.items()})


def _finite_mean(values: Sequence[float]) -> float | None:
    finite = np.asarray(values, dtype=float)
    finite = finite[np.isfinite(finite)]
    return float(np.mean(finite)) if finite.size else None


@dataclass(frozen=True)
class Measure:
    """How one measure is compared: its name, estimator and the side a stabiliser should be on."""

    name: str
    label: str
    comparison: str
    better: int            # -1: lower is more stable (target quantities: +1, verdicts say raised/lowered)
    transform: str = ""    # "sqrt": the ratio of sums of variances becomes a ratio of std


SEED_STD = Measure("seed_std", "seed std of test accuracy (pooled; stabilised / plain)", RATIO, -1,
                   "sqrt")
FAILED_RATE = Measure("failed_rate", "failed-run rate (stabilised − plain)", DIFFERENCE, -1)
LEAVE_ONE_OUT = Measure("leave_one_out", "leave-one-out instability E_i (stabilised / plain)",
                        RATIO, -1)
INSTABILITY_MEASURES = (SEED_STD, FAILED_RATE, LEAVE_ONE_OUT)


def target_measure(quantity: Quantity) -> Measure:
    symbol = "/" if quantity.comparison == RATIO else "−"
    return Measure(f"target:{quantity.name}",
                   f"{quantity.label} (stabilised {symbol} plain)", quantity.comparison, 1)


def side_value(unit: Unit, measure: Measure) -> float | None:
    """One side of a pair: ``unit``'s value of ``measure`` (None where it has none)."""
    if measure is SEED_STD:
        return unit.seed_variance
    if measure is FAILED_RATE:
        return unit.failed_rate
    if measure is LEAVE_ONE_OUT:
        return unit.mean_leave_one_out
    return unit.target(measure.name.removeprefix("target:"))


def paired_sides(stabilised: Unit, plain: Unit,
                 measure: Measure) -> tuple[float | None, float | None]:
    """Both sides of a pair for ``measure``: :func:`side_value` of each, except for the
    leave-one-out measure, whose sides are taken on the matched seeds
    (:func:`matched_leave_one_out`; (None, None) where no seed has E_i on both sides)."""
    if measure is LEAVE_ONE_OUT:
        matched = matched_leave_one_out(stabilised, plain)
        return (matched[0], matched[1]) if matched else (None, None)
    return side_value(stabilised, measure), side_value(plain, measure)


def matched_leave_one_out(stabilised: Unit, plain: Unit) -> tuple[float, float, int] | None:
    """A pair's two sides of the leave-one-out measure on its matched seeds: the mean E_i of each
    side over the seeds (by seed index) that estimate E_i on *both* sides, and how many they are;
    None where no seed does.

    A seed whose E_i group the estimator rule dropped on one side (its left-out models partly
    diverged, or its estimate is partial) is dropped on the other side too. The two runs of a seed
    share its data order and initial draw, so the pair compares like with like only on the same
    seeds; and the seeds a side drops are not a random draw (a left-out model diverged on them), so
    the mean over the seeds a side kept is a statistic of its well-behaved stratum: a stabiliser
    whose left-out models diverge on the unstable seeds would otherwise be compared, on its calm
    seeds alone, with plain training on all of them, and look more stable for it. The matched
    means are one stratum too, the seeds both sides estimate, and the same one on both sides; the
    seeds set aside are counted in the row (:func:`leave_one_out_counts`)."""
    mine, theirs = stabilised.leave_one_out_by_seed, plain.leave_one_out_by_seed
    common = sorted(set(mine) & set(theirs))
    if not common:
        return None
    return (float(np.mean([mine[seed] for seed in common])),
            float(np.mean([theirs[seed] for seed in common])), len(common))


def leave_one_out_counts(sides: Sequence[tuple[Unit, Unit]]) -> dict[str, int]:
    """The seeds behind a row's leave-one-out estimate, summed over its pairs (stabilised, plain).

    Returns
    -------
    dict
        ``stabilised_kept`` / ``plain_kept`` (seeds whose E_i group the estimator rule kept),
        ``stabilised_dropped`` / ``plain_dropped`` (seeds whose group it dropped: a partial estimate,
        or a left-out model that diverged or lacks the measure), ``matched_seeds`` (seeds with E_i
        on both sides: the estimate's seeds; a side's kept seeds beyond them were set aside because
        the other side has no E_i there) and ``left_out_pairs`` (pairs that record the measure on
        some side, a seed kept or dropped, but have no matched seed, so no part in the estimate).
    """
    counts = dict.fromkeys(("stabilised_kept", "stabilised_dropped", "plain_kept", "plain_dropped",
                            "matched_seeds", "left_out_pairs"), 0)
    for stabilised, plain in sides:
        recorded = 0
        for side, unit in (("stabilised", stabilised), ("plain", plain)):
            counts[f"{side}_kept"] += unit.leave_one_out_kept
            counts[f"{side}_dropped"] += unit.leave_one_out_dropped_seeds
            recorded += unit.leave_one_out_kept + unit.leave_one_out_dropped_seeds
        matched = matched_leave_one_out(stabilised, plain)
        counts["matched_seeds"] += matched[2] if matched else 0
        counts["left_out_pairs"] += int(matched is None and recorded > 0)
    return counts


def paired_estimate(pairs: Sequence[tuple[str, float, float]], measure: Measure, *,
                    random_state: int, confidence: float = CONFIDENCE,
                    n_resamples: int = N_RESAMPLES) -> dict:
    """The measure's estimate over ``pairs`` with its paired cluster-bootstrap CI over datasets.

    Parameters
    ----------
    pairs : sequence of (dataset_id, stabilised, plain)
        One entry per pair; a dataset may hold several (configs, settings).
    measure : Measure
    random_state : int
        Seed of the bootstrap.
    confidence : float, default=0.95
    n_resamples : int, default=2000

    Returns
    -------
    dict
        ``value``, ``low``, ``high``, ``se`` (None where undefined), ``n_pairs``, ``n_datasets``,
        ``verdict``: with ``measure.better`` = -1, "stabilises" when the CI lies below the null
        (1 for a ratio, 0 for a difference), "destabilises" above, else "inconclusive"; "no data"
        with fewer than two datasets or an undefined estimate, "too few datasets" with fewer than
        :data:`MIN_DATASETS`.
    """
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence!r}")
    if int(n_resamples) != n_resamples or n_resamples < 1:
        raise ValueError(f"n_resamples must be an integer >= 1, got {n_resamples!r}")
    datasets = sorted({dataset for dataset, _, _ in pairs})
    result: dict[str, float | str | None] = {"value": None, "low": None, "high": None, "se": None, "n_pairs": len(pairs),
              "n_datasets": len(datasets), "verdict": NO_DATA}
    if not pairs:
        return result
    index = {dataset: k for k, dataset in enumerate(datasets)}
    stabilised = np.zeros(len(datasets))
    plain = np.zeros(len(datasets))
    counts = np.zeros(len(datasets))
    for dataset, a, b in pairs:
        stabilised[index[dataset]] += a
        plain[index[dataset]] += b
        counts[index[dataset]] += 1

    def estimate(weights: np.ndarray) -> np.ndarray:
        with np.errstate(divide="ignore", invalid="ignore"):
            if measure.comparison == DIFFERENCE:
                return (weights @ (stabilised - plain)) / (weights @ counts)
            ratio = (weights @ stabilised) / (weights @ plain)
            return np.sqrt(ratio) if measure.transform == "sqrt" else ratio

    point = float(estimate(np.ones((1, len(datasets))))[0])
    if not np.isfinite(point):
        return result
    result["value"] = point
    if len(datasets) < 2:
        return result
    rng = np.random.default_rng(random_state)
    draws = rng.multinomial(len(datasets), np.full(len(datasets), 1 / len(datasets)),
                            size=n_resamples).astype(float)
    resampled = estimate(draws)
    resampled = resampled[np.isfinite(resampled)]
    if not resampled.size:
        return result
    alpha = (1 - confidence) / 2
    low, high = np.quantile(resampled, [alpha, 1 - alpha])
    null = 1.0 if measure.comparison == RATIO else 0.0
    below, above = high < null, low > null
    if measure.better == 1:
        below, above = above, below
    verdict = STABILISES if below else DESTABILISES if above else INCONCLUSIVE
    # A ratio learns nothing from a dataset where both sides are 0 (e.g. no seed varies): only the
    # others count toward the minimum.
    informative = (len(datasets) if measure.comparison == DIFFERENCE
                   else int(np.count_nonzero((stabilised != 0) | (plain != 0))))
    result.update(low=float(low), high=float(high), se=float(np.std(resampled, ddof=1))
                  if resampled.size >= 2 else 0.0, n_informative=informative,
                  verdict=verdict if informative >= MIN_DATASETS else TOO_FEW)
    return result


def _target_change(estimate: dict, intended: int) -> dict:
    """A target quantity's verdict in its own words (raised / lowered), and whether that is the
    direction the theory associates with more stability (None where it says none or nothing moved)."""
    verdict = {STABILISES: RAISED, DESTABILISES: LOWERED}.get(estimate["verdict"], estimate["verdict"])
    direction = {RAISED: 1, LOWERED: -1}.get(verdict)
    as_intended = None if direction is None or intended == 0 else direction == intended
    return {**estimate, "verdict": verdict, "intended": intended, "as_intended": as_intended}


def select_on_validation(settings: Mapping[str, Unit], default: str | None) -> str | None:
    """The setting (canonical params) with the highest mean validation accuracy; ties go to
    ``default``, then to the first in sorted order. None when some setting records no validation
    accuracy (no selection is possible without looking at test accuracy)."""
    means = {params: unit.validation_accuracy for params, unit in settings.items()}
    if any(mean is None for mean in means.values()):
        return None
    best = max(mean for mean in means.values() if mean is not None)
    tied = sorted(params for params, mean in means.items() if mean == best)
    return default if default in tied else tied[0]


def cross_fit(settings: Mapping[str, Unit], plain: Unit,
              default: str | None) -> tuple[Unit, Unit, tuple[str, ...]] | str:
    """One pair's cross-fitted selection: per fold, the setting selected on the other fold's
    validation accuracy, evaluated on this fold's seeds.

    Parameters
    ----------
    settings : mapping of str to Unit
        The pair's stabilised units, canonical params -> unit.
    plain : Unit
        The pair's plain unit.
    default : str or None
        The stabiliser's default params (wins ties).

    Returns
    -------
    (Unit, Unit, tuple of str) or str
        The stabilised side (each fold's seeds from its selected setting) and the plain side on the
        same folds, both pooling their seed variance within folds, with the setting selected per
        fold; or ``"unfoldable"`` where a fold holds fewer than two seeds of plain or of some
        setting, ``"unselectable"`` where some setting records no validation accuracy on a fold.
    """
    if any(unit.fold_seeds(fold) < 2 for unit in (plain, *settings.values())
           for fold in range(N_FOLDS)):
        return "unfoldable"
    evaluated, selected = [], []
    for fold in range(N_FOLDS):
        others = {params: unit.restricted((fold + 1) % N_FOLDS) for params, unit in settings.items()}
        params = select_on_validation(others, default)
        if params is None:
            return "unselectable"
        evaluated.append(settings[params].restricted(fold))
        selected.append(params)
    folds = [plain.restricted(fold) for fold in range(N_FOLDS)]
    return _joined(evaluated), _joined(folds), tuple(selected)


def _joined(parts: Sequence[Unit]) -> Unit:
    """The seeds of ``parts`` (one unit per fold, of one dataset and config) as one side whose seed
    variance pools within folds; ``params`` lists the parts' settings."""
    first = parts[0]
    quantities = sorted({q for part in parts for q in part.targets})

    def cat(name: str) -> tuple:
        values = [getattr(part, name) for part in parts]
        if any(values) and not all(values):  # one fold records it, the other does not
            values = [v or (math.nan,) * len(part.seeds) for v, part in zip(values, parts)]
        return tuple(item for value in values for item in value)

    return Unit(dataset_id=first.dataset_id, family=first.family, config=first.config,
                stabiliser=first.stabiliser, params="|".join(sorted({part.params for part in parts})),
                accuracy=cat("accuracy"), failed=cat("failed"), seeds=cat("seeds"),
                leave_one_out=cat("leave_one_out"), validation=cat("validation"),
                leave_one_out_dropped=tuple(item for part in parts for item in (
                    part.leave_one_out_dropped or (False,) * len(part.seeds)))
                if any(part.leave_one_out_dropped for part in parts) else (),
                targets={q: tuple(item for part in parts
                                  for item in part.targets.get(q, (math.nan,) * len(part.seeds)))
                         for q in quantities},
                within_folds=True)


def paired_verdicts(units: Sequence[Unit], *, targets: Mapping[str, Sequence[str]],
                    defaults: Mapping[str, str], quantities: Mapping[str, Quantity],
                    confidence: float = CONFIDENCE, n_resamples: int = N_RESAMPLES) -> list[dict]:
    """Every stabiliser against plain training, per task family and selection of its setting.

    Parameters
    ----------
    units : sequence of Unit
        Plain units (``stabiliser == "none"``) and stabilised ones; a stabilised unit without a
        plain unit on the same dataset and config is not paired.
    targets : mapping of str to sequence of str
        Stabiliser name -> the quantities it targets (its ``targets`` declaration).
    defaults : mapping of str to str
        Stabiliser name -> canonical JSON of its default parameters.
    quantities : mapping of str to Quantity
        How each target quantity is compared; a declared target without an entry is listed in
        ``unmeasured_targets``.
    confidence, n_resamples
        Of the bootstrap.

    Returns
    -------
    list of dict
        One row per (stabiliser, family, selection), sorted: ``selection`` is "default", a
        non-default setting's canonical params, or "validation-selected" (where a pair ran two or
        more settings); ``params`` (the setting, or None for the selected row), ``is_default``,
        ``configs``, ``n_pairs``, ``n_datasets``, ``measures`` (name -> :func:`paired_estimate`'s
        dict plus ``label`` and ``comparison``; a target quantity's verdict reads "raised" / "lowered", with
        ``intended`` and ``as_intended``, or "not measured here" where no pair records it on
        either side; ``leave_one_out`` adds :func:`leave_one_out_counts`'s seed and pair counts),
        ``verdict`` (the seed-std verdict: the paper's sense of "stabilises"),
        ``unmeasured_targets`` and, for the (cross-fitted) selected row, ``chosen`` (params ->
        number of folds it was selected on, two per pair), ``unfoldable_pairs`` (pairs with fewer
        than two seeds in a fold, left out) and ``unselectable_pairs`` (pairs where some setting
        records no validation accuracy on a fold, left out).
    """
    plain = {(u.dataset_id, u.config): u for u in units if u.stabiliser == PLAIN}
    by_pair: dict[tuple[str, str, str], dict[str, Unit]] = {}
    for unit in units:
        if unit.stabiliser == PLAIN or (unit.dataset_id, unit.config) not in plain:
            continue
        by_pair.setdefault((unit.stabiliser, unit.family, unit.dataset_id + "\0" + unit.config),
                           {})[unit.params] = unit
    groups: dict[tuple[str, str], dict[str, dict[str, Unit]]] = {}
    for (name, family, pair), settings in by_pair.items():
        groups.setdefault((name, family), {})[pair] = settings
    rows = []
    for (name, family), pairs in sorted(groups.items()):
        declared = tuple(targets.get(name, ()))
        measures = [*INSTABILITY_MEASURES,
                    *(target_measure(quantities[q]) for q in declared if q in quantities)]
        unmeasured = [q for q in declared if q not in quantities]
        every = sorted({params for settings in pairs.values() for params in settings})
        selections: list[tuple[str, dict[str, tuple[Unit, Unit]], dict]] = []
        for params in every:
            chosen = {pair: (settings[params], plain[(settings[params].dataset_id,
                                                      settings[params].config)])
                      for pair, settings in pairs.items() if params in settings}
            is_default = params == defaults.get(name)
            selections.append((DEFAULT if is_default else params, chosen,
                               {"params": params, "is_default": is_default}))
        multi = {pair: settings for pair, settings in pairs.items() if len(settings) >= 2}
        if multi:
            chosen, left_out = {}, {"unfoldable": 0, "unselectable": 0}
            counts: dict[str, int] = {}
            for pair, settings in multi.items():
                some = next(iter(settings.values()))
                fitted = cross_fit(settings, plain[(some.dataset_id, some.config)],
                                   defaults.get(name))
                if isinstance(fitted, str):
                    left_out[fitted] += 1
                    continue
                stabilised, reference, selected = fitted
                chosen[pair] = (stabilised, reference)
                for params in selected:
                    counts[params] = counts.get(params, 0) + 1
            selections.append((SELECTED, chosen, {"params": None, "is_default": False,
                                                  "chosen": dict(sorted(counts.items())),
                                                  "unselectable_pairs": left_out["unselectable"],
                                                  "unfoldable_pairs": left_out["unfoldable"]}))
        for selection, chosen, extra in selections:
            estimates = {}
            for measure in measures:
                found, recorded = [], False
                for pair, (unit, reference) in sorted(chosen.items()):
                    a, b = side_value(unit, measure), side_value(reference, measure)
                    recorded = recorded or a is not None or b is not None
                    a, b = paired_sides(unit, reference, measure)
                    if a is not None and b is not None:
                        found.append((unit.dataset_id, a, b))
                estimate = paired_estimate(
                    found, measure, confidence=confidence, n_resamples=n_resamples,
                    random_state=run_seed("verdicts", "paired", name, family, selection,
                                          measure.name))
                if measure.name.startswith("target:"):
                    if chosen and not recorded:
                        estimate = {**estimate, "verdict": NOT_MEASURED}
                    estimate = _target_change(
                        estimate, quantities[measure.name.removeprefix("target:")].intended)
                if measure is LEAVE_ONE_OUT:
                    estimate = {**estimate, **leave_one_out_counts(
                        [sides for _, sides in sorted(chosen.items())])}
                estimates[measure.name] = {"label": measure.label,
                                           "comparison": measure.comparison, **estimate}
            rows.append({
                "stabiliser": name, "family": family, "selection": selection, **extra,
                "configs": sorted({unit.config for unit, _ in chosen.values()}),
                "n_pairs": len(chosen),
                "n_datasets": len({unit.dataset_id for unit, _ in chosen.values()}),
                "measures": estimates, "verdict": estimates[SEED_STD.name]["verdict"],
                "unmeasured_targets": unmeasured})
    return rows
