"""The dataset object every generator returns, its stable id and the card fields common to all kinds."""
from __future__ import annotations

import hashlib
import inspect
import json
from dataclasses import dataclass, field
from importlib.metadata import version
from typing import Any, Callable

import numpy as np


@dataclass(frozen=True)
class Dataset:
    """A generated dataset: training and test arrays, named extra arrays and a JSON card.

    Attributes
    ----------
    X : ndarray of shape (n_samples, n_features), float64
    y : ndarray of shape (n_samples,)
        int64 class labels ``0..C-1``, or float64 targets for kind ``"quadratic"``.
    X_test, y_test : ndarray
        Held-out inputs and labels from the same distribution.
    card : dict
        JSON-serialisable parameters and certified properties (see ``docs/internals.md``).
    arrays : dict of str to ndarray
        Named extra arrays (certificates, pre-trained and teacher weights), saved in the same .npz.
    """

    X: np.ndarray
    y: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    card: dict
    arrays: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return self.card["id"]


def bind_params(generator: Callable, params: dict[str, Any]) -> dict[str, Any]:
    """Every argument of ``generator`` for a call with ``params``, defaults filled in.

    Raises
    ------
    ValueError
        Naming the first parameter that ``generator`` does not accept or that is missing.
    """
    signature = inspect.signature(generator)
    unknown = sorted(set(params) - set(signature.parameters))
    if unknown:
        raise ValueError(f"unknown parameter {unknown[0]!r} for {generator.__name__} "
                         f"(allowed: {', '.join(signature.parameters)})")
    try:
        bound = signature.bind(**params)
    except TypeError as exc:
        raise ValueError(f"{generator.__name__}: {exc}") from None
    bound.apply_defaults()
    return dict(bound.arguments)


def dataset_id(kind: str, generator_name: str, params: dict[str, Any]) -> str:
    """Stable id ``<kind>-<12 hex>``: a hash of the generator name and all its parameters."""
    payload = json.dumps({"generator": generator_name, "params": to_jsonable(params)},
                         sort_keys=True, separators=(",", ":"))
    return f"{kind}-{hashlib.sha256(payload.encode()).hexdigest()[:12]}"


def to_jsonable(value: Any) -> Any:
    """Convert numpy scalars and arrays (also nested in dicts, lists, tuples) to plain Python."""
    if isinstance(value, dict):
        return {str(key): to_jsonable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(item) for item in value]
    if isinstance(value, np.ndarray):
        return to_jsonable(value.tolist())
    if isinstance(value, np.generic):
        return value.item()
    return value


def base_card(*, kind: str, generator: Callable, params: dict[str, Any], seed: int,
              X: np.ndarray, y: np.ndarray, X_test: np.ndarray, n_classes: int) -> dict:
    """The card keys every kind shares; ``params`` must already hold the resolved seed."""
    params = to_jsonable(params)
    counts = np.bincount(y, minlength=n_classes).tolist() if n_classes else []
    return {
        "id": dataset_id(kind, generator.__name__, params),
        "kind": kind,
        "generator": generator.__name__,
        "params": params,
        "seed": seed,
        "n_samples": int(X.shape[0]),
        "n_features": int(X.shape[1]),
        "n_classes": n_classes,
        "class_counts": counts,
        "n_test": int(X_test.shape[0]),
        "ftstab_version": version("ftstab"),
    }
