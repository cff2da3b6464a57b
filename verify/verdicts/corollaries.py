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

Each corollary is judged on the runs inside its theorem's assumptions (``scope``); runs outside are
judged in their own rows, labelled by the first assumption they break ("outside the theorem: label
noise", ...), never pooled with the others. E_i groups whose left-out estimate is ``partial`` (a
stratum of S without a left-out sample) are left out and counted. A bound's trend uses only the
groups where its E_i is below the trivial value of its measure (``theory.bounds.BOUNDS[..].is_vacuous``);
a posteriori bounds are consistency checks, never evidence, and a trend carried by one term alone
(every other term constant within every group) says so.
"""
from __future__ import annotations

import json
import operator
import sqlite3
from collections.abc import Callable, Hashable
from dataclasses import dataclass

import numpy as np

from theory.bounds import BOUNDS
from verify.seeding import run_seed
from verify.verdicts.db import (
    ASSUMPTIONS_HOLD,
    COORDINATES,
    absolute_step_configs,
    QUANTITY_COLUMNS,
    ROUNDING_JOIN,
    STABILITY_KEYS,
    BOUND_WEIGHT,
    bound_mean,
    bound_terms,
    estimator_filter,
    fetch_dicts,
    read_rounding_as_zero,
    rounding_scale,
)
from verify.store import fully_measured, left_out_mean
from verify.verdicts.stats import granulated_kendall_tau, trend_verdict

DECREASE, INCREASE = -1, 1
HEAD_BOUNDS = ("theorem_h", "theorem_h_apriori")
FULL_BOUNDS = ("theorem_f",)
INSIDE = "inside the theorem"


@dataclass(frozen=True)
class Assumption:
    """One assumption of a theorem, as a test on a row's coordinates; ``label`` names the runs that
    break it ("outside the theorem: <label>")."""

    label: str
    holds: Callable[[dict], bool]


def _is(column: str, *values) -> Callable[[dict], bool]:
    return lambda row: row[column] in values


BINARY = Assumption("multiclass", lambda row: row["n_classes"] == 2)
SEPARABLE = Assumption("label noise", lambda row: not row["label_noise"])
FULL_BATCH = Assumption("SGD", _is("batch_size", None))
MINIBATCH = Assumption("full-batch GD", lambda row: row["batch_size"] is not None)
ONE_HEAD = Assumption("several heads (MHLoss)", lambda row: (row["n_heads"] or 1) == 1)
EXPONENTIAL_TAILED = Assumption("loss not exponential-tailed", _is("loss", "logistic", "exponential"))
RANDOM_INIT = Assumption("zero init (one seed)", _is("init", "random"))
QUADRATIC = Assumption("network (the quadratic surrogate is not the objective)", _is("kind", "quadratic"))
STEP_BELOW_1_OVER_BETA = Assumption("eta > 1/beta",
                                    lambda row: row["lr_scale"] is not None and row["lr_scale"] <= 1 + 1e-9)
# Theorem H (Lemmas H.1-H.3, Theorem H.5): a linear binary head on separable features, full-batch GD
# on the mean exponential or logistic loss.
THEOREM_H_SCOPE = (BINARY, SEPARABLE, FULL_BATCH, ONE_HEAD, EXPONENTIAL_TAILED)
# Seed spread of random heads on one S: GD over t (H.1, H.3, H.5 on one training set), and SGD at a
# fixed eta*t.
SEED_SPREAD_GD_SCOPE = (BINARY, SEPARABLE, FULL_BATCH, ONE_HEAD, EXPONENTIAL_TAILED, RANDOM_INIT)
SEED_SPREAD_SGD_SCOPE = (BINARY, SEPARABLE, MINIBATCH, ONE_HEAD, EXPONENTIAL_TAILED, RANDOM_INIT)
# Theorem F: full-batch GD on a quadratic objective with eta <= 1/beta.
THEOREM_F_SCOPE = (QUADRATIC, FULL_BATCH, STEP_BELOW_1_OVER_BETA)


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
        Row (dict of coordinates) -> the varied quantity, or None where the row does not take part;
        a quantity made of ``lr_scale`` (a step in units of 1/beta) never takes rows of configs
        whose step is absolute (:meth:`value_of`).
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
    scope : tuple of Assumption
        The theorem's assumptions: the verdict is judged on the rows where all hold; the others are
        reported per first broken assumption.
    tested : str
        What the runs test, in words (which algorithm, what is held fixed).
    theory : str
        Where the statement is proved (a section of docs/theory.md).
    fixed : callable or None
        Row -> a further coordinate the compared rows must share (e.g. eta*t).
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
    scope: tuple[Assumption, ...] = ()
    tested: str = ""
    theory: str = ""
    fixed: Callable[[dict], Hashable] | None = None

    @property
    def in_step_units(self) -> bool:
        """Whether the quantity is a step in the theory's unit 1/beta (``lr_scale``): rows of
        configs with an absolute step (``lr_unit="absolute"``) do not take part."""
        return "lr_scale" in self.varies

    def value_of(self, row: dict) -> float | None:
        """The varied quantity of ``row``, None where the row does not take part."""
        if self.in_step_units and row.get("absolute_step"):
            return None
        return self.quantity(row)

    def scope_of(self, row: dict) -> str:
        """INSIDE, or the label of the first assumption the row breaks."""
        for assumption in self.scope:
            if not assumption.holds(row):
                return f"outside the theorem: {assumption.label}"
        return INSIDE


def _column(name: str) -> Callable[[dict], float | None]:
    return lambda row: None if row[name] is None else float(row[name])


def _margin_over_radius(row: dict) -> float | None:
    if row["margin"] is None or not row["radius"]:
        return None
    return row["margin"] / row["radius"]


def _lr_times_iteration(row: dict) -> float | None:
    return None if row["lr"] is None else row["lr"] * row["iteration"]


def _final_eta_t(row: dict) -> Hashable:
    """eta*t in units of 1/beta, at the last checkpoint only (None elsewhere: not compared)."""
    if row["iteration"] != row["n_steps"] or row["lr_scale"] is None:
        return None
    return float(f"{row['lr_scale'] * row['iteration']:.6g}")


def _final_step_at_fixed_eta_t(row: dict) -> float | None:
    return None if _final_eta_t(row) is None else _column("lr_scale")(row)


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


HEAD_THEORY = "docs/theory.md section 3 (Lemmas H.1-H.3, Theorem H.5)"
FULL_THEORY = "docs/theory.md section 2 (Theorem F and its corollaries)"
SEED_THEORY = "docs/theory.md section 3.5 (Theorem S: seed spread of GD heads on one S)"
SGD_SEED_THEORY = ("docs/theory.md section 3.5 (SGD at a fixed eta*t: measured, not proved; the "
                   "diffusion approximation makes the sampling part O(eta))")
SEED_SPREAD = "head_seed_spread"

COROLLARIES: tuple[Corollary, ...] = (
    Corollary("head_margin", "head", "margin/radius", ("margin", "radius"), _margin_over_radius,
              "head_direction_stability", DECREASE,
              "Theorem H: a larger normalised margin gamma/R stabilises the head direction",
              HEAD_BOUNDS, scope=THEOREM_H_SCOPE, theory=HEAD_THEORY,
              tested="leave-one-out, full-batch GD heads, datasets differing in their margin only"),
    Corollary("head_n_samples", "head", "n_samples", ("n_samples",), _column("n_samples"),
              "head_direction_stability", DECREASE,
              "Theorem H: more samples stabilise the head (the support-vector term is 2 k_SV / n)",
              HEAD_BOUNDS, scope=THEOREM_H_SCOPE, theory=HEAD_THEORY,
              tested="leave-one-out, full-batch GD heads, datasets differing in n only"),
    Corollary("head_iteration", "head", "iteration", ("iteration",), _column("iteration"),
              "head_direction_stability", DECREASE,
              "Theorem H: more iterations stabilise the head (the margin gap e(t) shrinks)",
              HEAD_BOUNDS, scope=THEOREM_H_SCOPE, theory=HEAD_THEORY,
              tested="leave-one-out, full-batch GD heads, checkpoints of one run"),
    Corollary("head_lr", "head", "lr (units of 1/beta)", ("lr_scale",), _column("lr_scale"),
              "head_direction_stability", DECREASE,
              "Theorem H: for full-batch GD the path depends on eta*t, so at a fixed t a larger stable "
              "step is more stable (the claim about small learning rates is about SGD at a fixed "
              "eta*t: head_sgd_step_at_fixed_eta_t)", HEAD_BOUNDS, scope=THEOREM_H_SCOPE,
              theory=HEAD_THEORY,
              tested="leave-one-out, full-batch GD heads, larger step at the same checkpoint t"),
    Corollary("head_seed_iteration", "head", "iteration", ("iteration",), _column("iteration"),
              SEED_SPREAD, DECREASE,
              "More iterations stabilise the head over seeds: on one S the directions of GD heads "
              "from random initialisations converge to the max-margin direction, so their spread "
              "mean_k ||u_k - u_bar||^2 falls with t", (), scope=SEED_SPREAD_GD_SCOPE,
              theory=SEED_THEORY,
              tested="seed spread of full-batch GD heads from random inits, checkpoints of one S"),
    Corollary("head_sgd_step_at_fixed_eta_t", "head", "lr at fixed eta*t (units of 1/beta)",
              ("lr_scale", "n_steps", "iteration"), _final_step_at_fixed_eta_t, SEED_SPREAD, INCREASE,
              "A smaller step at a fixed eta*t stabilises SGD heads over seeds (the small-learning-rate "
              "claim): the seed spread grows with the step", (), scope=SEED_SPREAD_SGD_SCOPE,
              theory=SGD_SEED_THEORY, fixed=_final_eta_t,
              tested="seed spread of SGD heads from random inits, final checkpoints of equal eta*T"),
    Corollary("full_n_samples", "full", "n_samples", ("n_samples",), _column("n_samples"),
              "parameter_stability", DECREASE,
              "Theorem F: more samples stabilise full fine-tuning (rho_i / ((n-1) mu'))",
              FULL_BOUNDS, scope=THEOREM_F_SCOPE, theory=FULL_THEORY,
              tested="leave-one-out, full-batch GD on least squares, datasets differing in n only"),
    Corollary("full_lr_iteration", "full", "lr*iteration", ("lr_scale", "iteration", "n_steps"),
              _lr_times_iteration, "parameter_stability", INCREASE,
              "Theorem F (corrected, docs/theory.md section 9): the instability is 0 at T = 0 and "
              "grows with eta*T towards ||w*_S - w*_S\\i|| <= rho_i / ((n-1) mu'); the first "
              "statement's 'larger eta*T stabilises' holds only for a looser bound, whose D-term decays",
              (), scope=THEOREM_F_SCOPE, theory=FULL_THEORY,
              tested="leave-one-out, full-batch GD on least squares, checkpoints and steps <= 1/beta"),
    Corollary("full_distance", "full", "distance", ("distance",), _column("distance"),
              "parameter_stability", INCREASE,
              "Theorem F: a smaller distance D from the pre-trained weights stabilises (SURT)",
              FULL_BOUNDS, scope=THEOREM_F_SCOPE, theory=FULL_THEORY,
              tested="leave-one-out, full-batch GD on least squares, datasets differing in D only"),
    Corollary("full_l2sp", "full", "l2sp strength", (), _column("strength"),
              "parameter_stability", DECREASE,
              "Theorem F: L2-SP toward w0 raises mu, which stabilises full fine-tuning",
              FULL_BOUNDS, strength_of="l2sp", scope=THEOREM_F_SCOPE, theory=FULL_THEORY,
              tested="leave-one-out, L2-SP strength against plain training (strength 0)"),
    Corollary("full_weight_decay", "full", "weight decay strength", (), _column("strength"),
              "parameter_stability", DECREASE,
              "Theorem F: weight decay raises mu, which stabilises full fine-tuning",
              FULL_BOUNDS, strength_of="weight_decay", scope=THEOREM_F_SCOPE, theory=FULL_THEORY,
              tested="leave-one-out, weight-decay strength against plain training (strength 0)"),
    Corollary("full_lnsr", "full", "noise-stability strength", (), _column("strength"),
              "parameter_stability", DECREASE,
              "Theorem F: a noise-stability (Lipschitz) regulariser shrinks rho, which stabilises "
              "full fine-tuning", FULL_BOUNDS, strength_of="lnsr", scope=THEOREM_F_SCOPE,
              theory=FULL_THEORY,
              tested="leave-one-out, noise-stability strength against plain training (strength 0)"),
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
        ``predicted`` = "decrease" | "increase", ``statement``, ``tested``, ``theory``, ``scope``
        = the assumptions' labels), ``measured`` (the trend of the measured instability on the runs
        inside the theorem), ``outside`` (label -> the trend on the runs that break that
        assumption first; never part of the verdict), ``partial_left_out`` (E_i groups left out
        because their left-out estimate is partial) and ``bounds`` (bound name -> the trend of its
        E_i over the non-vacuous groups inside the theorem, with ``claimed``, ``role`` = "evidence"
        | "consistency check" (a posteriori) | "reference", ``vacuous_groups``, ``groups`` and
        ``carried_by``: the one term that alone varies where every other term is constant, else
        None). A trend holds ``tau``, ``low``, ``high`` (95% bootstrap CI over groups),
        ``n_groups``, ``n_rows`` and ``verdict`` ("pass" | "fail" | "inconclusive" | "no data").
    """
    verdicts = []
    fetched: dict[tuple[str, str], tuple] = {}
    for corollary in corollaries:
        if (corollary.setting, corollary.measure) not in fetched:
            fetched[corollary.setting, corollary.measure] = _fetch(conn, corollary.setting,
                                                                  corollary.measure)
        measured_rows, by_bound, partial = fetched[corollary.setting, corollary.measure]
        split = _split(corollary, measured_rows)
        verdicts.append({
            "name": corollary.name, "setting": corollary.setting, "varied": corollary.varied,
            "measure": corollary.measure,
            "predicted": "decrease" if corollary.predicted_sign == DECREASE else "increase",
            "statement": corollary.statement, "tested": corollary.tested,
            "theory": corollary.theory, "scope": [a.label for a in corollary.scope],
            "measured": _trend(corollary, split.pop(INSIDE, []), series="measured"),
            "outside": {label: _trend(corollary, rows, series=f"measured {label}")
                        for label, rows in sorted(split.items())},
            "partial_left_out": partial,
            "bounds": {bound: _bound_trend(corollary, bound, rows)
                       for bound, rows in sorted(by_bound.items())},
        })
    return verdicts


