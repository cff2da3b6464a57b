"""A small CNN that ftstab pre-trains itself on scikit-learn's digits, and the fine-tuning data.

Split by class: the CNN is pre-trained on the images of digits 0-4 with a self-supervised objective,
masked-pixel reconstruction (a random 30% of the pixels are zeroed; a linear decoder reconstructs every
pixel from the encoder's features), the same kind of objective as the synthetic backbones' masked-feature
reconstruction. No label is used in pre-training. Fine-tuning is 5-way classification of digits 5-9
(relabelled 0-4) from few-shot training sets, tested on a fixed held-out set.

Images enter as flat rows of 64 pixels scaled to [0, 1], so the network fits the MLP trainer's
``(n, d)`` inputs; the encoder reshapes them to 1x8x8.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TypedDict, Unpack

import numpy as np
import torch
from sklearn.datasets import load_digits
from torch import nn

from verify.real.feature_cache import save_array_atomically
from verify.seeding import run_seed

PRETRAIN_CLASSES = (0, 1, 2, 3, 4)
FINETUNE_CLASSES = (5, 6, 7, 8, 9)
MASK_RATE = 0.3
N_FEATURES = 32


class DigitsEncoder(nn.Module):
    """conv 3x3 (1->8) -> ReLU -> conv 3x3 stride 2 (8->16) -> ReLU -> linear (256->32) -> ReLU."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 8, kernel_size=3, padding=1)
        self.conv2 = nn.Conv2d(8, 16, kernel_size=3, stride=2, padding=1)
        self.fc = nn.Linear(16 * 4 * 4, N_FEATURES)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        images = x.reshape(-1, 1, 8, 8)
        hidden = torch.relu(self.conv2(torch.relu(self.conv1(images))))
        return torch.relu(self.fc(hidden.flatten(start_dim=1)))


class DigitsCNN(nn.Module):
    """``encoder`` (:class:`DigitsEncoder`) then a linear ``head``, the layout the trainers expect."""

    def __init__(self, n_classes: int = len(FINETUNE_CLASSES)) -> None:
        super().__init__()
        self.encoder = DigitsEncoder()
        self.head = nn.Linear(N_FEATURES, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.encoder(x))


@dataclass(frozen=True)
class DigitsSplit:
    """Images (rows of 64 pixels in [0, 1]) and labels of one side of the class split."""

    X: np.ndarray
    y: np.ndarray


def digits_by_class(classes: tuple[int, ...]) -> DigitsSplit:
    """The digits of ``classes``, pixels scaled to [0, 1], labels renumbered 0..len(classes)-1."""
    digits = load_digits()
    keep = np.isin(digits.target, classes)
    relabel = {digit: label for label, digit in enumerate(classes)}
    return DigitsSplit(X=digits.data[keep].astype(np.float64) / 16.0,
                       y=np.array([relabel[t] for t in digits.target[keep]], dtype=np.int64))


def masked_reconstruction_loss(encoder: nn.Module, decoder: nn.Module, x: torch.Tensor,
                               generator: torch.Generator) -> torch.Tensor:
    """Mean squared error of reconstructing every pixel of ``x`` from a copy with 30% zeroed."""
    keep = (torch.rand(x.shape, generator=generator, dtype=x.dtype) >= MASK_RATE).to(x.dtype)
    return ((decoder(encoder(x * keep)) - x) ** 2).mean()


@dataclass(frozen=True)
class Pretrained:
    """Pre-trained weights and the loss curve.

    ``encoder_params`` are keyed as in ``DigitsCNN().named_parameters()`` (``encoder.*``);
    ``decoder_params`` (``decoder.weight``, ``decoder.bias``) are the reconstruction decoder, kept for
    SURT, which continues the same objective.
    """

    encoder_params: dict[str, np.ndarray]
    decoder_params: dict[str, np.ndarray]
    losses: np.ndarray


