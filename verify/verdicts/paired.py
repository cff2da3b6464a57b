"""Paired stabiliser verdicts: each stabiliser against plain training on the same datasets, configs
and seeds, with a paired bootstrap CI over datasets and a verdict per task family.

A **pair** is one dataset trained with one config, once plain and once with one setting of a
stabiliser (the same seeds: a run's seed is derived from its coordinates, so plain and stabilised
runs of a seed share the data order and the head's initial draw). Per pair and side the inputs are
the final checkpoint's test accuracy per seed, whether each seed failed (at or below the
majority-class accuracy, or diverged), E_i of the setting's leave-one-out measure (mean over seeds;
absent where the left-out estimate is partial or no set was left out), the stabiliser's target
quantities (mean over seeds) and the mean validation accuracy (for selecting a strength).

Measures, each an estimator over the pairs of a family (sums run over pairs):

- ``seed_std``: ratio of the pooled seed std, sqrt(Σ s²_stabilised / Σ s²_plain), s² the unbiased
  (ddof = 1) seed variance of test accuracy; pairs with fewer than two seeds with an accuracy on a
  side are left out. < 1: the stabiliser lowers seed instability.
- ``failed_rate``: mean over pairs of the difference of failed-run rates (stabilised − plain),
  unbiased. < 0: fewer failed runs.
- ``leave_one_out``: ratio of summed E_i, Σ L_stabilised / Σ L_plain. < 1: more stable.
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

Strength selection: where a stabiliser ran at several settings on a pair, the **validation-selected**
setting of that pair is the one with the highest mean validation accuracy over seeds (ties: the
default, then the settings' order); the reported test accuracy is never used to select.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

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


@dataclass(frozen=True)
class Unit:
    """One dataset × config × stabiliser setting at its task's final checkpoint.

    Attributes
    ----------
    dataset_id, family, config, stabiliser, params : str
        Coordinates; ``family`` labels the task family (kind, and the teacher where the card has
        one); ``params`` the canonical JSON of the stabiliser's parameters.
    accuracy : tuple of float
        Test accuracy per seed (NaN where undefined: diverged).
    failed : tuple of bool
        Whether each seed's run failed.
    leave_one_out : float or None
        E_i of the setting's leave-one-out measure, mean over seeds (None: not estimated).
    targets : mapping of str to float
        Target quantity -> mean over seeds (absent where not measured).
    validation_accuracy : float or None
        Mean validation accuracy over seeds (None where the runs record none).
    """

    dataset_id: str
    family: str
    config: str
    stabiliser: str
    params: str
    accuracy: tuple[float, ...]
    failed: tuple[bool, ...]
    leave_one_out: float | None = None
    targets: Mapping[str, float] = field(default_factory=dict)
    validation_accuracy: float | None = None

    @property
    def seed_variance(self) -> float | None:
        defined = np.asarray(self.accuracy, dtype=float)
        defined = defined[np.isfinite(defined)]
        return float(np.var(defined, ddof=1)) if defined.size >= 2 else None

    @property
    def failed_rate(self) -> float | None:
        return float(np.mean(self.failed)) if self.failed else None


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
        return unit.leave_one_out
    value = unit.targets.get(measure.name.removeprefix("target:"))
    return None if value is None or not np.isfinite(value) else float(value)


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
    if any(unit.validation_accuracy is None for unit in settings.values()):
        return None
    best = max(unit.validation_accuracy for unit in settings.values()
               if unit.validation_accuracy is not None)
    tied = sorted(params for params, unit in settings.items() if unit.validation_accuracy == best)
    return default if default in tied else tied[0]


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
        either side),
        ``verdict`` (the seed-std verdict: the paper's sense of "stabilises"),
        ``unmeasured_targets`` and, for the selected row, ``chosen`` (params -> number of pairs)
        and ``unselectable_pairs`` (pairs without validation accuracy for every setting).
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
        selections: list[tuple[str, dict[str, Unit], dict]] = []
        for params in every:
            chosen = {pair: settings[params] for pair, settings in pairs.items() if params in settings}
            is_default = params == defaults.get(name)
            selections.append((DEFAULT if is_default else params, chosen,
                               {"params": params, "is_default": is_default}))
        multi = {pair: settings for pair, settings in pairs.items() if len(settings) >= 2}
        if multi:
            chosen, unselectable = {}, 0
            counts: dict[str, int] = {}
            for pair, settings in multi.items():
                selected = select_on_validation(settings, defaults.get(name))
                if selected is None:
                    unselectable += 1
                    continue
                chosen[pair] = settings[selected]
                counts[selected] = counts.get(selected, 0) + 1
            selections.append((SELECTED, chosen, {"params": None, "is_default": False,
                                                  "chosen": dict(sorted(counts.items())),
                                                  "unselectable_pairs": unselectable}))
        for selection, chosen, extra in selections:
            estimates = {}
            for measure in measures:
                found, recorded = [], False
                for pair, unit in sorted(chosen.items()):
                    reference = plain[(unit.dataset_id, unit.config)]
                    a, b = side_value(unit, measure), side_value(reference, measure)
                    recorded = recorded or a is not None or b is not None
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
                estimates[measure.name] = {"label": measure.label,
                                           "comparison": measure.comparison, **estimate}
            rows.append({
                "stabiliser": name, "family": family, "selection": selection, **extra,
                "configs": sorted({unit.config for unit in chosen.values()}),
                "n_pairs": len(chosen), "n_datasets": len({u.dataset_id for u in chosen.values()}),
                "measures": estimates, "verdict": estimates[SEED_STD.name]["verdict"],
                "unmeasured_targets": unmeasured})
    return rows
