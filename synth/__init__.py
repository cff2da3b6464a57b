"""Synthetic datasets whose margin, separability, radius, support vectors and distance from the
pre-trained weights are known by construction.

Generators: ``make_separable`` (kind ``separable``: certified max-margin direction, margin and
support set; binary or pairwise multiclass; exact label noise), ``make_quadratic_task`` (kind
``quadratic``: least squares from ``w0``, exact ``D``, ``mu``, ``beta``) and
``make_pretrained_mlp_task`` (kind ``mlp``: a tanh MLP really pre-trained by masked-feature
reconstruction, teacher at distance ``delta``). Grids: ``load_grid``; storage: ``save_dataset``,
``load_dataset``. Importing ``synth`` does not import torch; generating an ``mlp`` task does.
"""
from synth.dataset import Dataset
from synth.grids import DatasetSpec, load_grid
from synth.io import load_dataset, save_dataset
from synth.pretrained import make_pretrained_mlp_task
from synth.quadratic import make_quadratic_task
from synth.separable import make_separable

__all__ = ["Dataset", "DatasetSpec", "load_dataset", "load_grid", "make_pretrained_mlp_task",
           "make_quadratic_task", "make_separable", "save_dataset"]
