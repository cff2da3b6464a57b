"""Read a results database (docs/internals.md §3, "Results schema") into small column tables.

Only SQL on the documented schema is used. Two kinds of unit come out of here:

* a **left-out unit** is one trained configuration ``(dataset_id, config, stabiliser,
  stabiliser_params, seed, iteration)`` with its stability averaged over the left-out rows, E_i
  weighted by ``left_out_weight`` (left-out samples are drawn support vectors first; the weights
  make the estimate unbiased for the mean over S; ``verify.store.left_out_mean``, as in the
  verdicts), the matching bound averaged the same way, and the run's descriptive columns;
* a **full unit** is the row of the model trained on all of S (``left_out IS NULL``) for the same key.

Unless asked otherwise, only the final checkpoint of every task is read (``iteration`` equal to the
task's largest iteration). Figures that run out of data raise :class:`MissingData`; the runner turns
that into a one-line "skipped" note.
"""
from __future__ import annotations

import json
import math
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import stats

from verify.seeding import run_seed
from verify.store import fully_measured, left_out_mean, partial_estimate
from verify.store import open_results as store_open_results
from verify.verdicts.stabilisers import config_inits, task_family

UNIT_KEYS = ("dataset_id", "config", "stabiliser", "stabiliser_params", "seed", "iteration")
DESCRIPTIVE_COLUMNS = (
    "kind", "n_samples", "n_features", "n_classes", "margin", "radius", "label_noise", "distance",
    "n_support", "setting", "loss", "init", "lr", "lr_scale", "n_steps", "batch_size", "n_heads",
)
FULL_RUN_COLUMNS = (
    "train_loss", "test_loss", "test_accuracy", "majority_accuracy", "direction_error",
    "normalised_margin", "distance_from_init", "diverged",
)
# Full-set measures a figure reads only where it needs them.
OPTIONAL_RUN_COLUMNS = ("predicted_direction_error", "predictor_relative_error", "feature_margin",
                        "head_seed_spread", "distance_from_start")
# Training knobs that a figure holds fixed unless it plots them; ``lr_key`` is the learning-rate
# knob as configured (``lr_scale`` = η·β̂ where the config uses one, else the absolute rate).
KNOBS = ("n_classes", "label_noise", "loss", "init", "lr_key", "n_steps", "batch_size", "n_heads")
KNOB_LABEL = {"n_classes": "classes", "label_noise": "label noise", "loss": "loss", "init": "init",
              "lr_key": "η·β̂", "n_steps": "T", "batch_size": "batch", "n_heads": "heads"}
# Tie-breakers between equally common knob values: the setting the theorems state (binary,
# noiseless, full-batch GD with one head at η = 1/β).
PREFERRED = {"n_classes": 2, "label_noise": 0.0, "lr_key": 1.0, "batch_size": None, "n_heads": 1}

# The measure and bound each setting is judged by in the figures.
SETTING_MEASURE = {"head": "head_direction_stability", "full": "parameter_stability"}
SETTING_BOUND = {"head": "theorem_h", "full": "theorem_f"}
MEASURE_LABEL = {
    "head_direction_stability": r"$\mathbb{E}_i\,\|u_S - u_{S\setminus i}\|$",
    "parameter_stability": r"$\mathbb{E}_i\,\|w_S - w_{S\setminus i}\|$",
    "pointwise_hypothesis_stability": r"$\mathbb{E}_i\,|\ell(A_S; z_i) - \ell(A_{S\setminus i}; z_i)|$",
}
LOO_MEASURES = tuple(MEASURE_LABEL)

# Below this a measured stability is rounding noise: A(S) = A(S\\i) in exact arithmetic (e.g.
# noise-free least squares, where both reach the teacher); on log axes it would set the range.
NUMERICAL_ZERO = 1e-12

CONFIDENCE = 0.95
N_RESAMPLES = 1000


class MissingData(Exception):
    """The results hold no rows for a figure; the message says what would produce them."""


def open_results(source: str | Path) -> sqlite3.Connection:
    """Open a results folder (or its ``results.sqlite``) read-only through the store's read API
    (``verify.store.open_results``, which checks the file); ValueError in one line otherwise."""
    return store_open_results(source).connection


