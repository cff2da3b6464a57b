"""A MiniLM-style BERT encoder with its tokenizer: tokenising, sentence embeddings, layer groups.

Sentence embeddings follow the model's own pipeline (its ``modules.json``): mean of the token states
over the attention mask, then L2 normalisation, so every feature vector has norm 1 (R = 1).
"""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

import numpy as np
import torch


DEFAULT_MAX_LENGTH = 128


@dataclass
class MiniLM:
    """The encoder (a ``transformers`` ``BertModel``), its tokenizer and an id of its weights."""

    model: torch.nn.Module
    tokenizer: Callable[..., Mapping[str, torch.Tensor]]
    model_id: str


def bert_config(model: torch.nn.Module) -> Any:
    """A ``BertModel``'s ``transformers`` config (its sizes: ``hidden_size``, ``num_hidden_layers``).

    ``transformers`` stays an optional extra, unknown to the type checker, and nn.Module types its
    attributes ``Tensor | Module``; the config is neither."""
    return cast(Any, model).config


def tokenize(minilm: MiniLM, texts: Sequence[str], *, max_length: int) -> dict[str, torch.Tensor]:
    """Token ids and attention mask, padded to the longest text and truncated to ``max_length``."""
    if not 2 <= max_length <= 512:
        raise ValueError(f"max_length must be in [2, 512], got {max_length}")
    return dict(minilm.tokenizer(list(texts), padding=True, truncation=True, max_length=max_length,
                                 return_tensors="pt"))


def sentence_embeddings(model: torch.nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """Mean-pooled, L2-normalised sentence embeddings (differentiable; the model's mode is kept)."""
    states = model(**batch).last_hidden_state
    mask = batch["attention_mask"].unsqueeze(-1).to(states.dtype)
    pooled = (states * mask).sum(dim=1) / mask.sum(dim=1).clamp_min(1.0)
    return torch.nn.functional.normalize(pooled, dim=-1)


def encode_texts(minilm: MiniLM, texts: Sequence[str], *, max_length: int = DEFAULT_MAX_LENGTH,
                 batch_size: int = 32) -> np.ndarray:
    """Encode ``texts`` into unit-norm sentence embeddings.

    Parameters
    ----------
    minilm : MiniLM
    texts : sequence of str
    max_length : int, default=128
        Tokens per text (longer texts are truncated), in ``[2, 512]``.
    batch_size : int, default=32
        Texts per forward pass, ``>= 1``.

    Returns
    -------
    ndarray of shape (len(texts), 384), float64
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    was_training = minilm.model.training
    minilm.model.eval()
    chunks = []
    with torch.no_grad():
        for start in range(0, len(texts), batch_size):
            batch = tokenize(minilm, texts[start:start + batch_size], max_length=max_length)
            chunks.append(sentence_embeddings(minilm.model, batch).double().numpy())
    minilm.model.train(was_training)
    return np.concatenate(chunks) if chunks else np.zeros((0, bert_config(minilm.model).hidden_size))


def parameter_groups(model: torch.nn.Module) -> list[tuple[str, list[str]]]:
    """MiniLM's parameters as ordered groups, bottom to top: embeddings, then each encoder layer.

    This is the only place that knows BERT's module names; stabilisers see groups in this order.
    """
    names = [name for name, _ in model.named_parameters()]
    layers = range(bert_config(model).num_hidden_layers)
    groups = [("embeddings", [n for n in names if n.startswith("embeddings.")])]
    groups += [(f"layer.{i}", [n for n in names if n.startswith(f"encoder.layer.{i}.")]) for i in layers]
    grouped = {n for _, members in groups for n in members}
    if grouped != set(names):
        raise ValueError(f"model: parameters outside the known groups: {sorted(set(names) - grouped)[:3]}")
    return groups