class PretrainingSettings(TypedDict, total=False):
    """Keywords of :func:`pretrain_digits_cnn` (each one left out takes its default)."""

    n_steps: int
    batch_size: int
    lr: float
    random_state: int


def pretrain_digits_cnn(*, n_steps: int = 600, batch_size: int = 128, lr: float = 3e-3,
                        random_state: int = 0) -> Pretrained:
    """Pre-train the CNN's encoder by masked-pixel reconstruction on digits 0-4 (no labels).

    Parameters
    ----------
    n_steps : int, default=600
        Adam steps, ``>= 1``.
    batch_size : int, default=128
        Images per step, in ``[1, 901]`` (the number of images of digits 0-4).
    lr : float, default=3e-3
        Adam's learning rate, ``> 0``.
    random_state : int, default=0
        Seeds the initial weights, minibatches and masks (one generator).

    Returns
    -------
    Pretrained
        ``encoder_params`` keyed ``encoder.*`` as in ``DigitsCNN().named_parameters()`` (float64);
        ``losses`` the reconstruction loss at every step.
    """
    source = digits_by_class(PRETRAIN_CLASSES)
    if isinstance(n_steps, bool) or not isinstance(n_steps, (int, np.integer)) or n_steps < 1:
        raise ValueError(f"n_steps must be an integer >= 1, got {n_steps!r}")
    if not isinstance(batch_size, (int, np.integer)) or not 1 <= batch_size <= len(source.X):
        raise ValueError(f"batch_size must be an integer in [1, {len(source.X)}], got {batch_size!r}")
    if not lr > 0:
        raise ValueError(f"lr must be > 0, got {lr!r}")
    generator = torch.Generator().manual_seed(run_seed("digits-pretraining", int(random_state)))
    with torch.random.fork_rng():
        torch.manual_seed(run_seed("digits-pretraining-init", int(random_state)))
        encoder = DigitsEncoder().double()
        decoder = nn.Linear(N_FEATURES, 64).double()
    optimiser = torch.optim.Adam([*encoder.parameters(), *decoder.parameters()], lr=lr)
    X = torch.as_tensor(source.X)
    losses = np.empty(n_steps)
    for step in range(n_steps):
        batch = X[torch.randperm(len(X), generator=generator)[:batch_size]]
        loss = masked_reconstruction_loss(encoder, decoder, batch, generator)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        losses[step] = loss.item()
    return Pretrained(
        encoder_params={f"encoder.{name}": value.detach().numpy().copy()
                        for name, value in encoder.named_parameters()},
        decoder_params={f"decoder.{name}": value.detach().numpy().copy()
                        for name, value in decoder.named_parameters()},
        losses=losses)


def pretraining_key(**settings: object) -> str:
    """Short hash of the pre-training settings (names the cached weights)."""
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:16]


def cached_pretrained_encoder(cache_dir: str | Path, **settings: Unpack[PretrainingSettings]) -> Pretrained:
    """:func:`pretrain_digits_cnn` with ``settings``, cached under ``cache_dir`` (atomic ``.npy`` files)."""
    folder = Path(cache_dir) / f"digits-cnn-{pretraining_key(**settings)}"
    encoder = [f"encoder.{name}" for name, _ in DigitsEncoder().named_parameters()]
    decoder = ["decoder.weight", "decoder.bias"]
    files = {name: folder / f"{name}.npy" for name in [*encoder, *decoder, "losses"]}
    if all(path.exists() for path in files.values()):
        loaded = {name: np.load(path, allow_pickle=False) for name, path in files.items()}
        return Pretrained({name: loaded[name] for name in encoder},
                          {name: loaded[name] for name in decoder}, loaded["losses"])
    pretrained = pretrain_digits_cnn(**settings)
    arrays = {**pretrained.encoder_params, **pretrained.decoder_params, "losses": pretrained.losses}
    for name, path in files.items():
        save_array_atomically(arrays[name], path)
    return pretrained