@dataclass(frozen=True)
class Frame:
    """Named columns of equal length: float arrays (NULL -> NaN) or object arrays of text."""

    columns: dict[str, np.ndarray]

    def __len__(self) -> int:
        return len(next(iter(self.columns.values()))) if self.columns else 0

    def __getitem__(self, name: str) -> np.ndarray:
        return self.columns[name]

    def __contains__(self, name: str) -> bool:
        return name in self.columns

    def filter(self, mask: np.ndarray) -> Frame:
        """Rows where ``mask`` is true."""
        return Frame({name: values[mask] for name, values in self.columns.items()})

    def with_column(self, name: str, values: np.ndarray) -> Frame:
        """A copy with ``name`` set to ``values``."""
        return Frame({**self.columns, name: np.asarray(values)})

    def groups(self, *keys: str) -> Iterator[tuple[tuple, Frame]]:
        """Yield ``(key values, sub-frame)`` for each distinct combination of ``keys``, sorted."""
        rows = list(zip(*(self.columns[key].tolist() for key in keys)))
        index: dict[tuple, list[int]] = {}
        for position, row in enumerate(rows):
            index.setdefault(tuple(_normalise(value) for value in row), []).append(position)
        for key in sorted(index, key=lambda row: tuple(_sort_key(value) for value in row)):
            yield key, self.filter(np.asarray(index[key]))


def _normalise(value):
    return None if isinstance(value, float) and math.isnan(value) else value


def _sort_key(value):
    if value is None:
        return (0, 0.0, "")
    if isinstance(value, (int, float)):
        return (1, float(value), "")
    return (2, 0.0, str(value))


def _frame_from_cursor(cursor: sqlite3.Cursor) -> Frame:
    names = [description[0] for description in cursor.description]
    rows = cursor.fetchall()
    columns = {}
    for position, name in enumerate(names):
        values = [row[position] for row in rows]
        if all(value is None or isinstance(value, (int, float)) for value in values):
            columns[name] = np.array([np.nan if value is None else value for value in values],
                                     dtype=np.float64)
        else:
            columns[name] = np.array(values, dtype=object)
    return Frame(columns)


def _final_join(final_only: bool) -> str:
    if not final_only:
        return ""
    return ("JOIN (SELECT task_key, MAX(iteration) AS last_iteration FROM runs GROUP BY task_key) "
            "AS final ON final.task_key = r.task_key AND r.iteration = final.last_iteration")


def _descriptive_sql() -> str:
    described = ", ".join(f"MIN(r.{column}) AS {column}" for column in DESCRIPTIVE_COLUMNS)
    return described + ", COALESCE(MIN(r.lr_scale), MIN(r.lr)) AS lr_key"


def _json_number(column: str, key: str) -> str:
    """SQL for the number at ``key`` of a JSON column (standard JSON: ±inf is ±1e999), NULL when absent."""
    return f"json_extract({column}, '$.{key}')"


