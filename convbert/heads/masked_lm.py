"""Masked-LM head: the ELECTRA/ConvBERT generator prediction head, decoder tied to the word embeddings."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from convbert.activations import Activation
from convbert.hookspecs import hookimpl
from convbert.outputs import MaskedLMOutput

IGNORE_INDEX = -100


@dataclass
class MaskedLMParams:
    vocab_size: int = 30522
    embedding_size: int | None = None  # None: the embedding block's size
    activation: str = "gelu"  # Hugging Face's ConvBERT uses GELU here whatever hidden_act says
    tie_word_embeddings: bool = True


class MaskedLMHead(nn.Module):
    """(B, L, H) -> (B, L, V) logits; with ``logits_at_labels_only`` only the labelled rows (N, V).

    Pretraining labels ~15% of the tokens, so computing the vocabulary projection there alone saves most of
    the head's time and memory; the loss is the same number.
    """

    def __init__(self, params: MaskedLMParams, ctx) -> None:
        super().__init__()
        word = ctx.shared.get("word_embeddings")
        size = params.embedding_size or (word.embedding_dim if word is not None else ctx.hidden_size)
        self.vocab_size = params.vocab_size
        self.dense = nn.Linear(ctx.hidden_size, size)
        self.act = Activation(params.activation)
        self.norm = nn.LayerNorm(size, eps=ctx.layer_norm_eps)
        self.decoder = nn.Linear(size, params.vocab_size)
        self.tie_word_embeddings = params.tie_word_embeddings
        if params.tie_word_embeddings and word is not None:
            self.decoder.weight = word.weight

    def forward(
        self, sequence_output: torch.Tensor, labels: torch.Tensor | None = None, logits_at_labels_only: bool = False
    ) -> MaskedLMOutput:
        if labels is not None and logits_at_labels_only:
            selected = labels != IGNORE_INDEX
            sequence_output, labels = sequence_output[selected], labels[selected]
        logits = self.decoder(self.norm(self.act(self.dense(sequence_output))))
        loss = None
        if labels is not None:
            loss = F.cross_entropy(logits.view(-1, self.vocab_size).float(), labels.reshape(-1))
        return MaskedLMOutput(loss=loss, logits=logits)


@hookimpl
def convbert_register_blocks(registry) -> None:
    registry.register("head", "masked_lm", MaskedLMHead, MaskedLMParams)
