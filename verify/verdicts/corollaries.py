"""The theory's predicted trends (corollaries) and their granulated-Kendall-tau verdicts.

A corollary says that one quantity moves an instability measure in one direction, everything else
fixed. Its evidence is a granulated Kendall tau (``verify.verdicts.stats``): left-out runs are first
averaged over i (E_i, ``verify.verdicts.db.left_out_mean``) per dataset, config, stabiliser, seed and
checkpoint, then grouped by every coordinate of ``verify.verdicts.db.COORDINATES`` except those that
make up the varied quantity. The corollary is a statement about the bounds it names
(``claimed_by``), so the trend is computed for every bound of the same setting and measure (its value
averaged over the left-out runs whose assumptions hold; bounds it does not name are references)
and, to say whether the measurement follows it, for the measured instability. Runs that diverged
are left out: the trends are claimed only where training is stable (eta < 2/beta).
"""
from __future__ import annotations

import json
import operator
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from verify.seeding import run_seed
from verify.verdicts.db import (
    ASSUMPTIONS_HOLD,
    COORDINATES,
    QUANTITY_COLUMNS,
    STABILITY_KEYS,
    fetch_dicts,
    left_out_mean,
)
from verify.verdicts.stats import granulated_kendall_tau, trend_verdict

DECREASE, INCREASE = -1, 1
HEAD_BOUNDS = ("theorem_h", "theorem_h_apriori")
FULL_BOUNDS = ("theorem_f",)


@dataclass(frozen=True)
class Corollary:
    """One predicted trend.

    Attributes
    ----------
    name : str
        Stable identifier (a key of the verdicts).
    setting : {"head", "full"}
        Runs it is about.
    varied : str
        The varied quantity, in words.
    varies : tuple of str
        The coordinates the quantity is made of; rows are grouped on all the others.
    quantity : callable
        Row (dict of coordinates) -> the varied quantity, or None where the row does not take part.
    measure : str
        The measured column (and bound measure) whose trend is predicted.
    predicted_sign : {-1, 1}
        -1: the measure decreases as the quantity grows (it stabilises); 1: it increases.
    statement : str
        The claim, in words.
    claimed_by : tuple of str
        The bounds (``theory.bounds.BOUNDS`` names) whose statement implies the trend; the trends
        of other bounds of the same measure are reported as references.
    strength_of : str or None, default=None
        A stabiliser whose ``strength`` parameter is the quantity: only its runs and plain runs take
        part, plain runs as strength 0 for every setting of the stabiliser's other parameters.
    """

    name: str
    setting: str
    varied: str
    varies: tuple[str, ...]
    quantity: Callable[[dict], float | None]
    measure: str
    predicted_sign: int
    statement: str
    claimed_by: tuple[str, ...]
    strength_of: str | None = None


def _column(name: str) -> Callable[[dict], float | None]:
    return lambda row: None if row[name] is None else float(row[name])


def _margin_over_radius(row: dict) -> float | None:
    if row["margin"] is None or not row["radius"]:
        return None
    return row["margin"] / row["radius"]


def _lr_times_iteration(row: dict) -> float | None:
    return None if row["lr"] is None else row["lr"] * row["iteration"]


def _with_strength(rows: list[dict], stabiliser: str) -> list[dict]:
    """The runs of ``stabiliser`` with their ``strength``, and plain runs as strength 0, once for
    each setting of the stabiliser's other parameters (which become ``stabiliser_params``)."""
    stabilised, plain = [], []
    for row in rows:
        if row["stabiliser"] == stabiliser:
            params = json.loads(row["stabiliser_params"])
            strength = params.pop("strength", None)
            stabilised.append({**row, "strength": strength,
                               "stabiliser_params": json.dumps(params, sort_keys=True)})
        elif row["stabiliser"] == "none":
            plain.append(row)
    others = sorted({row["stabiliser_params"] for row in stabilised})
    return stabilised + [{**row, "stabiliser": stabiliser, "strength": 0.0,
                          "stabiliser_params": params} for params in others for row in plain]