def loo_units(connection: sqlite3.Connection, *, measure: str, bound: str | None = None,
              constants: Sequence[str] = (), where: str = "1", params: Sequence = (),
              final_only: bool = True) -> Frame:
    """Left-out units: E_i of ``measure`` (and of ``bound``) per trained configuration.

    Parameters
    ----------
    connection : sqlite3.Connection
    measure : str
        One of the left-out stability columns of ``runs``.
    bound : str, optional
        Name of a bound in the ``bounds`` table; adds ``bound`` (E_i of its value), ``bound_holds``
        (1 when every left-out row has a bound row whose assumptions all hold and whose value is
        finite, else 0) and one ``constant_<name>`` column per entry of ``constants`` (E_i of that
        key of the bound's constants JSON).
    constants : sequence of str
        Keys of the bound's constants to average.
    where : str
        An extra SQL condition on ``runs`` rows (alias ``r``), with ``?`` placeholders.
    params : sequence
        Values for the placeholders of ``where``.
    final_only : bool
        Read only each task's last checkpoint.

    Returns
    -------
    Frame
        One row per unit, keyed by :data:`UNIT_KEYS`, with :data:`DESCRIPTIVE_COLUMNS`, ``lr_key``,
        ``measured``, ``n_left_out``, ``diverged`` (1 if any left-out model of the unit diverged)
        and ``complete`` (1 where the verdicts' estimator rule keeps the unit's E_i group of
        ``measure``: its left-out estimate is not partial, ``verify.store.partial_estimate``, and
        every left-out model measured it, ``verify.store.fully_measured``; 0 where ``measured``
        is the mean over a stratum, e.g. the left-out models that stayed stable).
    """
    if measure not in LOO_MEASURES + FULL_RUN_COLUMNS:
        raise ValueError(f"measure must be one of {', '.join(LOO_MEASURES + FULL_RUN_COLUMNS)}; "
                         f"got {measure!r}")
    for name in constants:
        if not name.isidentifier():
            raise ValueError(f"constants must be identifiers; got {name!r}")
    keys = ", ".join(f"r.{key}" for key in UNIT_KEYS)
    mean = left_out_mean
    bound_sql, bound_join, bound_params = "", "", []
    if bound is not None:
        bound_sql = (f", {mean('b.value')} AS bound, "
                     "MIN(CASE WHEN b.value IS NOT NULL AND b.violated = '[]' "
                     "AND ABS(b.value) < 9e307 THEN 1 ELSE 0 END) AS bound_holds")
        for name in constants:
            bound_sql += f", {mean(_json_number('b.constants', name))} AS constant_{name}"
        bound_join = "LEFT JOIN bounds AS b ON b.run_id = r.run_id AND b.bound = ?"
        bound_params = [bound]
    sql = (f"SELECT {keys}, {_descriptive_sql()}, {mean(f'r.{measure}')} AS measured, "
           f"COUNT(r.{measure}) AS n_left_out, MAX(r.diverged) AS diverged, "
           f"(NOT {partial_estimate('r')} AND {fully_measured(measure)}) AS complete{bound_sql} "
           f"FROM runs AS r {_final_join(final_only)} {bound_join} "
           f"WHERE r.left_out IS NOT NULL AND ({where}) GROUP BY {keys}")
    return _frame_from_cursor(connection.execute(sql, [*bound_params, *params]))


def kept_by_estimator(units: Frame) -> np.ndarray:
    """Units whose E_i the verdicts' estimator rule keeps: no model diverged and, for left-out units
    (:func:`loo_units`), ``complete`` (the estimate is not partial and every left-out model measured
    it). A unit without a ``complete`` column (a model trained on S) is kept unless it diverged."""
    kept = ~(units["diverged"] == 1)
    if "complete" in units:
        kept &= units["complete"] == 1
    return kept


def on_matched_seeds(units: Frame, *, keys: Sequence[str] = ("dataset_id", "config", "seed",
                                                             "iteration")) -> tuple[Frame, int]:
    """The units kept by :func:`kept_by_estimator` on the seeds every variant kept.

    Units sharing ``keys`` (one seed of one dataset and config at one checkpoint, under each
    stabiliser variant) form a matched set: where the estimator rule drops any of them, the whole
    set is dropped, so a variant whose left-out models diverge on its unstable seeds is not compared
    on its calm seeds with the others on all of theirs (the rule of the paired verdicts).

    Returns
    -------
    Frame
        The units of the fully kept sets.
    int
        How many units were dropped (by the rule, or as the partners of a dropped unit).
    """
    sets = list(zip(*(units[name].tolist() for name in keys)))
    dropped = {key for key, keep in zip(sets, kept_by_estimator(units)) if not keep}
    matched = np.array([key not in dropped for key in sets], dtype=bool)
    return units.filter(matched), int((~matched).sum())


