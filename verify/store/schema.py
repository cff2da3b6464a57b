"""The results schema, written once as data: every table, column, type and meaning of ``results.sqlite``.

The SQL that creates a results file (:func:`ddl`), the checks that refuse a file which is not one
(``verify.store.checks``), the column lists the writer and readers use, and the column tables of
``docs/results-schema.md`` (:func:`markdown_tables`; a test keeps the page equal to them) all come
from here. A change of schema bumps :data:`SCHEMA_VERSION`; files of another version are refused.
"""
from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from pathlib import Path

# 1: the first release. 2: runs columns feature_margin, predicted_direction_error,
# predictor_relative_error. 3: how each left-out row enters E_i (estimator, strata used, standard
# errors, bound_weight) and the head direction's seed spread on full-set rows. 4: the start measures
# (distance_from_start, teacher distances). 5: validation_accuracy (a config's validation split).
# 6: stored weights (tasks.weights, DIR/weights/), bounds evaluated apart from training
# (bound_evaluations), standard JSON in every JSON column (no NaN/Infinity). 7: the encoder's
# fine-tuning move (encoder_distance_from_start). 8: run_id is the task's hash and the row's rank
# (a task's rows adjacent in the file; was a hash per row).
SCHEMA_VERSION = 8
RESULTS_FILE = "results.sqlite"
TYPES = ("INTEGER", "REAL", "TEXT")


@dataclass(frozen=True)
class Column:
    """One column: its SQL type, what it means, and (runs only) which group of columns it is in.

    ``json`` names the JSON value a TEXT column holds (``"object"`` or ``"list"``), else None.
    """

    name: str
    type: str
    description: str
    group: str = ""
    json: str | None = None

    def __post_init__(self) -> None:
        if self.type not in TYPES:
            raise ValueError(f"type: must be one of {TYPES}, got {self.type!r}")


@dataclass(frozen=True)
class Table:
    """One table: its columns in order, primary key and the extra SQL constraints it declares."""

    name: str
    description: str
    columns: tuple[Column, ...]
    primary_key: tuple[str, ...]
    constraints: tuple[str, ...] = ()

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(column.name for column in self.columns)

    def column(self, name: str) -> Column:
        return next(column for column in self.columns if column.name == name)

    def group(self, group: str) -> tuple[str, ...]:
        """Names of the columns of one group, in table order."""
        return tuple(column.name for column in self.columns if column.group == group)

    def json_columns(self) -> tuple[str, ...]:
        return tuple(column.name for column in self.columns if column.json is not None)

    def ddl(self) -> str:
        if len(self.primary_key) == 1:
            key = self.primary_key[0]
            definitions = [f"{c.name} {c.type}{' PRIMARY KEY' if c.name == key else ''}"
                           for c in self.columns]
        else:
            definitions = [f"{c.name} {c.type}" for c in self.columns]
            definitions.append(f"PRIMARY KEY ({', '.join(self.primary_key)})")
        return f"CREATE TABLE {self.name} ({', '.join([*definitions, *self.constraints])});"


def _c(name: str, type_: str, description: str, group: str = "", json: str | None = None) -> Column:
    return Column(name, type_, description, group, json)


META = Table("meta", "Key/value facts about the sweep (below).", (
    _c("key", "TEXT", "`schema_version`, `n_seeds`, `configs`"),
    _c("value", "TEXT", "its value (`configs`: JSON object of config definitions)"),
), ("key",))

DATASETS = Table("datasets", "One row per dataset.", (
    _c("dataset_id", "TEXT", "stable id (`<kind>-<hash of generator and parameters>`)"),
    _c("kind", "TEXT", "`separable`, `quadratic`, `mlp`, or a real kind (`real-text`, `real-digits`)"),
    _c("card", "TEXT", "the dataset card: parameters, seed, certified properties", json="object"),
), ("dataset_id",))

