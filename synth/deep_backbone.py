"""A deeper, normalised MLP backbone, really pre-trained by masked-feature reconstruction.

The fine-tuning network (``build_deep_model``) is an ``encoder`` of ``depth`` blocks
``Linear -> LayerNorm -> Tanh -> DropoutSite`` (the shape of a transformer's feed-forward stack,
with a seeded dropout site after each block) and a linear ``head``. Pre-training adds a linear
``decoder`` from the last block's features to every input feature and minimises the masked
reconstruction error of :func:`synth.mlp.masked_reconstruction_loss` with full-batch Adam, as the
shallow backbone of :mod:`synth.mlp` does. Pre-trained weights are cached under
:func:`synth.mlp.cache_dir` by a hash of everything that determines them, and an entry is used only
after it has been checked to be what its parameters produce (:func:`check_deep_cache_entry`).
"""
from __future__ import annotations

import copy
import hashlib
import json
import logging
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from synth.atomic import write_npz_atomic
from synth.digest import array_digest
from synth.dropout import DropoutSite
from synth.mlp import (CACHE_LOSS_RTOL, DTYPE, LOSS_NAMES, OBJECTIVE, PretrainingResult, cache_dir,
                       latent_factor_inputs, masked_reconstruction_loss, source_mixing,
                       source_seed_sequence)
from synth.validation import check_random_state

LOGGER = logging.getLogger(__name__)

FAMILY = "layernorm_tanh"
# Bump when the pre-training procedure of this backbone changes (stale cache entries are not reused).
PRETRAINING_FORMAT = 1
# Entries per block: Linear, LayerNorm, Tanh, DropoutSite.
BLOCK = 4


class DeepMLP(nn.Module):
    """``head(encoder(x))``; encoder parameters ``encoder.<4k>.*`` (Linear) and
    ``encoder.<4k+1>.*`` (LayerNorm) for block k, dropout sites ``encoder.<4k+3>``."""

    def __init__(self, n_features: int, width: int, depth: int, n_classes: int):
        super().__init__()
        self.architecture = {"family": FAMILY, "n_features": n_features, "width": width,
                             "depth": depth, "n_classes": n_classes}
        layers: list[nn.Module] = []
        for block in range(depth):
            layers += [nn.Linear(n_features if block == 0 else width, width, dtype=DTYPE),
                       nn.LayerNorm(width, dtype=DTYPE), nn.Tanh(), DropoutSite(width)]
        self.encoder = nn.Sequential(*layers)
        self.head = nn.Linear(width, n_classes, dtype=DTYPE)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.encoder(x))


def build_deep_model(architecture: Mapping) -> DeepMLP:
    """The network for ``{"family": "layernorm_tanh", "n_features", "width", "depth", "n_classes"}``."""
    return DeepMLP(architecture["n_features"], architecture["width"], architecture["depth"],
                   architecture.get("n_classes", 1))


def backbone_param_names(architecture: Mapping) -> list[str]:
    """Encoder parameter names, bottom to top."""
    return [f"encoder.{BLOCK * block + offset}.{kind}" for block in range(architecture["depth"])
            for offset in (0, 1) for kind in ("weight", "bias")]