COROLLARIES: tuple[Corollary, ...] = (
    Corollary("head_margin", "head", "margin/radius", ("margin", "radius"), _margin_over_radius,
              "head_direction_stability", DECREASE,
              "Theorem H: a larger normalised margin gamma/R stabilises the head direction",
              HEAD_BOUNDS),
    Corollary("head_n_samples", "head", "n_samples", ("n_samples",), _column("n_samples"),
              "head_direction_stability", DECREASE,
              "Theorem H: more samples stabilise the head (the support-vector term is 2 k_SV / n)",
              HEAD_BOUNDS),
    Corollary("head_iteration", "head", "iteration", ("iteration",), _column("iteration"),
              "head_direction_stability", DECREASE,
              "Theorem H: more iterations stabilise the head (the margin gap e(t) shrinks)",
              HEAD_BOUNDS),
    Corollary("head_lr", "head", "lr (units of 1/beta)", ("lr_scale",), _column("lr_scale"),
              "head_direction_stability", DECREASE,
              "Theorem H: at a fixed t the margin-gap rates depend on eta*t, so a larger stable step "
              "stabilises the head", HEAD_BOUNDS),
    Corollary("full_n_samples", "full", "n_samples", ("n_samples",), _column("n_samples"),
              "parameter_stability", DECREASE,
              "Theorem F: more samples stabilise full fine-tuning (rho_i / ((n-1) mu'))",
              FULL_BOUNDS),
    Corollary("full_lr_iteration", "full", "lr*iteration", ("lr_scale", "iteration", "n_steps"),
              _lr_times_iteration, "parameter_stability", INCREASE,
              "Theorem F (corrected, docs/theory.md section 9.4): the instability is 0 at T = 0 and "
              "grows with eta*T towards ||w*_S - w*_S\\i|| <= rho_i / ((n-1) mu'); the first statement's "
              "'larger eta*T stabilises' holds only for its looser bound, whose D-term decays",
              ()),
    Corollary("full_distance", "full", "distance", ("distance",), _column("distance"),
              "parameter_stability", INCREASE,
              "Theorem F: a smaller distance D from the pre-trained weights stabilises (SURT)",
              FULL_BOUNDS),
    Corollary("full_l2sp", "full", "l2sp strength", (), _column("strength"),
              "parameter_stability", DECREASE,
              "Theorem F: L2-SP toward w0 raises mu, which stabilises full fine-tuning",
              FULL_BOUNDS, strength_of="l2sp"),
    Corollary("full_weight_decay", "full", "weight decay strength", (), _column("strength"),
              "parameter_stability", DECREASE,
              "Theorem F: weight decay raises mu, which stabilises full fine-tuning",
              FULL_BOUNDS, strength_of="weight_decay"),
    Corollary("full_lnsr", "full", "noise-stability strength", (), _column("strength"),
              "parameter_stability", DECREASE,
              "Theorem F: a noise-stability (Lipschitz) regulariser shrinks rho, which stabilises "
              "full fine-tuning", FULL_BOUNDS, strength_of="lnsr"),
)


