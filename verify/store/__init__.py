"""How results persist: the schema (``schema``), the checks on open (``checks``), the one read API
(``read``: :func:`open_results`), the writer (``writer``: :class:`ResultStore`) and the stored
weights (``weights``). docs/results-schema.md documents all of it for users."""
from verify.store.read import (
    STABILITY_KEYS,
    Results,
    StabilityRecords,
    canonical_params,
    fully_measured,
    left_out_mean,
    open_results,
    partial_estimate,
    results_path,
)
from verify.store.schema import (
    BOUND_COLUMNS,
    RESULTS_FILE,
    RUN_COLUMNS,
    SCHEMA_VERSION,
    TABLE,
    TABLES,
)
from verify.store.weights import WEIGHTS_FOLDER, StoredWeights
from verify.store.writer import ResultStore

__all__ = ["BOUND_COLUMNS", "RESULTS_FILE", "RUN_COLUMNS", "SCHEMA_VERSION", "STABILITY_KEYS",
           "TABLE", "TABLES", "WEIGHTS_FOLDER", "Results", "ResultStore", "StabilityRecords",
           "StoredWeights", "canonical_params", "fully_measured", "left_out_mean", "open_results", "partial_estimate",
           "results_path"]