TASKS = Table("tasks", "One row per task (dataset × config × stabiliser with its parameters).", (
    _c("task_key", "TEXT", "`dataset_id|config|stabiliser|stabiliser_params`"),
    _c("dataset_id", "TEXT", "the task's dataset"),
    _c("config", "TEXT", "the training config's name (`meta.configs` holds its definition)"),
    _c("stabiliser", "TEXT", "`none` for plain training"),
    _c("stabiliser_params", "TEXT", "the stabiliser's parameters, keys sorted (`{}` for `none`)",
       json="object"),
    _c("seeds", "TEXT", "seed indices (deterministic tasks train seed 0 only; MHLoss on a zero-init "
       "head config is random, so it trains every seed)", json="list"),
    _c("status", "TEXT", "`done` or `failed` (a failed task has no rows in `runs`)"),
    _c("error", "TEXT", "the traceback of a failed task, else NULL"),
    _c("seconds", "REAL", "wall time of the task in its worker"),
    _c("finished_at", "TEXT", "UTC time the parent recorded it"),
    _c("weights", "TEXT", "sha256 (hex) of the task's weights file `weights/<sha256>.npz` beside "
       "`results.sqlite` (every model at every checkpoint, docs/results-schema.md \"Stored "
       "weights\"); NULL for failed tasks and real-model tasks"),
), ("task_key",), ("CHECK (status IN ('done', 'failed'))",))

RUN_GROUPS = {
    "key": "Keys",
    "dataset": "Dataset card fields (NULL where they do not apply)",
    "training": "Training",
    "left_out": "Measured on left-out rows only (NULL on full-set rows, and NULL when either model "
                "diverged), each comparing A(S\\i) with A(S) of the same seed at the same iteration",
    "left_out_estimate": "How a left-out row enters E_i (NULL on full-set rows; "
                         "`verify.run.layout.LeftOutPlan`)",
    "row": "Measured on every row",
    "full_set": "Measured on full-set rows only (`left_out` NULL; NULL on every other row and on "
                "diverged models)",
    "start": "Start measures (every row, NULL on diverged models): where training began, after a "
             "stabiliser's stage (SURT's re-training, a re-initialisation), against the pre-trained "
             "weights w0 and the task's teacher backbone θ* (MLP tasks with `teacher.encoder.*` "
             "arrays; the teacher columns are NULL elsewhere). Teacher distances are over the encoder "
             "weights",
}