def init_pretraining_params(architecture: Mapping, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Encoder and decoder weights: Linear layers U(-1/sqrt(fan_in), 1/sqrt(fan_in)) as PyTorch's
    default, LayerNorm gain 1 and bias 0."""
    width, params = architecture["width"], {}
    fan_ins = [architecture["n_features"]] + [width] * (architecture["depth"] - 1)
    for block, fan_in in enumerate(fan_ins):
        bound = 1.0 / np.sqrt(fan_in)
        params[f"encoder.{BLOCK * block}.weight"] = rng.uniform(-bound, bound, size=(width, fan_in))
        params[f"encoder.{BLOCK * block}.bias"] = rng.uniform(-bound, bound, size=width)
        params[f"encoder.{BLOCK * block + 1}.weight"] = np.ones(width)
        params[f"encoder.{BLOCK * block + 1}.bias"] = np.zeros(width)
    bound = 1.0 / np.sqrt(width)
    params["decoder.weight"] = rng.uniform(-bound, bound, size=(architecture["n_features"], width))
    params["decoder.bias"] = rng.uniform(-bound, bound, size=architecture["n_features"])
    return params


def pretrain_deep(params: Mapping[str, np.ndarray], X: np.ndarray, *, architecture: Mapping,
                  n_steps: int = 300, lr: float = 1e-2, mask_rate: float = 0.25,
                  random_state=None) -> PretrainingResult:
    """Continue masked-feature-reconstruction training of encoder and decoder on inputs ``X``.

    Full-batch Adam (torch.optim.Adam), a fresh Bernoulli(``mask_rate``) mask every step; the
    losses are reported on the first mask drawn (the evaluation mask), as
    :func:`synth.mlp.pretrain` does for the shallow backbone.

    Parameters
    ----------
    params : mapping of str to ndarray
        Starting ``encoder.*`` and ``decoder.*`` weights.
    X : ndarray of shape (n, n_features)
        Unlabelled inputs.
    architecture : mapping
        ``{"n_features", "width", "depth"}``.
    n_steps : int, default=300
    lr : float, default=1e-2
    mask_rate : float, default=0.25
    random_state : int, numpy.random.Generator or None
        Seeds the masks.
    """
    encoder, decoder = _modules(params, architecture)
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
               for prefix, module in (("encoder", encoder), ("decoder", decoder))
               for key, value in module.named_parameters()}
    return PretrainingResult(params=trained, initial_loss=initial, final_loss=final,
                             baseline_loss=baseline)


def deep_evaluation_loss(params: Mapping[str, np.ndarray], X: np.ndarray, *,
                         architecture: Mapping, mask_rate: float, random_state) -> float:
    """The loss of ``params`` on the evaluation mask :func:`pretrain_deep` draws first from the same
    ``random_state``."""
    encoder, decoder = _modules(params, architecture)
    inputs = torch.as_tensor(X, dtype=DTYPE)
    mask = _mask_sampler(inputs.shape, mask_rate, random_state)()
    with torch.no_grad():
        return masked_reconstruction_loss(encoder, decoder, inputs, mask).item()


def _modules(params: Mapping[str, np.ndarray], architecture: Mapping) -> tuple[nn.Module, nn.Linear]:
    encoder = build_deep_model(architecture).encoder
    decoder = nn.Linear(architecture["width"], architecture["n_features"], dtype=DTYPE)
    modules = {"encoder": encoder, "decoder": decoder}
    with torch.no_grad():
        for name, value in params.items():
            module, _, key = name.partition(".")
            modules[module].get_parameter(key).copy_(torch.as_tensor(value, dtype=DTYPE))
    return encoder, decoder


def _mask_sampler(shape: torch.Size, mask_rate: float, random_state):
    _, rng = check_random_state(random_state)
    masks = torch.Generator().manual_seed(int(rng.integers(2**63)))
    return lambda: torch.bernoulli(torch.full(shape, mask_rate, dtype=DTYPE), generator=masks)


def deep_pretraining_spec(architecture: Mapping, *, n_source: int, latent_dim: int,
                          source_noise: float, n_steps: int, lr: float, mask_rate: float,
                          seed: int) -> dict:
    """Everything that determines the pre-trained weights, with its content hash ``cache_key``."""
    spec = {
        "objective": OBJECTIVE,
        "family": FAMILY,
        "format": PRETRAINING_FORMAT,
        "n_features": architecture["n_features"],
        "width": architecture["width"],
        "depth": architecture["depth"],
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


def pretrained_deep_backbone(spec: Mapping) -> tuple[dict[str, np.ndarray], np.ndarray, dict]:
    """Pre-train on the source distribution of ``spec`` (``deep_pretraining_spec``) or load the
    cached result once it has passed :func:`check_deep_cache_entry` (an entry that fails is
    rebuilt atomically, with a one-line warning): (``encoder.*``/``decoder.*`` weights, source
    mixing matrix, losses)."""
    path = cache_dir() / f"{spec['cache_key']}.npz"
    architecture = {key: spec[key] for key in ("n_features", "width", "depth")}
    source = spec["source"]
    rng = np.random.default_rng(source_seed_sequence(spec["seed"]))
    mixing = source_mixing(spec["n_features"], source["latent_dim"], rng)
    inputs = latent_factor_inputs(mixing, source["n_samples"], noise=source["noise"], rng=rng)
    initial_params = init_pretraining_params(architecture, rng)
    arrays: dict[str, Any] | None = None
    if path.exists():
        try:
            arrays = check_deep_cache_entry(path, spec, mixing=mixing, inputs=inputs,
                                            rng=copy.deepcopy(rng))
        except ValueError as exc:
            LOGGER.warning("ftstab: pre-training cache entry %s is unusable (%s); rebuilding it",
                           path, exc)
    if arrays is None:
        result = pretrain_deep(initial_params, inputs, architecture=architecture,
                               n_steps=spec["n_steps"], lr=spec["lr"],
                               mask_rate=spec["mask_rate"], random_state=rng)
        if not result.final_loss < result.initial_loss:
            raise ValueError(f"pre-training did not lower the reconstruction loss "
                               f"({result.initial_loss} -> {result.final_loss}); lower lr")
        arrays = {**result.params, "mixing": mixing,
                  **{name: np.float64(getattr(result, name)) for name in LOSS_NAMES}}
        write_npz_atomic(path, {**arrays, "spec": np.str_(_spec_json(spec)),
                                "digest": np.str_(array_digest(arrays))})
    mixing = arrays.pop("mixing")
    losses = {name: float(arrays.pop(name)) for name in LOSS_NAMES}
    return arrays, mixing, losses


def check_deep_cache_entry(path: Path, spec: Mapping, *, mixing: np.ndarray, inputs: np.ndarray,
                           rng: np.random.Generator) -> dict[str, np.ndarray]:
    """The arrays of a cached deep pre-training, once shown to be what ``spec`` produces: a
    readable .npz without pickles recording ``spec`` and a matching digest, every weight and loss
    present and finite, the source mixing of ``spec``, and weights that reproduce the recorded
    final loss on the evaluation mask. Raises ValueError saying which check failed."""
    try:
        with np.load(path, allow_pickle=False) as stored:
            arrays = {key: stored[key] for key in stored.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, KeyError) as exc:
        raise ValueError(f"not a readable .npz archive: {exc}") from None
    recorded_spec, digest = arrays.pop("spec", None), arrays.pop("digest", None)
    if recorded_spec is None or str(recorded_spec) != _spec_json(spec):
        raise ValueError("it does not record this pre-training's parameters")
    if digest is None or str(digest) != array_digest(arrays):
        raise ValueError("digest mismatch")
    architecture = {key: spec[key] for key in ("n_features", "width", "depth")}
    names = backbone_param_names(architecture) + ["decoder.weight", "decoder.bias"]
    missing = sorted(set(names + ["mixing", *LOSS_NAMES]) - set(arrays))
    if missing:
        raise ValueError(f"missing array {missing[0]!r}")
    if not all(np.all(np.isfinite(value)) for value in arrays.values()):
        raise ValueError("non-finite values")
    if not np.array_equal(arrays["mixing"], mixing):
        raise ValueError("its source distribution is not this pre-training's")
    loss = deep_evaluation_loss({name: arrays[name] for name in names}, inputs,
                                architecture=architecture, mask_rate=spec["mask_rate"],
                                random_state=rng)
    if not np.isclose(loss, float(arrays["final_loss"]), rtol=CACHE_LOSS_RTOL, atol=0.0):
        raise ValueError(f"its weights give loss {loss!r}, not the recorded final loss "
                         f"{float(arrays['final_loss'])!r}")
    return arrays


def _spec_json(spec: Mapping) -> str:
    return json.dumps(dict(spec), sort_keys=True, separators=(",", ":"))
