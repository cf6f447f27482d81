"""Word + position + token-type embeddings, LayerNorm, dropout, and a projection when E != H."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from convbert.capture import capturing
from convbert.errors import InputError
from convbert.hookspecs import hookimpl
from convbert.kernels.dropout import Dropout
from convbert.kernels.linear import Linear


@dataclass
class BertEmbeddingsParams:
    vocab_size: int = 30522
    embedding_size: int | None = None  # None: the model's hidden size
    max_position_embeddings: int = 512
    type_vocab_size: int = 2
    pad_token_id: int | None = 0
    dropout: float = 0.1


class BertEmbeddings(nn.Module):
    """BERT's input embeddings. ConvBERT-small embeds in 128 dimensions and projects to the hidden size."""

    def __init__(self, params: BertEmbeddingsParams, ctx) -> None:
        super().__init__()
        size = params.embedding_size or ctx.hidden_size
        self.vocab_size = params.vocab_size
        self.max_positions = params.max_position_embeddings
        self.type_vocab_size = params.type_vocab_size
        self.embedding_size = size
        self.word = nn.Embedding(params.vocab_size, size, padding_idx=params.pad_token_id)
        self.position = nn.Embedding(params.max_position_embeddings, size)
        self.token_type = nn.Embedding(params.type_vocab_size, size)
        self.norm = nn.LayerNorm(size, eps=ctx.layer_norm_eps)
        self.dropout = Dropout(params.dropout)
        self.project = Linear(size, ctx.hidden_size) if size != ctx.hidden_size else None
        positions = torch.arange(params.max_position_embeddings)[None]
        self.register_buffer("position_ids", positions, persistent=False)
        ctx.shared["word_embeddings"] = self.word

    @torch.no_grad()
    def init_block_weights(self, std: float) -> None:
        """Refill the position table: a model built on the meta device and moved with ``to_empty`` holds
        garbage there until ``init_weights`` runs (the non-persistent buffer is in no checkpoint)."""
        ids = self.position_ids
        ids.copy_(torch.arange(ids.shape[-1], device=ids.device)[None])

    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
    ) -> torch.Tensor:
        _batch, length = input_ids.shape if input_ids is not None else inputs_embeds.shape[:2]
        if length > self.max_positions and position_ids is None:
            raise InputError(
                f"sequence length {length} is longer than the position table ({self.max_positions} "
                "positions, max_position_embeddings). Truncate the input (tokenizer truncation=True, "
                f"max_length={self.max_positions}) or use a model with a longer position table."
            )
        if inputs_embeds is None:
            _check_range(input_ids, self.vocab_size, "input_ids", "vocab_size")
            inputs_embeds = self.word(input_ids)
        if position_ids is None:
            position_ids = self.position_ids[:, :length]
        else:
            _check_range(position_ids, self.max_positions, "position_ids", "max_position_embeddings")
        if token_type_ids is None:
            token_type = self.token_type.weight[0]  # all-zero token types: one row, broadcast
        else:
            _check_range(token_type_ids, self.type_vocab_size, "token_type_ids", "type_vocab_size")
            token_type = self.token_type(token_type_ids)
        x = inputs_embeds + self.position(position_ids) + token_type
        x = self.dropout(self.norm(x))
        return self.project(x) if self.project is not None else x


def _check_range(ids: torch.Tensor, size: int, what: str, field: str) -> None:
    """Name an out-of-range id instead of letting the embedding raise IndexError.

    Checked only on the CPU and outside ``torch.compile`` (on an accelerator it would cost a host sync).
    """
    if ids.device.type != "cpu" or capturing() or ids.numel() == 0:
        return
    low, high = int(ids.min()), int(ids.max())
    if low < 0 or high >= size:
        bad = high if high >= size else low
        raise InputError(
            f"{what} contains {bad}, outside [0, {size - 1}] ({field}={size}). Check that the tokenizer "
            "matches the model's vocabulary, or resize the embeddings."
        )


@hookimpl
def convbert_register_blocks(registry) -> None:
    registry.register("embedding", "bert", BertEmbeddings, BertEmbeddingsParams)