def corollary_verdicts(conn: sqlite3.Connection, *,
                       corollaries: tuple[Corollary, ...] = COROLLARIES) -> list[dict]:
    """Judge every corollary on a results database.

    Parameters
    ----------
    conn : sqlite3.Connection
        A results database (see ``verify.verdicts.db.open_results``).
    corollaries : tuple of Corollary, default=COROLLARIES
        The trends to test.

    Returns
    -------
    list of dict
        One entry per corollary: its definition (``name``, ``setting``, ``varied``, ``measure``,
        ``predicted`` = "decrease" | "increase", ``statement``), ``measured`` (the trend of the
        measured instability) and ``bounds`` (bound name -> the trend of its value, with
        ``claimed``: whether the corollary is a statement about that bound). A trend holds
        ``tau``, ``low``, ``high`` (95% bootstrap CI over groups), ``n_groups``, ``n_rows`` and
        ``verdict`` ("pass" | "fail" | "inconclusive" | "no data").
    """
    verdicts = []
    fetched: dict[tuple[str, str], tuple[list[dict], dict[str, list[dict]]]] = {}
    for corollary in corollaries:
        if (corollary.setting, corollary.measure) not in fetched:
            fetched[corollary.setting, corollary.measure] = _fetch(conn, corollary.setting,
                                                                  corollary.measure)
        measured_rows, by_bound = fetched[corollary.setting, corollary.measure]
        verdicts.append({
            "name": corollary.name, "setting": corollary.setting, "varied": corollary.varied,
            "measure": corollary.measure,
            "predicted": "decrease" if corollary.predicted_sign == DECREASE else "increase",
            "statement": corollary.statement,
            "measured": _trend(corollary, measured_rows, series="measured"),
            "bounds": {bound: {**_trend(corollary, rows, series=bound),
                               "claimed": bound in corollary.claimed_by}
                       for bound, rows in sorted(by_bound.items())},
        })
    return verdicts


def _fetch(conn: sqlite3.Connection, setting: str,
           measure: str) -> tuple[list[dict], dict[str, list[dict]]]:
    """E_i of the measured column, and of each bound's value, per run and checkpoint."""
    coordinates = ", ".join(f"r.{column}" for column in COORDINATES + QUANTITY_COLUMNS)
    keys = ", ".join(f"r.{column}" for column in STABILITY_KEYS)
    measured_rows = _comparable(fetch_dicts(
        conn, f"SELECT {coordinates}, {left_out_mean(conn, f'r.{measure}')} AS y FROM runs r "
              f"WHERE r.left_out IS NOT NULL AND r.setting = ? GROUP BY {keys} "
              f"HAVING MAX(r.diverged) = 0 AND COUNT(r.{measure}) = COUNT(*)", (setting,)))
    bound_rows = _comparable(fetch_dicts(
        conn, f"SELECT b.bound, {coordinates}, {left_out_mean(conn, 'b.value')} AS y FROM bounds b "
              f"JOIN runs r USING (run_id) WHERE r.setting = ? AND b.measure = ? "
              f"AND {ASSUMPTIONS_HOLD} AND b.value IS NOT NULL GROUP BY b.bound, {keys} "
              f"HAVING MAX(r.diverged) = 0", (setting, measure)))
    by_bound: dict[str, list[dict]] = {}
    for row in bound_rows:
        by_bound.setdefault(row["bound"], []).append(row)
    return measured_rows, by_bound


def _trend(corollary: Corollary, rows: list[dict], *, series: str) -> dict:
    coordinates_of = operator.itemgetter(*(column for column in COORDINATES
                                           if column not in corollary.varies))
    if corollary.strength_of is not None:
        rows = _with_strength(rows, corollary.strength_of)
    quantity, measure, keys = [], [], []
    for row in rows:
        value = corollary.quantity(row)
        if value is None or row["y"] is None:
            continue
        quantity.append(value)
        measure.append(row["y"])
        keys.append(coordinates_of(row))
    result = granulated_kendall_tau(np.asarray(quantity), np.asarray(measure), keys,
                                    random_state=run_seed("verdicts", corollary.name, series))
    if result is None:
        return {"tau": None, "low": None, "high": None, "n_groups": 0, "n_rows": 0,
                "verdict": "no data"}
    return {"tau": result.tau.value, "low": result.tau.low, "high": result.tau.high,
            "n_groups": int(result.group_taus.size), "n_rows": int(result.group_sizes.sum()),
            "verdict": trend_verdict(result.tau, corollary.predicted_sign)}


def _comparable(rows: list[dict]) -> list[dict]:
    """Round float coordinates to 12 significant digits, so equal settings stored twice compare
    equal when rows are grouped."""
    for row in rows:
        for column in COORDINATES:
            if isinstance(row[column], float):
                row[column] = float(f"{row[column]:.12g}")
    return rows