def _split(corollary: Corollary, rows: list[dict]) -> dict[str, list[dict]]:
    if corollary.strength_of is not None:
        rows = _with_strength(rows, corollary.strength_of)
    split: dict[str, list[dict]] = {}
    for row in rows:
        split.setdefault(corollary.scope_of(row), []).append(row)
    return split


def _fetch(conn: sqlite3.Connection, setting: str, measure: str) -> tuple[list[dict], dict, int]:
    """E_i of the measured column and of each bound's value per run and checkpoint, and how many
    E_i groups were left out because their estimate is partial.

    The seed spread is a property of a task's full-set models at one checkpoint: one row per task
    and checkpoint (the same value on every seed's row), seed set to 0."""
    coordinates = ", ".join(f"r.{column}" for column in COORDINATES + QUANTITY_COLUMNS)
    keys = ", ".join(f"r.{column}" for column in STABILITY_KEYS)
    if measure == SEED_SPREAD:
        rows = fetch_dicts(
            conn, f"SELECT {coordinates}, r.config, MAX(r.{measure}) AS y FROM runs r "
                  "WHERE r.left_out IS NULL "
                  f"AND r.setting = ? AND r.{measure} IS NOT NULL GROUP BY r.task_key, r.iteration",
                  (setting,))
        for row in rows:
            row["seed"] = 0
        return _with_step_unit(conn, _comparable(rows)), {}, 0
    complete, partial_groups = estimator_filter()
    measured_rows = _comparable(fetch_dicts(
        conn, f"SELECT {coordinates}, r.config, {left_out_mean(f'r.{measure}')} AS y, "
              f"MAX({rounding_scale(repr(measure))}) AS rounding_scale FROM runs r {ROUNDING_JOIN} "
              f"WHERE r.left_out IS NOT NULL AND r.setting = ? GROUP BY {keys} "
              f"HAVING {fully_measured(measure)} AND {complete}",
              (setting,)))
    read_rounding_as_zero(measured_rows, "y")
    partial = conn.execute(f"SELECT COUNT(*) FROM ({partial_groups}) WHERE setting = ?",
                           (setting,)).fetchone()[0]
    bound_rows = _comparable(fetch_dicts(
        conn, f"SELECT b.bound, {coordinates}, r.dataset_id, r.config, "
              f"{bound_mean('b.value')} AS y FROM bounds b JOIN runs r USING (run_id) "
              f"WHERE r.setting = ? AND b.measure = ? AND {ASSUMPTIONS_HOLD} AND b.value IS NOT NULL "
              f"GROUP BY b.bound, {keys} HAVING MAX(r.diverged) = 0 AND {complete}",
              (setting, measure)))
    _with_step_unit(conn, measured_rows)
    _with_step_unit(conn, bound_rows)
    by_bound: dict[str, list[dict]] = {}
    term_means: dict[str, _TermMeans] = {}
    for row in bound_rows:
        bound = row["bound"]
        row["terms"] = term_means.setdefault(bound, _TermMeans(conn, setting, measure, bound))
        by_bound.setdefault(bound, []).append(row)
    return measured_rows, by_bound, partial