def full_units(connection: sqlite3.Connection, *, where: str = "1", params: Sequence = (),
               final_only: bool = True, optional: Sequence[str] = ()) -> Frame:
    """Full units: the models trained on all of S, one row per :data:`UNIT_KEYS`.

    Columns: :data:`UNIT_KEYS`, :data:`DESCRIPTIVE_COLUMNS`, ``lr_key``,
    :data:`FULL_RUN_COLUMNS` and each of ``optional`` (among :data:`OPTIONAL_RUN_COLUMNS`). ``where`` and ``params`` are as in :func:`loo_units`.
    """
    unknown = [name for name in optional if name not in OPTIONAL_RUN_COLUMNS]
    if unknown:
        raise ValueError(f"optional must be among {', '.join(OPTIONAL_RUN_COLUMNS)}; "
                         f"got {', '.join(map(repr, unknown))}")
    keys = ", ".join(f"r.{key}" for key in UNIT_KEYS)
    measured = ", ".join(
        [f"MIN(r.{column}) AS {column}" for column in FULL_RUN_COLUMNS]
        + [f"MIN(r.{column}) AS {column}" for column in optional])
    sql = (f"SELECT {keys}, {_descriptive_sql()}, {measured} "
           f"FROM runs AS r {_final_join(final_only)} "
           f"WHERE r.left_out IS NULL AND ({where}) GROUP BY {keys}")
    return _frame_from_cursor(connection.execute(sql, list(params)))


def at_reference(frame: Frame, *, vary: Iterable[str] = ()) -> tuple[Frame, dict[str, object]]:
    """Hold every training knob not in ``vary`` at a reference value.

    A figure that plots stability against one knob must not average over others (a learning-rate
    sweep would blur a margin curve). Each knob of :data:`KNOBS` that is not in ``vary`` is fixed, in
    order, at the value shared by most units; ties go to the :data:`PREFERRED` value, else to the
    smallest.

    Returns
    -------
    frame : Frame
        The units at the reference setting.
    chosen : dict
        Knob -> value, only for knobs that had more than one value (where a choice was made); pass
        it to :func:`restrict` to select the same setting from another frame.
    """
    chosen: dict[str, object] = {}
    for knob in KNOBS:
        if knob in vary or knob not in frame or len(frame) == 0:
            continue
        counts = [(len(group), key[0]) for key, group in frame.groups(knob)]
        if len(counts) < 2:
            continue
        best = max(count for count, _ in counts)
        tied = [value for count, value in counts if count == best]
        chosen[knob] = PREFERRED[knob] if knob in PREFERRED and PREFERRED[knob] in tied else tied[0]
        frame = restrict(frame, {knob: chosen[knob]})
    return frame, chosen


def at_reference_within(frame: Frame, column: str, *,
                        vary: Iterable[str] = ()) -> tuple[Frame, dict[object, dict[str, object]]]:
    """:func:`at_reference` separately for each value of ``column`` (e.g. per dataset kind).

    Returns the concatenated units and, per value of ``column``, the knobs that were fixed.
    """
    parts, chosen = [], {}
    for (value,), group in frame.groups(column):
        kept, chosen[value] = at_reference(group, vary=vary)
        parts.append(kept)
    if not parts:
        return frame, chosen
    return Frame({name: np.concatenate([part[name] for part in parts])
                  for name in frame.columns}), chosen


def describe_references(chosen: dict[object, dict[str, object]]) -> str:
    """:func:`describe_reference` for each group, e.g. ``"quadratic at T = 100; mlp at ..."``."""
    return "; ".join(f"{value} {describe_reference(knobs)}" for value, knobs in chosen.items()
                     if knobs)


def restrict(frame: Frame, values: dict[str, object]) -> Frame:
    """Rows whose columns equal ``values`` (``None`` matches NULL)."""
    mask = np.ones(len(frame), dtype=bool)
    for name, value in values.items():
        mask &= np.array([_normalise(item) == value for item in frame[name].tolist()], dtype=bool)
    return frame.filter(mask)


def last_checkpoints(frame: Frame) -> Frame:
    """The units at their task's last checkpoint (a frame read with ``final_only=False``)."""
    keep = np.zeros(len(frame), dtype=bool)
    positions = np.arange(len(frame))
    frame = frame.with_column("_position", positions)
    for _, group in frame.groups("dataset_id", "config", "stabiliser", "stabiliser_params"):
        keep[group["_position"][group["iteration"] == group["iteration"].max()].astype(int)] = True
    return Frame({name: values[keep] for name, values in frame.columns.items() if name != "_position"})


