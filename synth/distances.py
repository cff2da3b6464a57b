"""Distances between weight vectors that stay exact for tiny and huge magnitudes."""
from __future__ import annotations

import numpy as np


def euclidean_distance(a: np.ndarray, b: np.ndarray) -> float:
    """||a - b||, also where its square under- or overflows float64 (a tiny requested distance).

    Inside the normal range it is ``np.linalg.norm`` bit for bit; outside it the difference is
    rescaled by its largest entry first.
    """
    difference = np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)
    plain = float(np.linalg.norm(difference))
    if 1e-150 < plain < 1e150:
        return plain
    scale = float(np.max(np.abs(difference), initial=0.0))
    return 0.0 if scale == 0.0 else scale * float(np.linalg.norm(difference / scale))
