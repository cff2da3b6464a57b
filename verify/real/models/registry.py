"""The text encoders ``ftstab real`` fine-tunes, by name, and one loaded copy of each per process.

An entry names the loader (``load(cache_dir) -> verify.real.minilm.MiniLM``), the id of its weights,
and the inverse temperature of its own contrastive training (multiple-negatives ranking loss on
cosine similarities, both models), which SURT continues and the classifier's head reads at.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from verify.real.minilm import MiniLM
from verify.real.models import minilm_l3, minilm_l6


@dataclass(frozen=True)
class EncoderSpec:
    name: str
    title: str
    load: Callable[[Path], MiniLM]
    model_id: Callable[[], str]
    n_layers: int
    contrastive_scale: float = 20.0


ENCODERS: dict[str, EncoderSpec] = {spec.name: spec for spec in (
    EncoderSpec("minilm-l6", "all-MiniLM-L6-v2", minilm_l6.load, minilm_l6.model_id, 6),
    EncoderSpec("minilm-l3", "paraphrase-MiniLM-L3-v2", minilm_l3.load, minilm_l3.model_id, 3),
)}
DEFAULT_ENCODER = "minilm-l6"


def encoder_spec(name: str) -> EncoderSpec:
    if name not in ENCODERS:
        raise ValueError(f"encoder must be one of {sorted(ENCODERS)}, got {name!r}")
    return ENCODERS[name]


@lru_cache(maxsize=2)
def shared_encoder(name: str = DEFAULT_ENCODER, cache_dir: str | Path = ".") -> MiniLM:
    """The pre-trained encoder, loaded once per process (never modified: fine-tuning copies it)."""
    return encoder_spec(name).load(Path(cache_dir))
