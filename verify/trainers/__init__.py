"""Batched trainers: M models (seeds x leave-one-out sets x heads) trained as one tensor program.

- :mod:`verify.trainers.head` — linear heads on fixed features (GD / SGD; logistic, exponential,
  softmax losses; multi-head);
- :mod:`verify.trainers.quadratic` — least-squares fine-tuning from w0, by GD and in closed form;
- :mod:`verify.trainers.mlp` — full fine-tuning of a pre-trained MLP;
- :mod:`verify.trainers.naive` — the per-model Python loop the batched trainers are checked and
  benchmarked against.

Every trainer returns a :class:`~verify.trainers.trace.Trace`.
"""
from verify.trainers.checkpoints import log_spaced_checkpoints
from verify.trainers.head import smoothness, train_heads
from verify.trainers.quadratic import quadratic_closed_form, quadratic_minimiser, train_quadratic
from verify.trainers.trace import Trace

__all__ = ["Trace", "log_spaced_checkpoints", "quadratic_closed_form", "quadratic_minimiser",
           "smoothness", "train_heads", "train_quadratic"]
