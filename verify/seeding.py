"""Seeds derived from a run's coordinates, so results never depend on order or worker count."""
from __future__ import annotations

import hashlib
import json
from typing import Any


def run_seed(*coordinates: Any) -> int:
    """Return a 63-bit seed that is a pure function of ``coordinates``.

    Parameters
    ----------
    *coordinates : JSON-serialisable values
        The run's coordinates, e.g. ``(dataset_id, config_name, stabiliser_name, seed)``; a left-out
        index may be appended where a per-model stream is needed.

    Returns
    -------
    int
        A seed in ``[0, 2**63)`` for ``np.random.default_rng`` or ``torch.Generator.manual_seed``.
    """
    payload = json.dumps(coordinates, sort_keys=True, separators=(",", ":"), default=str)
    return int.from_bytes(hashlib.sha256(payload.encode()).digest()[:8], "little") >> 1
