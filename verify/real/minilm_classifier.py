"""MiniLM as a classifier with the ``encoder`` / ``head`` layout the stabiliser API expects.

Inputs are float rows ``[token ids | attention mask]`` of width ``2 * max_length``, so tokenised text
fits the trainers' ``(n, d)`` input convention (token ids below 2**24 are exact in float32).
"""
from __future__ import annotations

import copy
from collections.abc import Sequence

import torch
from torch import nn

from verify.real.minilm import MiniLM, bert_config, parameter_groups, sentence_embeddings, tokenize

# MiniLM was trained contrastively on cosine similarities times 20; the head reads embeddings at the
# same scale, so that a plain SGD step moves a fresh head about as fast as it moves the encoder.
LOGIT_SCALE = 20.0

class MiniLMEncoder(nn.Module):
    """Token rows -> mean-pooled sentence embeddings (384) of norm ``scale``."""

    def __init__(self, bert: nn.Module, scale: float = 1.0) -> None:
        super().__init__()
        self.bert = bert
        self.scale = scale

    def forward(self, x: torch.Tensor, embedding_noise: torch.Tensor | None = None) -> torch.Tensor:
        """Embeddings of token rows ``x``; ``embedding_noise`` (B, L, hidden) is added to the word
        embeddings (LNSR's input perturbation)."""
        length = x.shape[-1] // 2
        ids, mask = x[..., :length].long(), x[..., length:].long()
        if embedding_noise is None:
            batch = {"input_ids": ids, "attention_mask": mask}
        else:
            embed = self.bert.get_submodule("embeddings.word_embeddings")
            batch = {"inputs_embeds": embed(ids) + embedding_noise,
                     "attention_mask": mask}
        return self.scale * sentence_embeddings(self.bert, batch)


class MiniLMClassifier(nn.Module):
    """A private copy of MiniLM (``encoder``) and a linear ``head`` on its scaled sentence embeddings."""

    def __init__(self, minilm: MiniLM, n_classes: int, *, logit_scale: float = LOGIT_SCALE) -> None:
        super().__init__()
        self.encoder = MiniLMEncoder(copy.deepcopy(minilm.model), logit_scale)
        self.head = nn.Linear(bert_config(minilm.model).hidden_size, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.encoder(x))


def token_rows(minilm: MiniLM, texts: Sequence[str], *, max_length: int) -> torch.Tensor:
    """``(len(texts), 2 * max_length)`` float32 rows of token ids and attention mask (zero padded)."""
    batch = tokenize(minilm, texts, max_length=max_length)
    ids = torch.zeros(len(texts), max_length, dtype=torch.float32)
    mask = torch.zeros(len(texts), max_length, dtype=torch.float32)
    width = batch["input_ids"].shape[1]
    ids[:, :width] = batch["input_ids"].float()
    mask[:, :width] = batch["attention_mask"].float()
    return torch.cat([ids, mask], dim=1)


def classifier_layers(model: MiniLMClassifier) -> tuple[tuple[str, ...], ...]:
    """Parameter names by layer, bottom to top: embeddings, each transformer block, then the head."""
    encoder = tuple(tuple(f"encoder.bert.{name}" for name in names)
                    for _, names in parameter_groups(model.encoder.bert))
    return (*encoder, tuple(name for name, _ in model.head.named_parameters(prefix="head")))
