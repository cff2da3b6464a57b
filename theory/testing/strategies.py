"""Hypothesis strategies drawing certified instances (bounded, so a property runs in seconds).

* :func:`separable_data` — ``synth.Dataset`` with certified margin γ, direction u* and support set;
* :func:`quadratic_tasks` — least-squares tasks with exact μ, β, D (and ρ_i via
  ``theory.estimators.least_squares_constants``);
* :func:`quadratic_pairs` / :func:`head_pairs` — trained pairs (A(S), A(S\\i)) with their exactly
  measured stability (:class:`theory.testing.instances.TrainedPair`), inside or, with ``violate``,
  outside one named assumption of the project's bounds (:data:`VIOLATIONS`).
"""
from __future__ import annotations

from hypothesis import strategies as st

from synth import make_quadratic_task, make_separable
from theory.testing.instances import head_pair, quadratic_pair

SEEDS = st.integers(min_value=0, max_value=2 ** 31 - 1)


def separable_data(*, max_samples: int = 24, max_features: int = 4):
    """Binary separable data: n in [8, max_samples], d in [1, max_features], γ in [0.05, 0.5], R = 1."""
    return st.builds(
        lambda n, d, margin, seed: make_separable(n, d, margin=margin, n_test=8, random_state=seed),
        st.integers(8, max_samples), st.integers(1, max_features),
        st.floats(0.05, 0.5, allow_nan=False), SEEDS)


def quadratic_tasks(*, max_samples: int = 16, max_features: int = 4):
    """Least-squares tasks: d in [1, max_features], n in [d + 2, max_samples], δ in [0, 2], noise in [0, 1]."""
    return st.integers(1, max_features).flatmap(lambda d: st.builds(
        lambda n, distance, noise, seed: make_quadratic_task(n, d, distance=distance, noise=noise,
                                                             n_test=8, random_state=seed),
        st.integers(d + 2, max(d + 2, max_samples)), st.floats(0.0, 2.0, allow_nan=False),
        st.floats(0.0, 1.0, allow_nan=False), SEEDS))


@st.composite
def quadratic_pairs(draw, *, violate: str | None = None, max_samples: int = 12, max_features: int = 3):
    """Trained least-squares pairs: full-batch GD at η = s/β, s in (0, 1] (Theorem F's η ≤ 1/β; or
    s/max‖x_j‖², the per-sample step limit of SGD bounds), from
    w0 or from w*_S, T in [1, 60]; ``violate="eta_le_1_over_beta"`` draws s in [1.2, 1.9] (still
    convergent), ``violate="full_batch"`` minibatch SGD with batches of 2."""
    d = draw(st.integers(1, max_features))
    n = draw(st.integers(d + 2, max(d + 2, max_samples)))
    lr_scale = draw(st.floats(1.2, 1.9) if violate == "eta_le_1_over_beta" else st.floats(0.05, 1.0))
    return quadratic_pair(
        n_samples=n, n_features=d, distance=draw(st.floats(0.0, 2.0)),
        noise=draw(st.floats(0.05, 1.0)), seed=draw(SEEDS), lr_scale=lr_scale,
        iteration=draw(st.integers(1, 60)), left_out=draw(st.integers(0, n - 1)),
        start=draw(st.sampled_from(("w_star", "w0"))),
        batch_size=2 if violate == "full_batch" else None,
        step_reference="beta" if violate else draw(st.sampled_from(("beta", "beta_sample"))))


@st.composite
def head_pairs(draw, *, violate: str | None = None, max_samples: int = 16, max_features: int = 3):
    """Trained heads on separable binary data (R = 1): full-batch GD at η = s/R², s in [0.25, 2.5]
    (inside Theorem H.3's step condition from w0 = 0), T in [1, 300], logistic or exponential loss.
    ``violate`` draws outside one assumption: ``separable`` (label noise), ``binary`` (3 classes),
    ``full_batch`` (batches of 4), ``single_head`` (the mean of 2 heads), ``eta_small``
    (s in [6, 12]) or ``exponential_tailed_loss`` (the squared loss)."""
    n = draw(st.integers(12 if violate in ("separable", "binary") else 8, max_samples))
    loss = ("squared" if violate == "exponential_tailed_loss"
            else draw(st.sampled_from(("logistic", "exponential"))))
    lr_scale = draw(st.floats(6.0, 12.0) if violate == "eta_small" else st.floats(0.25, 2.5))
    if loss == "exponential" and violate != "eta_small":
        lr_scale = min(lr_scale, 0.5)  # η R² L(w0) ≤ ½ with L(0) = 1
    return head_pair(
        n_samples=n, n_features=draw(st.integers(3 if violate == "binary" else 1, max_features)),
        margin=draw(st.floats(0.05, 0.4)), seed=draw(SEEDS), lr_scale=lr_scale,
        iteration=draw(st.integers(1, 300)), left_out=draw(st.integers(0, n - 1)), loss=loss,
        label_noise=0.25 if violate == "separable" else 0.0,
        n_classes=3 if violate == "binary" else 2,
        batch_size=4 if violate == "full_batch" else None,
        n_heads=2 if violate == "single_head" else 1)


# Instances built to violate one assumption, by the name the project's bounds report it under.
VIOLATIONS = {
    "full": ("eta_le_1_over_beta", "full_batch"),
    "head": ("separable", "binary", "full_batch", "single_head", "eta_small", "exponential_tailed_loss"),
}


def trained_pairs(setting: str, *, violate: str | None = None):
    """Trained pairs of a bound's ``setting`` (``"full"``: least squares, ``"head"``: linear heads)."""
    if setting == "full":
        return quadratic_pairs(violate=violate)
    if setting == "head":
        return head_pairs(violate=violate)
    raise ValueError(f"setting must be 'full' or 'head', got {setting!r}")