class _TermMeans:
    """E_i of each term of a bound per group, computed on first use (from the stored constants)
    for the groups asked about only: terms are recomputed in Python, one bound row at a time."""

    def __init__(self, conn: sqlite3.Connection, setting: str, measure: str, bound: str):
        self.conn, self.setting, self.measure, self.bound = conn, setting, measure, bound
        self.cache: dict[tuple, dict[str, float]] = {}

    def of(self, groups: list[dict]) -> list[dict[str, float]]:
        cache = self.cache
        wanted = {_group_key(group) for group in groups} - set(cache)
        definition = BOUNDS.get(self.bound)
        if wanted and definition is not None:
            keys = ", ".join(f"r.{column}" for column in STABILITY_KEYS)
            sums: dict[tuple, dict[str, float]] = {}
            rows = self.conn.execute(
                f"SELECT {keys}, {BOUND_WEIGHT}, b.constants FROM bounds b "
                f"JOIN runs r USING (run_id) WHERE r.setting = ? AND b.measure = ? AND b.bound = ? "
                f"AND {ASSUMPTIONS_HOLD} AND b.value IS NOT NULL", (self.setting, self.measure,
                                                                    self.bound))
            for row in rows:
                key = _group_key(dict(zip(STABILITY_KEYS, row[:len(STABILITY_KEYS)])))
                if key not in wanted:
                    continue
                weight = 1.0 if row[-2] is None else float(row[-2])
                total = sums.setdefault(key, {"": 0.0})
                total[""] += weight
                for name, term in bound_terms(definition, row[-1]).items():
                    total[name] = total.get(name, 0.0) + weight * term
            for key, total in sums.items():
                weight = total.pop("")
                cache[key] = {name: value / weight for name, value in total.items()}
        return [cache.get(_group_key(group), {}) for group in groups]


