"""A small tanh MLP backbone, really pre-trained by masked-feature reconstruction.

The fine-tuning network (``build_model``) is ``encoder`` (Linear, Tanh, Linear, Tanh, ...) plus a
linear ``head``. Pre-training adds a linear ``decoder`` that reconstructs the input from the
encoder's features: each step hides a random subset of the input features (set to 0) and the loss
is the mean squared error on the hidden entries only, so the backbone must learn how features
depend on each other. ``pretrain`` starts from any weights, so a stabiliser (SURT) can continue
pre-training on target inputs from the pre-trained encoder and decoder.

Pre-trained weights are cached on disk by a hash of everything that determines them, under
``$FTSTAB_CACHE`` (default ``~/.cache/ftstab``).
"""
from __future__ import annotations

import copy
import hashlib
import json
import logging
import os
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from synth.atomic import write_npz_atomic
from synth.digest import array_digest
from synth.validation import check_random_state

# Bump when the pre-training procedure changes, so stale cache entries are not reused.
PRETRAINING_FORMAT = 3
OBJECTIVE = "masked_feature_reconstruction"
# Pre-training draws from the child SOURCE_STREAM of the pre-training seed's SeedSequence: never
# the stream of a task whose random_state equals the pre-training seed.
SOURCE_STREAM = 1
DTYPE = torch.float64
LOSS_NAMES = ("initial_loss", "final_loss", "baseline_loss")
# A cached entry's weights must reproduce its recorded final loss to this relative tolerance (the
# same float64 forward pass; only the summation order of a different thread count may differ).
CACHE_LOSS_RTOL = 1e-9
LOGGER = logging.getLogger(__name__)


class MLP(nn.Module):
    """``head(encoder(x))`` with a tanh encoder; parameter names ``encoder.<k>.*``, ``head.*``."""

    def __init__(self, n_features: int, hidden: list[int], n_classes: int):
        super().__init__()
        widths = [n_features, *hidden]
        layers: list[nn.Module] = []
        for fan_in, fan_out in zip(widths[:-1], widths[1:]):
            layers += [nn.Linear(fan_in, fan_out, dtype=DTYPE), nn.Tanh()]
        self.encoder = nn.Sequential(*layers)
        self.head = nn.Linear(widths[-1], n_classes, dtype=DTYPE)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.encoder(x))


def build_model(architecture: Mapping) -> MLP:
    """The fine-tuning network for ``{"n_features": d, "hidden": [h1, ...], "n_classes": C}``.

    Weights are PyTorch's default initialisation; load a dataset's ``w0.*``/``teacher.*`` arrays
    with ``load_state_dict`` (names as in ``backbone_param_names`` plus ``head.weight``,
    ``head.bias``).
    """
    return MLP(architecture["n_features"], list(architecture["hidden"]),
               architecture["n_classes"])


def build_decoder(architecture: Mapping) -> nn.Linear:
    """The pre-training decoder: features of the last hidden layer -> all input features."""
    return nn.Linear(architecture["hidden"][-1], architecture["n_features"], dtype=DTYPE)


def backbone_param_names(architecture: Mapping) -> list[str]:
    """Names of the encoder parameters, bottom to top: ``encoder.0.weight``, ``encoder.0.bias``, …"""
    return [f"encoder.{2 * layer}.{kind}" for layer in range(len(architecture["hidden"]))
            for kind in ("weight", "bias")]


def decoder_param_names() -> list[str]:
    return ["decoder.weight", "decoder.bias"]


def init_pretraining_params(architecture: Mapping, rng: np.random.Generator
                            ) -> dict[str, np.ndarray]:
    """Encoder and decoder weights drawn like PyTorch's default: U(-1/sqrt(fan_in), 1/sqrt(fan_in))."""
    widths = [architecture["n_features"], *architecture["hidden"], architecture["n_features"]]
    names = backbone_param_names(architecture) + decoder_param_names()
    params = {}
    for layer, (fan_in, fan_out) in enumerate(zip(widths[:-1], widths[1:])):
        bound = 1.0 / np.sqrt(fan_in)
        params[names[2 * layer]] = rng.uniform(-bound, bound, size=(fan_out, fan_in))
        params[names[2 * layer + 1]] = rng.uniform(-bound, bound, size=fan_out)
    return params