RUNS = Table("runs", "One row per trained model and checkpoint.", (
    _c("run_id", "INTEGER", "the task's 40-bit hash times 2^23 plus the row's rank among the task's "
       "rows in (seed, left_out with the full set first, iteration) order (`verify.run.task.run_ids`): "
       "the same for every worker count and order, and a task's rows are adjacent in the file", "key"),
    _c("task_key", "TEXT", "the task (`tasks.task_key`)", "key"),
    _c("dataset_id", "TEXT", "the dataset (`datasets.dataset_id`)", "key"),
    _c("seed", "INTEGER", "seed index (the model's random seed is derived from the task's "
       "coordinates and this)", "key"),
    _c("left_out", "INTEGER", "the index i of S\\i; NULL = the model trained on all of S", "key"),
    _c("left_out_support", "INTEGER", "left-out rows: 1 if z_i is a support vector of the dataset's "
       "certificate, else 0 (always 0 where the dataset has no certificate); NULL on full-set rows",
       "key"),
    _c("left_out_weight", "REAL", "left-out rows: weight of this left-out model in E_i: the left-out "
       "samples are every sample of S (`exact`) or a stratified random sample without replacement "
       "(strata: support vectors / the others; each non-empty stratum gets at least 2 of the budget, "
       "the rest in proportion to the strata's sizes); each stratum gets its share of S split evenly "
       "over its sampled members, and the weights of one seed and iteration sum to 1; NULL on "
       "full-set rows", "key"),
    _c("iteration", "INTEGER", "checkpoint t (log-spaced, last = `n_steps`)", "key"),
    _c("kind", "TEXT", "the dataset's kind", "dataset"),
    _c("n_samples", "INTEGER", "n, the size of S", "dataset"),
    _c("n_features", "INTEGER", "d", "dataset"),
    _c("n_classes", "INTEGER", "classes (0 for regression)", "dataset"),
    _c("margin", "REAL", "certified margin γ", "dataset"),
    _c("radius", "REAL", "R = max ‖x‖", "dataset"),
    _c("label_noise", "REAL", "share of flipped labels", "dataset"),
    _c("distance", "REAL", "δ, the distance of the target from the pre-trained weights", "dataset"),
    _c("n_support", "INTEGER", "number of certified support vectors", "dataset"),
    _c("setting", "TEXT", "`head`: linear head on fixed features; `full`: every weight trained",
       "training"),
    _c("config", "TEXT", "the training config", "training"),
    _c("loss", "TEXT", "the loss actually trained (`logistic` becomes `softmax` on multiclass data)",
       "training"),
    _c("init", "TEXT", "`zero`, `random`, `pretrained`: the initialisation actually used (MHLoss on "
       "a `zero` head config trains `random` heads, since identical zero heads would stay identical)",
       "training"),
    _c("lr", "REAL", "η actually used", "training"),
    _c("lr_scale", "REAL", "η in units of 1/β̂, β̂ the largest smoothness over the task's training "
       "sets", "training"),
    _c("n_steps", "INTEGER", "T actually used", "training"),
    _c("batch_size", "INTEGER", "minibatch size; NULL = full-batch GD", "training"),
    _c("n_heads", "INTEGER", "heads trained at once (MHLoss), else 1", "training"),
    _c("stabiliser", "TEXT", "`none` when plain", "training"),
    _c("stabiliser_params", "TEXT", "the stabiliser's parameters, keys sorted", "training",
       json="object"),
    _c("parameter_stability", "REAL", "‖w_S − w_{S\\i}‖ (all weights, flat)", "left_out"),
    _c("head_direction_stability", "REAL", "‖w_S/‖w_S‖ − w_{S\\i}/‖w_{S\\i}‖‖ over the linear "
       "head's weights", "left_out"),
    _c("pointwise_hypothesis_stability", "REAL", "|ℓ(A(S); z_i) − ℓ(A(S\\i); z_i)|", "left_out"),
    _c("left_out_estimator", "TEXT", "`exact` (every sample left out: E_i is the mean over S), "
       "`stratified` (every non-empty stratum sampled: `SUM(left_out_weight * m)` is unbiased for "
       "E_i) or `partial` (the budget is below the number of strata, some stratum has no left-out "
       "sample: not an estimate of E_i; the verdicts leave such groups out and count them)",
       "left_out_estimate"),
    _c("left_out_n_support", "INTEGER", "how many support vectors of S the task left out per seed",
       "left_out_estimate"),
    _c("left_out_n_other", "INTEGER", "how many other samples of S the task left out per seed",
       "left_out_estimate"),
    _c("bound_weight", "REAL", "rows whose model the bounds are evaluated on: its weight in the E_i "
       "of a bound's value (the bounded models are a stratified sub-sample of the left-out ones, "
       "`bound_left_out` of the config: head configs leave out every sample but bound 16 per seed; "
       "the task's weights file records the choice, so `ftstab bounds` evaluates the same models); "
       "NULL where not bounded", "left_out_estimate"),
    *(_c(f"{measure}_se", "REAL", f"standard error of the task's E_i of `{measure}` for this seed and "
         "checkpoint (the same on every left-out row of the group): the stratified-sampling SE with "
         "the finite-population correction, SE² = Σ_h (N_h/N)² (1 − n_h/N_h) s_h²/n_h; 0 where E_i "
         "is exact; NULL where it is undefined (partial, one sample out of a larger stratum, or a "
         "NaN measure)", "left_out_estimate")
      for measure in ("parameter_stability", "head_direction_stability",
                      "pointwise_hypothesis_stability")),
    _c("train_loss", "REAL", "the training objective on the model's own samples (penalties "
       "included); for a model of several heads (MHLoss), the training loss of its prediction (the "
       "mean logit over the heads)", "row"),
    _c("test_loss", "REAL", "loss on the dataset's held-out set", "row"),
    _c("test_accuracy", "REAL", "accuracy on the held-out set (NULL for regression)", "row"),
    _c("majority_accuracy", "REAL", "accuracy of always predicting the most frequent held-out class",
       "row"),
    _c("direction_error", "REAL", "‖u − u*‖, u the unit head, u* the certified max-margin direction "
       "(head setting)", "row"),
    _c("normalised_margin", "REAL", "min over the model's training samples of the margin / ‖w‖ "
       "(linear heads)", "row"),
    _c("distance_from_init", "REAL", "‖w − w0‖. Heads and least-squares tasks: w0 = the model's "
       "initial weights. MLPs: w0 = the dataset's pre-trained encoder (`w0.encoder.*`) with the "
       "model's own initial head, before any stabiliser's preparation; so a SURT row counts SURT's "
       "re-training of the encoder too, and a re-initialised layer counts its jump. (The bounds' w0, "
       "e.g. Theorem F's D = ‖w0 − w*_S‖, is where fine-tuning GD starts: for SURT the re-trained "
       "encoder.)", "row"),
    _c("diverged", "INTEGER", "1 if the model diverged at or before this iteration", "row"),
    _c("diverged_at", "INTEGER", "the step at which the model diverged (NaN, inf or blow-up of the "
       "loss), NULL if never", "row"),
    _c("validation_accuracy", "REAL", "accuracy on the config's validation split "
       "(`validation_fraction` > 0, e.g. `full_deep_adamw_nobc_val`): a share of the labelled samples "
       "per class held out by a rule seeded by the dataset alone (`verify.run.validation`), never "
       "trained on by any model of the dataset; the models train on the rest (left-out indices refer "
       "to it, `n_samples` stays the dataset's). The verdicts select a stabiliser's strength on it, "
       "never on `test_accuracy`. NULL without a split, for regression and on diverged models", "row"),
    _c("feature_margin", "REAL", "MLP tasks, last checkpoint: γ/R of the trained encoder's features "
       "f_j on the training set S (the quantity MMR enlarges, F9). The features are centred on their "
       "mean, R = max_j ‖f_j − f̄‖ (MMR's radius), and γ is the hard-margin, no-bias max-margin of the "
       "centred features by an exact QP (`theory.estimators.max_margin_solution`); multiclass: the "
       "smallest over class pairs (each pair's samples, centred on the mean of all of S). Invariant "
       "to scaling and translating the features. NULL where some pair of classes is not linearly "
       "separable (γ ≤ 0): no \"best negative margin\" is stored", "full_set"),
    _c("predicted_direction_error", "REAL", "head tasks (every checkpoint), where Soudry et al.'s "
       "predictor applies: ‖w_pred(t)/‖w_pred(t)‖ − u*‖, with w_pred(t) = ŵ log t + w̃ from "
       "`theory.asymptotics.asymptotic_weights` (mean loss over S, the step each head takes, the "
       "component of the initial head orthogonal to the data) and u* the certified max-margin "
       "direction; compare with the row's `direction_error` (F2)", "full_set"),
    _c("predictor_relative_error", "REAL", "the same rows: ‖w(t) − w_pred(t)‖ / ‖w(t)‖; it shrinks "
       "like 1/log t as the predictor becomes accurate", "full_set"),
    _c("head_seed_spread", "REAL", "head tasks with two or more seeds, every checkpoint: the seed "
       "spread of the head direction on one S, mean_k ‖u_k − ū‖² over the seeds' full-set heads u_k "
       "= w_k/‖w_k‖ (`theory.stability.head_direction_spread`), the same value on every seed's row "
       "of that checkpoint; models that diverged are left out (NULL with fewer than two)", "full_set"),
    _c("head_seed_spread_low", "REAL", "the lower end of its 95% bootstrap interval (seeds "
       "resampled)", "full_set"),
    _c("head_seed_spread_high", "REAL", "the upper end of that interval", "full_set"),
    _c("distance_from_start", "REAL", "‖w(t) − w_start‖ over all weights, w_start the weights "
       "training started from (the bounds' w0); at the last checkpoint of the model on S it "
       "estimates Theorem F's D = ‖w0 − w*_S‖", "start"),
    _c("encoder_distance_from_start", "REAL", "‖w(t) − w_start‖ over the encoder's weights alone "
       "(MLP tasks; NULL for linear models): the move SURT's start can shorten, without the head's "
       "(a fresh head moves however close the encoder starts)", "start"),
    _c("teacher_distance_pretrained", "REAL", "‖w0 − θ*‖: the pre-trained encoder's distance to "
       "the teacher (before SURT)", "start"),
    _c("teacher_distance_start", "REAL", "‖w_start − θ*‖: after the stage (equal to the previous "
       "column for plain training)", "start"),
    _c("teacher_distance", "REAL", "‖w(t) − θ*‖ of the fine-tuned encoder", "start"),
    _c("start_move_cosine", "REAL", "cosine between the stage's move w_start − w0 and the teacher "
       "direction θ* − w0; NULL when the stage did not move the encoder. SURT's premise holds where "
       "it is positive and `teacher_distance_start` < `teacher_distance_pretrained`", "start"),
), ("run_id",), ("UNIQUE (task_key, seed, left_out, iteration)",))

