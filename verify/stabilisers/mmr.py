"""MMR: Maximal Margin Regulariser on encoder features (Fu, So & Collier 2023), scale-invariant."""
from __future__ import annotations

import numbers
from typing import Any

import torch

from synth.validation import Interval
from verify.stabilisers.base import STRENGTH, Stabiliser

# Excluded pairs get this much lower a logit: exp(-EXCLUDED) underflows to 0 in float64, while the
# soft-min stays finite (and its gradient zero) when a batch holds a single class.
EXCLUDED = 1e4


def normalised_class_distances(features: torch.Tensor, labels: torch.Tensor,
                               weights: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Distances between features of different classes, divided by the feature radius.

    Returns ``(distances (B, B), valid (B, B))`` where ``valid`` marks each pair (j < k) of members
    (weight > 0) with different labels, and R is the largest distance of a member from the members' weighted
    mean. Both are unchanged when the features are scaled or translated.
    """
    members = weights > 0
    centre = (weights.unsqueeze(-1) * features).sum(0)
    offsets = ((features - centre) ** 2).sum(-1)
    radius_sq = torch.where(members, offsets, torch.zeros_like(offsets)).max().clamp_min(1e-300)
    differences = features.unsqueeze(0) - features.unsqueeze(1)
    distances = torch.sqrt((differences ** 2).sum(-1) / radius_sq + 1e-12)
    each_pair_once = torch.ones(distances.shape, dtype=torch.bool).triu(1)
    valid = (members.unsqueeze(0) & members.unsqueeze(1) & (labels.unsqueeze(0) != labels.unsqueeze(1))
             & each_pair_once)
    return distances, valid


def soft_min_margin(features: torch.Tensor, labels: torch.Tensor, weights: torch.Tensor,
                    temperature: float) -> torch.Tensor:
    """Smooth relative margin: soft-min over cross-class pairs of distance / (2 R); 0 if none."""
    distances, valid = normalised_class_distances(features, labels, weights)
    logits = torch.where(valid, -distances / temperature, -distances / temperature - EXCLUDED)
    soft_min = -temperature * torch.logsumexp(logits.reshape(-1), 0)
    return torch.where(valid.any(), soft_min / 2, torch.zeros_like(soft_min))

# τ is on the scale of normalised distances, which lie in [0, 2]: beyond 10 the soft-min is no
# longer near the minimum distance (it tends to a mean minus τ log(pairs)).
MAX_TEMPERATURE = 10.0


class MMR(Stabiliser):
    """Penalise −λ · soft-min_{y_j ≠ y_k} ‖f_j − f_k‖ / (2R) over the batch's encoder features.

    Why this form: the margin that Theorem H rewards is γ/R of the features the head sees. For two
    classes the max-margin (with bias) γ is half the distance between the classes' convex hulls,
    which the closest cross-class pair bounds from above and equals when the closest hull points are
    samples; the soft-min (temperature τ on the normalised scale) makes it smooth and spreads the
    gradient over the nearest pairs. Dividing by R (largest distance of a sample from the batch
    mean) makes the penalty invariant to scaling and translating the features, so it cannot be
    lowered by inflating them — a margin that is not relative to R only inflates the features.
    Samples outside the model's training set (or the minibatch) are left out of every pair and of R.

    Parameters
    ----------
    strength : float
        λ in [0, 100] (``MAX_STRENGTH``).
    temperature : float
        τ in (0, 10] of the soft-min, on the scale of normalised distances (which lie in [0, 2]).
    """

    name = "mmr"
    targets = ("gamma_over_R",)
    identity_params = {"strength": 0.0}
    parameter_constraints = {"strength": [STRENGTH],
                             "temperature": [Interval(numbers.Real, 0.0, MAX_TEMPERATURE, "right")]}
    strength_grid = {"strength": (0.01, 0.1, 1.0)}

    def __init__(self, *, strength: float = 0.1, temperature: float = 0.05):
        self.check_param("strength", strength)
        self.check_param("temperature", temperature)
        self.strength = float(strength)
        self.temperature = float(temperature)

    def params(self) -> dict[str, Any]:
        return {"strength": self.strength, "temperature": self.temperature}

    def penalty(self, params, ctx):
        return -self.strength * soft_min_margin(ctx.features, ctx.y, ctx.weights, self.temperature)
