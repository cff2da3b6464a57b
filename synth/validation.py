"""Parameter checks shared by the generators: one RNG from ``random_state``, and range checks whose
``ValueError`` names the parameter and the allowed range (scikit-learn style)."""
from __future__ import annotations

import numbers
from collections.abc import Sequence

import numpy as np

# Integer seeds in [0, 2**64) are accepted (verify.seeding.run_seed gives 63-bit ones); seeds
# drawn here for random_state=None or a Generator lie in [0, 2**63).
SEED_BOUND = 2**64
DRAWN_SEED_BOUND = 2**63


def resolve_seed(random_state: int | np.random.Generator | None) -> int:
    """Turn ``random_state`` into the integer seed that the card records.

    An int is used as is; ``None`` draws a fresh seed from the operating system and a
    ``Generator`` draws one from itself, so that every dataset's card reproduces it.

    Parameters
    ----------
    random_state : int, numpy.random.Generator or None

    Returns
    -------
    int
        A seed in ``[0, 2**64)``.
    """
    if random_state is None:
        return int(np.random.default_rng().integers(DRAWN_SEED_BOUND))
    if isinstance(random_state, np.random.Generator):
        return int(random_state.integers(DRAWN_SEED_BOUND))
    if isinstance(random_state, numbers.Integral) and not isinstance(random_state, bool):
        if not 0 <= random_state < SEED_BOUND:
            raise ValueError(f"random_state must be an int in [0, 2**64), None or a "
                             f"numpy Generator; got {random_state}")
        return int(random_state)
    raise ValueError(f"random_state must be an int in [0, 2**64), None or a numpy Generator; "
                     f"got {random_state!r}")


def check_random_state(random_state: int | np.random.Generator | None
                       ) -> tuple[int, np.random.Generator]:
    """Return ``(seed, rng)``: the recorded seed and the one generator built from it."""
    seed = resolve_seed(random_state)
    return seed, np.random.default_rng(seed)


def check_int(value, name: str, *, low: int, high: int | None = None) -> int:
    """Check that ``value`` is an int in ``[low, high]`` (``high=None``: no upper bound)."""
    allowed = f"[{low}, {'inf' if high is None else high}]"
    if not isinstance(value, numbers.Integral) or isinstance(value, bool):
        raise ValueError(f"{name} must be an int in {allowed}; got {value!r}")
    if value < low or (high is not None and value > high):
        raise ValueError(f"{name} must be an int in {allowed}; got {value}")
    return int(value)


def check_float(value, name: str, *, low: float, high: float = np.inf,
                low_open: bool = False, high_open: bool = False) -> float:
    """Check that ``value`` is a finite real number in the given interval."""
    allowed = f"{'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
    if not isinstance(value, numbers.Real) or isinstance(value, bool) or not np.isfinite(value):
        raise ValueError(f"{name} must be a finite number in {allowed}; got {value!r}")
    below = value <= low if low_open else value < low
    above = value >= high if high_open else value > high
    if below or above:
        raise ValueError(f"{name} must be in {allowed}; got {value}")
    return float(value)


def check_positive_vector(value, name: str, *, length: int) -> np.ndarray:
    """Check a sequence of ``length`` finite positive numbers and return it as float64."""
    if isinstance(value, (str, bytes)) or not isinstance(value, (Sequence, np.ndarray)):
        raise ValueError(f"{name} must be a sequence of {length} positive numbers; got {value!r}")
    array = np.asarray(value, dtype=float) if len(value) else np.empty(0)
    if array.shape != (length,) or not np.all(np.isfinite(array)) or not np.all(array > 0):
        raise ValueError(f"{name} must be a sequence of {length} finite positive numbers; "
                         f"got {list(value)!r}")
    return array


def check_spectrum(spectrum, n_features: int) -> np.ndarray:
    """Feature variances along the principal axes, largest first.

    ``None`` is isotropic; a number ``k >= 1`` is a condition number (variances decay
    geometrically from 1 to ``1/k``); a sequence gives the ``n_features`` variances themselves.
    """
    if spectrum is None:
        return np.ones(n_features)
    if isinstance(spectrum, numbers.Real) and not isinstance(spectrum, bool):
        condition = check_float(spectrum, "spectrum", low=1.0)
        return np.geomspace(1.0, 1.0 / condition, n_features) if n_features > 1 else np.ones(1)
    return check_positive_vector(spectrum, "spectrum", length=n_features)


def split_counts(total: int, weights: np.ndarray) -> np.ndarray:
    """Split ``total`` into integer parts proportional to ``weights`` (largest remainder).

    The parts sum to ``total`` exactly; ties in the remainders go to the lower index.
    """
    shares = total * np.asarray(weights, dtype=float) / np.sum(weights)
    counts = np.floor(shares).astype(np.int64)
    remainder = total - int(counts.sum())
    order = np.argsort(-(shares - counts), kind="stable")
    counts[order[:remainder]] += 1
    return counts
