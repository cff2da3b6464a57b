"""Does a stabiliser lower seed instability against plain training on the same dataset and config?

A pair is one dataset trained with one config, once plain and once with the stabiliser (one pair per
setting of its parameters). The statistic is the median over pairs of the paired difference of the
seed std of test accuracy (stabilised − plain, ``verify.verdicts.datasets.seed_instability``), with a
bootstrap CI over datasets; "pass" when the CI lies below 0 (it stabilises), "fail" above.
"""
from __future__ import annotations

import warnings

import numpy as np
from scipy.stats import DegenerateDataWarning

from theory.stability import bootstrap_ci
from verify.seeding import run_seed
from verify.verdicts.stats import CONFIDENCE, N_RESAMPLES, trend_verdict


def stabiliser_verdicts(seed_verdicts: list[dict]) -> dict:
    """Paired comparison of each stabiliser with plain training.

    Parameters
    ----------
    seed_verdicts : list of dict
        ``verify.verdicts.datasets.seed_instability``'s units.

    Returns
    -------
    dict
        stabiliser -> {"accuracy_std": {"n_pairs", "n_datasets", "configs", "median_difference"
        ({value, low, high} or None), "verdict"}}.
    """
    plain = {(u["dataset_id"], u["config"]): u["accuracy_std"]["value"] for u in seed_verdicts
             if u["stabiliser"] == "none" and u["accuracy_std"]}
    pairs: dict[str, list[tuple[str, str, float]]] = {}
    for unit in seed_verdicts:
        key = (unit["dataset_id"], unit["config"])
        if unit["stabiliser"] == "none" or not unit["accuracy_std"] or key not in plain:
            continue
        pairs.setdefault(unit["stabiliser"], []).append(
            (unit["dataset_id"], unit["config"], unit["accuracy_std"]["value"] - plain[key]))
    verdicts = {}
    for name, found in sorted(pairs.items()):
        differences = np.array([d for _, _, d in found])
        datasets = sorted({dataset for dataset, _, _ in found})
        by_dataset = np.array([np.median([d for ds, _, d in found if ds == dataset])
                               for dataset in datasets])
        if by_dataset.size >= 2:
            with warnings.catch_warnings():
                # A handful of datasets makes the BCa interval degenerate (theory.stability falls
                # back to the percentile one); the warnings say nothing a reader can act on.
                warnings.simplefilter("ignore", DegenerateDataWarning)
                warnings.simplefilter("ignore", RuntimeWarning)
                interval = bootstrap_ci(by_dataset, np.median, confidence=CONFIDENCE,
                                        n_resamples=N_RESAMPLES,
                                        random_state=run_seed("verdicts", "stabiliser", name))
            median = {"value": float(np.median(differences)), "low": interval.low,
                      "high": interval.high}
            verdict = trend_verdict(interval._replace(value=median["value"]), -1)
        else:
            median, verdict = None, "no data"
        verdicts[name] = {"accuracy_std": {
            "n_pairs": len(found), "n_datasets": len(datasets),
            "configs": sorted({config for _, config, _ in found}),
            "median_difference": median, "verdict": verdict}}
    return verdicts