def _group_key(row: dict) -> tuple:
    return tuple(float(f"{row[c]:.12g}") if isinstance(row[c], float) else row[c]
                 for c in STABILITY_KEYS)


def _trend(corollary: Corollary, rows: list[dict], *, series: str) -> dict:
    """The granulated tau of ``rows``, with ``rounding_level``: how many of the compared E_i were
    at rounding level (read as 0, ``verify.verdicts.db.at_rounding_level``)."""
    quantity, measure, keys, used = _series(corollary, rows, lambda row: row["y"])
    result = granulated_kendall_tau(np.asarray(quantity), np.asarray(measure), keys,
                                    random_state=run_seed("verdicts", corollary.name, series))
    if result is None:
        return {"tau": None, "low": None, "high": None, "n_groups": 0, "n_rows": 0,
                "rounding_level": 0, "verdict": "no data"}
    values: dict[Hashable, set[float]] = {}
    for key, x in zip(keys, quantity):
        values.setdefault(key, set()).add(x)
    rounding = sum(1 for key, row in zip(keys, used)
                   if len(values[key]) >= 2 and row.get("at_rounding_level"))
    return {"tau": result.tau.value, "low": result.tau.low, "high": result.tau.high,
            "n_groups": int(result.group_taus.size), "n_rows": int(result.group_sizes.sum()),
            "rounding_level": rounding, "verdict": trend_verdict(result.tau, corollary.predicted_sign)}


