import numpy as np
import pytest
from scipy.optimize import linprog, nnls


def exact_max_margin(Z: np.ndarray) -> tuple[float, np.ndarray]:
    """No-bias hard-margin SVM of signed points ``Z`` by an exact method independent of synth.

    min ||w|| subject to Z w >= 1 is a least-distance program; Lawson & Hanson's reduction turns
    it into one non-negative least-squares problem (finite active-set algorithm):
    u = argmin_{u >= 0} ||E u - f|| with E = [Z^T; 1^T], f = e_{d+1}; w = -r[:d] / r[d] for the
    residual r = E u - f. Returns (margin, unit direction).
    """
    n, d = Z.shape
    E = np.vstack([Z.T, np.ones((1, n))])
    f = np.zeros(d + 1)
    f[-1] = 1.0
    u, _ = nnls(E, f, maxiter=100 * n)
    residual = E @ u - f
    w = -residual[:d] / residual[d]
    norm = np.linalg.norm(w)
    return 1.0 / norm, w / norm


def linearly_separable(Z: np.ndarray) -> bool:
    """Whether some w has Z w >= 1 (strict separability through the origin), by an LP."""
    result = linprog(np.zeros(Z.shape[1]), A_ub=-Z, b_ub=-np.ones(len(Z)),
                     bounds=[(None, None)] * Z.shape[1], method="highs")
    return result.status == 0


@pytest.fixture(scope="session")
def pretraining_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("ftstab-cache")


@pytest.fixture
def isolated_cache(pretraining_cache, monkeypatch):
    """Pre-trained backbones go to a per-session temporary cache, never the user's."""
    monkeypatch.setenv("FTSTAB_CACHE", str(pretraining_cache))
    return pretraining_cache