BOUNDS = Table("bounds", "One row per left-out run and bound.", (
    _c("run_id", "INTEGER", "the left-out run (`runs.run_id`)"),
    _c("bound", "TEXT", "e.g. `theorem_f`, `theorem_h`, `bousquet_elisseeff`, `hardt_sgd_convex`"),
    _c("measure", "TEXT", "the `runs` column it bounds"),
    _c("measured", "REAL", "that column's value for this run"),
    _c("value", "REAL", "the bound (`Inf` when vacuous, NULL when its estimate failed)"),
    _c("violated", "TEXT", "violated assumptions; `[]` = all hold; `\"estimate_failed: <error>\"` if "
       "the constants could not be estimated", json="list"),
    _c("constants", "TEXT", "the constants the bound used", json="object"),
), ("run_id", "bound"), ("FOREIGN KEY (run_id) REFERENCES runs (run_id)",))

BOUND_EVALUATIONS = Table(
    "bound_evaluations",
    "One row per task and bound evaluated on it by `ftstab bounds` (what a re-run skips).", (
        _c("task_key", "TEXT", "the task (`tasks.task_key`)"),
        _c("bound", "TEXT", "the bound's name in `theory.bounds.BOUNDS`"),
        _c("status", "TEXT", "`done` (its rows are in `bounds`; a bound of the other setting has "
           "none) or `failed` (no rows)"),
        _c("n_rows", "INTEGER", "rows written into `bounds`"),
        _c("error", "TEXT", "the traceback of a failed evaluation, else NULL"),
        _c("seconds", "REAL", "wall time of the task's bound evaluation in its worker"),
        _c("finished_at", "TEXT", "UTC time the parent recorded it"),
    ), ("task_key", "bound"), ("CHECK (status IN ('done', 'failed'))",))

