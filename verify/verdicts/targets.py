"""How each theory quantity a stabiliser targets is measured from the results.

Stabilisers declare the quantities they move by name (``Stabiliser.targets``: ``"gamma_over_R"``,
``"D"``, ``"D_encoder"``, ``"teacher_distance"``, ``"mu"``, ``"rho"``, ``"init_variance"``, ``"eta_T"``); this table says, once per quantity,
which stored number estimates it and on which side of a change the theory puts more stability.
Every value is a mean over seeds of the model trained on all of S at its task's final checkpoint.
"""
from __future__ import annotations

from dataclasses import dataclass

from verify.verdicts.paired import DIFFERENCE, RATIO, Quantity


@dataclass(frozen=True)
class Source:
    """Where a quantity is read: an SQL ``expression`` over the ``runs`` columns it ``requires``
    (full-set rows, final checkpoint), or a ``constant`` of a ``bound`` (mean over that bound's rows
    of the final checkpoint, whatever its assumption verdict: the constant describes the trained
    objective, not the bound)."""

    expression: str | None = None
    requires: tuple[str, ...] = ()
    bound: str | None = None
    constant: str | None = None


def column(name: str) -> Source:
    return Source(expression=f"r.{name}", requires=(name,))


TARGETS: dict[str, tuple[Quantity, Source]] = {
    "gamma_over_R": (Quantity("gamma_over_R", "γ/R of the trained encoder's features on S",
                              RATIO, 1), column("feature_margin")),
    "D": (Quantity("D", "D: the fine-tuning move ‖w_T − w_start‖ of the model on S", RATIO, -1),
          column("distance_from_start")),
    "D_encoder": (Quantity("D_encoder", "D of the encoder alone: ‖θ_T − θ_start‖ of the model on S "
                                        "(a fresh head moves however close its encoder starts)",
                           RATIO, -1), column("encoder_distance_from_start")),
    "teacher_distance": (Quantity("teacher_distance", "‖θ_T − θ*‖: the fine-tuned encoder's "
                                  "distance to the teacher backbone", RATIO, -1),
                         column("teacher_distance")),
    "init_variance": (Quantity("init_variance",
                               "seed spread of the head direction on one S (head tasks)", RATIO, -1),
                      column("head_seed_spread")),
    "eta_T": (Quantity("eta_T", "η·T, the step budget", RATIO, 0), Source(expression="r.lr * r.n_steps", requires=("lr", "n_steps"))),
    "mu": (Quantity("mu", "μ, the smallest Hessian eigenvalue of the objective (Theorem F's "
                          "constant)", DIFFERENCE, 1), Source(bound="theorem_f", constant="mu")),
    "rho": (Quantity("rho", "ρ_i, the per-sample gradient norm at z_i (Theorem F's constant)", RATIO, -1),
            Source(bound="theorem_f", constant="rho")),
}
QUANTITIES: dict[str, Quantity] = {name: quantity for name, (quantity, _) in TARGETS.items()}