def _series(corollary: Corollary, rows: list[dict], value: Callable[[dict], float | None]):
    """``(quantity, measure, keys, used)``: the varied quantity, the value and the group key of
    every row that takes part, and those rows."""
    coordinates_of = operator.itemgetter(*(column for column in COORDINATES
                                           if column not in corollary.varies))
    quantity, measure, keys, used = [], [], [], []
    for row in rows:
        x, y = corollary.value_of(row), value(row)
        if x is None or y is None:
            continue
        key = coordinates_of(row)
        if corollary.fixed is not None:
            fixed = corollary.fixed(row)
            if fixed is None:
                continue
            key = (key, fixed)
        quantity.append(x)
        measure.append(y)
        keys.append(key)
        used.append(row)
    return quantity, measure, keys, used


def _bound_trend(corollary: Corollary, bound: str, rows: list[dict]) -> dict:
    """The trend of a bound's E_i inside the theorem, over its non-vacuous groups only."""
    definition = BOUNDS.get(bound)
    inside = _split(corollary, rows).get(INSIDE, [])
    useful = [row for row in inside
              if row["y"] is not None and not (definition and definition.is_vacuous(row["y"]))]
    role = ("consistency check" if definition is not None and definition.a_posteriori
            else "evidence" if bound in corollary.claimed_by else "reference")
    return {**_trend(corollary, useful, series=bound), "claimed": bound in corollary.claimed_by,
            "role": role, "groups": len(inside), "vacuous_groups": len(inside) - len(useful),
            "carried_by": _carried_by(corollary, useful)}


