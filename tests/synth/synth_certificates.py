"""Independent checks of synth's certificates (exact solvers that share no code with synth)."""
import numpy as np
import pytest
from scipy.optimize import linprog, nnls

RTOL = 1e-6


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


def pairs(dataset):
    """(mask of the pair's points, signed points, certified margin, certified direction)."""
    X, y, card = dataset.X, dataset.arrays["y_clean"], dataset.card
    if card["n_classes"] == 2:
        yield np.ones(len(y), bool), (2.0 * y - 1.0)[:, None] * X, card["margin"], \
            dataset.arrays["u_star"]
        return
    u = dataset.arrays["class_axes"]
    for a in range(card["n_classes"]):
        for b in range(a + 1, card["n_classes"]):
            mask = (y == a) | (y == b)
            Z = np.where(y[mask] == a, 1.0, -1.0)[:, None] * X[mask]
            yield mask, Z, card["margin"], (u[a] - u[b]) / np.sqrt(2)


def kesler_points(X: np.ndarray, y: np.ndarray, n_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """Lifted points (e_{y_i} - e_c) (x) x_i for c != y_i: the multiclass (Crammer-Singer) SVM
    without bias is the binary one on these. Returns the points (flattened (C, d)) and i."""
    points, owners = [], []
    for i, (x, label) in enumerate(zip(X, y)):
        for c in range(n_classes):
            if c != label:
                lifted = np.zeros((n_classes, len(x)))
                lifted[label], lifted[c] = x, -x
                points.append(lifted.ravel())
                owners.append(i)
    return np.array(points), np.array(owners)


def assert_certificate_matches_exact_solver(dataset):
    support = np.asarray(dataset.card["support_indices"])
    for mask, Z, margin, direction in pairs(dataset):
        gamma, u = exact_max_margin(Z)
        assert gamma == pytest.approx(margin, rel=RTOL)
        np.testing.assert_allclose(u, direction, atol=RTOL)
        active = np.flatnonzero(mask)[Z @ u <= gamma * (1 + RTOL)]
        np.testing.assert_array_equal(active, np.intersect1d(support, np.flatnonzero(mask)))
    card = dataset.card
    if card["n_classes"] > 2:
        Z, owners = kesler_points(dataset.X, dataset.arrays["y_clean"], card["n_classes"])
        gamma, u = exact_max_margin(Z)
        assert gamma == pytest.approx(card["multiclass_margin"], rel=RTOL)
        np.testing.assert_allclose(u, dataset.arrays["u_star"].ravel(), atol=RTOL)
        np.testing.assert_array_equal(np.unique(owners[Z @ u <= gamma * (1 + RTOL)]), support)