def masked_reconstruction_loss(encoder: nn.Module, decoder: nn.Module, X: torch.Tensor,
                               mask: torch.Tensor) -> torch.Tensor:
    """Mean squared reconstruction error on the hidden entries (``mask == 1``) of ``X``.

    The encoder sees ``X`` with the hidden entries set to 0; the decoder predicts every feature
    from the encoder's output; only hidden entries count.
    """
    reconstruction = decoder(encoder(X * (1 - mask)))
    return ((reconstruction - X) ** 2 * mask).sum() / mask.sum()


@dataclass(frozen=True)
class PretrainingResult:
    """Weights after pre-training (``encoder.*`` and ``decoder.*``) and the loss on a fixed
    evaluation mask before and after, next to the loss of predicting 0 for hidden entries."""

    params: dict[str, np.ndarray]
    initial_loss: float
    final_loss: float
    baseline_loss: float


def pretrain(params: Mapping[str, np.ndarray], X: np.ndarray, *, architecture: Mapping,
             n_steps: int = 300, lr: float = 1e-2, mask_rate: float = 0.25,
             random_state=None) -> PretrainingResult:
    """Continue masked-feature-reconstruction training of encoder and decoder on inputs ``X``.

    Full-batch Adam; every step hides a fresh Bernoulli(``mask_rate``) subset of the entries.

    Parameters
    ----------
    params : mapping of str to ndarray
        Starting ``encoder.*`` and ``decoder.*`` weights (e.g. from ``init_pretraining_params``,
        or a dataset's ``w0.*`` arrays with the prefix removed).
    X : ndarray of shape (n, n_features)
        Unlabelled inputs.
    architecture : mapping
        ``{"n_features": d, "hidden": [...], ...}``.
    n_steps : int, default=300
    lr : float, default=1e-2
    mask_rate : float, default=0.25
        Probability that an entry is hidden, in (0, 1).
    random_state : int, numpy.random.Generator or None
        Seeds the masks.

    Returns
    -------
    PretrainingResult
    """
    encoder, decoder = _pretraining_modules(params, architecture)
    modules = {"encoder": encoder, "decoder": decoder}
    inputs = torch.as_tensor(X, dtype=DTYPE)
    draw_mask = _mask_sampler(inputs.shape, mask_rate, random_state)
    evaluation_mask = draw_mask()
    with torch.no_grad():
        initial = masked_reconstruction_loss(encoder, decoder, inputs, evaluation_mask).item()
        baseline = ((inputs**2 * evaluation_mask).sum() / evaluation_mask.sum()).item()
    optimiser = torch.optim.Adam([*encoder.parameters(), *decoder.parameters()], lr=lr)
    for _ in range(n_steps):
        optimiser.zero_grad()
        masked_reconstruction_loss(encoder, decoder, inputs, draw_mask()).backward()
        optimiser.step()
    with torch.no_grad():
        final = masked_reconstruction_loss(encoder, decoder, inputs, evaluation_mask).item()
    trained = {f"{prefix}.{key}": value.detach().numpy().copy()
               for prefix, module in modules.items() for key, value in module.named_parameters()}
    return PretrainingResult(params=trained, initial_loss=initial, final_loss=final,
                             baseline_loss=baseline)


def evaluation_loss(params: Mapping[str, np.ndarray], X: np.ndarray, *, architecture: Mapping,
                    mask_rate: float, random_state) -> float:
    """The loss of ``params`` on the evaluation mask that ``pretrain`` with the same inputs and
    ``random_state`` draws first (its ``initial_loss`` for the starting weights)."""
    encoder, decoder = _pretraining_modules(params, architecture)
    inputs = torch.as_tensor(X, dtype=DTYPE)
    mask = _mask_sampler(inputs.shape, mask_rate, random_state)()
    with torch.no_grad():
        return masked_reconstruction_loss(encoder, decoder, inputs, mask).item()