def _carried_by(corollary: Corollary, rows: list[dict]) -> str | None:
    """The one term whose E_i varies with the quantity where every other term is constant (to
    1e-12, relative) in every compared group; None when two or more terms vary, or none does."""
    quantity, _, _, _ = _series(corollary, rows, lambda row: row["y"])
    if not rows or not quantity:
        return None
    terms = rows[0]["terms"].of(rows)
    rows = [{**row, "terms": t} for row, t in zip(rows, terms) if t]
    if not rows:
        return None
    names = sorted(rows[0]["terms"])
    varying = []
    for name in names:
        _, values, keys, _ = _series(corollary, rows, lambda row: row["terms"].get(name))
        spread: dict[Hashable, tuple[float, float]] = {}
        for key, value in zip(keys, values):
            low, high = spread.get(key, (value, value))
            spread[key] = (min(low, value), max(high, value))
        if any(high - low > 1e-12 * max(1.0, abs(high)) for low, high in spread.values()):
            varying.append(name)
    return varying[0] if len(varying) == 1 and len(names) > 1 else None


def _with_step_unit(conn: sqlite3.Connection, rows: list[dict]) -> list[dict]:
    """Mark the rows of configs whose step is absolute (``absolute_step``)."""
    absolute = absolute_step_configs(conn)
    for row in rows:
        row["absolute_step"] = row["config"] in absolute
    return rows


def _comparable(rows: list[dict]) -> list[dict]:
    """Round float coordinates to 12 significant digits, so equal settings stored twice compare
    equal when rows are grouped."""
    for row in rows:
        for column in COORDINATES:
            if isinstance(row[column], float):
                row[column] = float(f"{row[column]:.12g}")
    return rows