TABLES: tuple[Table, ...] = (META, DATASETS, TASKS, RUNS, BOUNDS, BOUND_EVALUATIONS)
TABLE = {table.name: table for table in TABLES}

INDEXES = (
    ("runs_by_task", "runs", ("task_key",)),
    ("runs_by_curve", "runs", ("setting", "config", "stabiliser", "dataset_id", "iteration")),
    ("runs_by_kind", "runs", ("kind", "setting")),
    ("bounds_by_name", "bounds", ("bound",)),
    ("tasks_by_status", "tasks", ("status",)),
)

RUN_COLUMNS = RUNS.names
BOUND_COLUMNS = BOUNDS.names
TASK_COLUMNS = TASKS.names
KEY_COLUMNS = RUNS.group("key")
DATASET_COLUMNS = RUNS.group("dataset")
TRAINING_COLUMNS = RUNS.group("training")
LEFT_OUT_MEASURES = RUNS.group("left_out")
LEFT_OUT_ESTIMATE = RUNS.group("left_out_estimate")
ROW_MEASURES = RUNS.group("row")
FULL_SET_MEASURES = RUNS.group("full_set")
START_MEASURES = RUNS.group("start")


def ddl() -> str:
    """The SQL that creates every table and index of the current schema."""
    statements = [table.ddl() for table in TABLES]
    statements += [f"CREATE INDEX {name} ON {table} ({', '.join(columns)});"
                   for name, table, columns in INDEXES]
    return "\n".join(statements) + "\n"


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def _column_table(columns: tuple[Column, ...], table: Table) -> list[str]:
    lines = ["| column | type | meaning |", "|---|---|---|"]
    for column in columns:
        kind = column.type + (", key" if column.name in table.primary_key else "")
        if column.json is not None:
            kind += f" (JSON {column.json})"
        lines.append(f"| `{column.name}` | {kind} | {_cell(column.description)} |")
    return lines


def markdown_tables() -> dict[str, str]:
    """The column tables of docs/results-schema.md, one block per table (``runs``: per group)."""
    blocks = {}
    for table in TABLES:
        if table is RUNS:
            lines = []
            for group, title in RUN_GROUPS.items():
                lines += [f"{title}:", "", *_column_table(
                    tuple(c for c in table.columns if c.group == group), table), ""]
            blocks[table.name] = "\n".join(lines).rstrip("\n")
        else:
            blocks[table.name] = "\n".join([table.description, "", *_column_table(table.columns, table)])
    return blocks


_BLOCK = re.compile(r"<!-- schema:(\w+) -->\n(.*?)<!-- /schema:\1 -->", re.S)


def render_doc(text: str) -> str:
    """``text`` with every ``<!-- schema:TABLE -->`` … ``<!-- /schema:TABLE -->`` block regenerated."""
    blocks = markdown_tables()
    return _BLOCK.sub(lambda match: (f"<!-- schema:{match.group(1)} -->\n{blocks[match.group(1)]}\n"
                                     f"<!-- /schema:{match.group(1)} -->"), text)


def doc_blocks(text: str) -> dict[str, str]:
    """The schema blocks found in a page, ``table -> text``."""
    return {match.group(1): match.group(2).removesuffix("\n") for match in _BLOCK.finditer(text)}


if __name__ == "__main__":  # python -m verify.store.schema docs/results-schema.md: regenerate the tables
    for name in sys.argv[1:]:
        page = Path(name)
        page.write_text(render_doc(page.read_text()))