def _pretraining_modules(params: Mapping[str, np.ndarray], architecture: Mapping
                         ) -> tuple[nn.Module, nn.Linear]:
    encoder = build_model({**architecture, "n_classes": 1}).encoder
    decoder = build_decoder(architecture)
    modules = {"encoder": encoder, "decoder": decoder}
    with torch.no_grad():
        for name, value in params.items():
            module, _, key = name.partition(".")
            modules[module].get_parameter(key).copy_(torch.as_tensor(value, dtype=DTYPE))
    return encoder, decoder


def _mask_sampler(shape: torch.Size, mask_rate: float, random_state):
    """Draws successive Bernoulli(``mask_rate``) masks from one generator seeded by
    ``random_state``."""
    _, rng = check_random_state(random_state)
    masks = torch.Generator().manual_seed(int(rng.integers(2**63)))

    def draw_mask():
        return torch.bernoulli(torch.full(shape, mask_rate, dtype=DTYPE), generator=masks)

    return draw_mask


def source_mixing(n_features: int, latent_dim: int, rng: np.random.Generator) -> np.ndarray:
    """Mixing matrix (latent_dim, n_features) of the latent-factor input distribution, scaled so
    that each feature has variance about 1."""
    return rng.standard_normal((latent_dim, n_features)) / np.sqrt(latent_dim)


def latent_factor_inputs(mixing: np.ndarray, n_samples: int, *, noise: float,
                         rng: np.random.Generator) -> np.ndarray:
    """Inputs ``z A + noise * e`` with ``z ~ N(0, I)`` latent factors and ``e ~ N(0, I)``."""
    latent = rng.standard_normal((n_samples, mixing.shape[0]))
    return latent @ mixing + noise * rng.standard_normal((n_samples, mixing.shape[1]))


def pretraining_spec(architecture: Mapping, *, n_source: int, latent_dim: int,
                     source_noise: float, n_steps: int, lr: float, mask_rate: float,
                     seed: int) -> dict:
    """Everything that determines the pre-trained weights, with its content hash as ``cache_key``."""
    spec = {
        "objective": OBJECTIVE,
        "format": PRETRAINING_FORMAT,
        "n_features": architecture["n_features"],
        "hidden": list(architecture["hidden"]),
        "source": {"distribution": "latent_factor_gaussian", "n_samples": n_source,
                   "latent_dim": latent_dim, "noise": source_noise},
        "optimizer": "adam",
        "n_steps": n_steps,
        "lr": lr,
        "mask_rate": mask_rate,
        "seed": seed,
    }
    payload = json.dumps(spec, sort_keys=True, separators=(",", ":"))
    return {**spec, "cache_key": hashlib.sha256(payload.encode()).hexdigest()[:16]}


def source_seed_sequence(seed: int) -> np.random.SeedSequence:
    """The seed sequence of the source distribution, initial weights and masks of pre-training."""
    return np.random.SeedSequence(seed, spawn_key=(SOURCE_STREAM,))


def cache_dir() -> Path:
    """``$FTSTAB_CACHE/pretrained`` or ``~/.cache/ftstab/pretrained``."""
    root = os.environ.get("FTSTAB_CACHE") or Path.home() / ".cache" / "ftstab"
    return Path(root) / "pretrained"