def swept(frame: Frame, column: str) -> Frame:
    """Units of the datasets that were run at two or more values of ``column``.

    A curve against a training knob must compare the same datasets at every x, or the mix of
    datasets changes along the curve.
    """
    keep = np.zeros(len(frame), dtype=bool)
    datasets = frame["dataset_id"]
    for (dataset_id,), group in frame.groups("dataset_id"):
        values = group[column]
        if np.unique(values[np.isfinite(values)]).size >= 2:
            keep |= datasets == dataset_id
    return frame.filter(keep)


def describe_reference(chosen: dict[str, object]) -> str:
    """A short text such as ``"at η·β̂ = 0.5, T = 1000"`` for titles ("" when nothing chosen)."""
    if not chosen:
        return ""
    parts = ["full batch" if knob == "batch_size" and value is None
             else f"{KNOB_LABEL[knob]} = {_format_value(value)}" for knob, value in chosen.items()]
    return "at " + ", ".join(parts)


def _format_value(value) -> str:
    if value is None:
        return "none"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


@dataclass(frozen=True)
class Summary:
    """Mean of a set of units with a percentile-bootstrap confidence interval."""

    mean: float
    low: float
    high: float
    n: int


def summarise(values: np.ndarray, *, key: Sequence) -> Summary:
    """Mean and 95% percentile-bootstrap CI of the finite entries of ``values``.

    The bootstrap's random stream is ``run_seed("figures", *key)``, so the interval of a point does
    not depend on which other points are drawn. With one unit the interval is that unit's value.
    """
    finite = np.asarray(values, dtype=np.float64)
    finite = finite[np.isfinite(finite)]
    if finite.size == 0:
        return Summary(np.nan, np.nan, np.nan, 0)
    mean = float(finite.mean())
    if finite.size == 1 or np.ptp(finite) == 0.0:
        return Summary(mean, mean, mean, int(finite.size))
    result = stats.bootstrap((finite,), np.mean, confidence_level=CONFIDENCE,
                             n_resamples=N_RESAMPLES, method="percentile", vectorized=True,
                             random_state=np.random.default_rng(run_seed("figures", *key)))
    interval = result.confidence_interval
    return Summary(mean, float(interval.low), float(interval.high), int(finite.size))


def with_stabiliser_label(frame: Frame) -> Frame:
    """``frame`` with a ``label`` column naming each row's stabiliser and parameters."""
    labels = [stabiliser_label(name, params)
              for name, params in zip(frame["stabiliser"], frame["stabiliser_params"])]
    return frame.with_column("label", np.array(labels, dtype=object))


def with_family(connection: sqlite3.Connection, frame: Frame) -> Frame:
    """``frame`` with a ``family`` column: each row's task family, keyed as the paired stabiliser
    verdicts key it (:func:`verify.verdicts.stabilisers.task_family`: the kind, and for the deep
    tasks their teacher, the random-direction one labelled "null control"), so that a figure's
    groups are the verdicts' families."""
    cards = {dataset_id: json.loads(card) if card else None
             for dataset_id, card in connection.execute("SELECT dataset_id, card FROM datasets")}
    inits = config_inits(connection)
    return frame.with_column("family", np.array(
        [task_family(kind, cards.get(dataset_id), inits.get(config))
         for kind, dataset_id, config in zip(frame["kind"], frame["dataset_id"], frame["config"])],
        dtype=object))


def compared_datasets(frame: Frame) -> Frame:
    """Rows of the datasets on which two or more stabiliser variants (``label``) were run."""
    keep = np.zeros(len(frame), dtype=bool)
    for (dataset_id,), runs in frame.groups("dataset_id"):
        if np.unique(runs["label"]).size >= 2:
            keep |= frame["dataset_id"] == dataset_id
    return frame.filter(keep)


def stabiliser_label(name: str, params_json: str | None) -> str:
    """``"l2sp(strength=0.1)"`` from a stabiliser name and its JSON parameters."""
    params = json.loads(params_json) if params_json else {}
    if not params:
        return str(name)
    inner = ", ".join(f"{key}={_format_value(value)}" for key, value in sorted(params.items()))
    return f"{name}({inner})"
