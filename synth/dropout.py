"""Where a backbone may drop activations out during fine-tuning, with masks the trainer supplies."""
from __future__ import annotations

import torch
from torch import nn


class DropoutSite(nn.Module):
    """Identity, unless the caller substitutes its ``mask`` buffer (then ``x * mask``).

    ``torch.nn.Dropout`` draws from the global random state; reproducible batched training needs
    masks derived from each model's seed instead, so a trainer passes them in through
    ``torch.func.functional_call`` as ``"<site>.mask"`` (shape ``(batch, width)``, entries 0 or
    ``1 / (1 - p)``). Without a substituted mask (evaluation, pre-training) the site is the
    identity.

    Parameters
    ----------
    width : int
        Number of features at the site, >= 1.
    """

    def __init__(self, width: int):
        super().__init__()
        if isinstance(width, bool) or not isinstance(width, int) or width < 1:
            raise ValueError(f"width must be an integer in [1, inf), got {width!r}")
        self.width = width
        self.mask: torch.Tensor
        self.register_buffer("mask", torch.empty(0), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x if self.mask.numel() == 0 else x * self.mask

    def extra_repr(self) -> str:
        return f"width={self.width}"