def pretrained_backbone(spec: Mapping) -> tuple[dict[str, np.ndarray], np.ndarray, dict]:
    """Pre-train on the source distribution of ``spec`` (see ``pretraining_spec``), or load the
    cached result once it has passed ``check_cache_entry``.

    A cache entry that fails the check is rebuilt (atomically) with a one-line warning on the
    ``synth.mlp`` logger.

    Returns
    -------
    params : dict of str to ndarray
        ``encoder.*`` and ``decoder.*`` weights.
    mixing : ndarray
        The source distribution's mixing matrix (target tasks perturb it).
    losses : dict
        ``initial_loss``, ``final_loss``, ``baseline_loss`` on a fixed evaluation mask.
    """
    path = cache_dir() / f"{spec['cache_key']}.npz"
    architecture = {"n_features": spec["n_features"], "hidden": spec["hidden"]}
    source = spec["source"]
    rng = np.random.default_rng(source_seed_sequence(spec["seed"]))
    mixing = source_mixing(spec["n_features"], source["latent_dim"], rng)
    inputs = latent_factor_inputs(mixing, source["n_samples"], noise=source["noise"], rng=rng)
    initial_params = init_pretraining_params(architecture, rng)
    arrays: dict[str, Any] | None = None
    if path.exists():
        try:
            arrays = check_cache_entry(path, spec, mixing=mixing, inputs=inputs,
                                       rng=copy.deepcopy(rng))
        except ValueError as exc:
            LOGGER.warning("ftstab: pre-training cache entry %s is unusable (%s); rebuilding it",
                           path, exc)
    if arrays is None:
        result = pretrain(initial_params, inputs, architecture=architecture,
                          n_steps=spec["n_steps"], lr=spec["lr"], mask_rate=spec["mask_rate"],
                          random_state=rng)
        arrays = {**result.params, "mixing": mixing,
                  **{name: np.float64(getattr(result, name)) for name in LOSS_NAMES}}
        write_npz_atomic(path, {**arrays, "spec": np.str_(_spec_json(spec)),
                                "digest": np.str_(array_digest(arrays))})
    mixing = arrays.pop("mixing")
    losses = {name: float(arrays.pop(name)) for name in LOSS_NAMES}
    return arrays, mixing, losses


def check_cache_entry(path: Path, spec: Mapping, *, mixing: np.ndarray, inputs: np.ndarray,
                      rng: np.random.Generator) -> dict[str, np.ndarray]:
    """The arrays of a cached pre-training, once they are shown to be what ``spec`` produces.

    Checked: the file is a readable .npz without pickles, it records ``spec`` and a digest of
    its arrays that matches them, every weight and loss is present and finite, the source
    mixing equals the one ``spec`` generates, and the cached weights reproduce the recorded
    final loss on the evaluation mask (``rng`` is the generator's state when pre-training
    started, so a rewritten or foreign entry cannot pass).

    Raises
    ------
    ValueError
        Saying which check failed.
    """
    try:
        with np.load(path, allow_pickle=False) as stored:
            arrays = {key: stored[key] for key in stored.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, KeyError) as exc:
        raise ValueError(f"not a readable .npz archive: {exc}") from None
    if not all(isinstance(value, np.ndarray) for value in arrays.values()):
        raise ValueError("not a readable .npz archive: a member is not a .npy array")
    recorded_spec, digest = arrays.pop("spec", None), arrays.pop("digest", None)
    if recorded_spec is None or str(recorded_spec) != _spec_json(spec):
        raise ValueError("it does not record this pre-training's parameters")
    if digest is None or str(digest) != array_digest(arrays):
        raise ValueError("digest mismatch")
    architecture = {"n_features": spec["n_features"], "hidden": spec["hidden"]}
    names = backbone_param_names(architecture) + decoder_param_names()
    missing = sorted(set(names + ["mixing", *LOSS_NAMES]) - set(arrays))
    if missing:
        raise ValueError(f"missing array {missing[0]!r}")
    if not all(np.all(np.isfinite(value)) for value in arrays.values()):
        raise ValueError("non-finite values")
    if not np.array_equal(arrays["mixing"], mixing):
        raise ValueError("its source distribution is not this pre-training's")
    loss = evaluation_loss({name: arrays[name] for name in names}, inputs,
                           architecture=architecture, mask_rate=spec["mask_rate"],
                           random_state=rng)
    if not np.isclose(loss, float(arrays["final_loss"]), rtol=CACHE_LOSS_RTOL, atol=0.0):
        raise ValueError(f"its weights give loss {loss!r}, not the recorded final loss "
                         f"{float(arrays['final_loss'])!r}")
    return arrays


def _spec_json(spec: Mapping) -> str:
    return json.dumps(dict(spec), sort_keys=True, separators=(",", ":"))
