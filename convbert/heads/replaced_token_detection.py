"""Replaced-token detection head: ELECTRA's discriminator head, ConvBERT's pretraining objective.

Each token's state goes through dense, activation and a dense layer to one logit: "was this token replaced
by the generator?". The loss is binary cross-entropy over the real (non-padding) tokens, as ELECTRA.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from convbert.activations import Activation
from convbert.hookspecs import hookimpl
from convbert.outputs import ModelOutput, Tensors


@dataclass
class ReplacedTokenDetectionParams:
    activation: str = "gelu"


@dataclass
class ReplacedTokenDetectionOutput(ModelOutput):
    loss: torch.Tensor | None = None
    logits: torch.Tensor | None = None  # (B, L): > 0 means "replaced"
    hidden_states: Tensors | None = None
    attentions: Tensors | None = None


class ReplacedTokenDetectionHead(nn.Module):
    """(B, L, H) -> (B, L) logits; ``labels`` (B, L) are 1 where the token was replaced, 0 where original."""

    def __init__(self, params: ReplacedTokenDetectionParams, ctx) -> None:
        super().__init__()
        self.dense = nn.Linear(ctx.hidden_size, ctx.hidden_size)
        self.act = Activation(params.activation)
        self.dense_prediction = nn.Linear(ctx.hidden_size, 1)

    def forward(
        self,
        sequence_output: torch.Tensor,
        labels: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
    ) -> ReplacedTokenDetectionOutput:
        logits = self.dense_prediction(self.act(self.dense(sequence_output))).squeeze(-1)
        loss = None
        if labels is not None:
            per_token = F.binary_cross_entropy_with_logits(logits.float(), labels.float(), reduction="none")
            if attention_mask is None:
                loss = per_token.mean()
            else:
                keep = attention_mask.to(per_token.dtype)
                loss = (per_token * keep).sum() / keep.sum().clamp(min=1.0)
        return ReplacedTokenDetectionOutput(loss=loss, logits=logits)


@hookimpl
def convbert_register_blocks(registry) -> None:
    registry.register(
        "head", "replaced_token_detection", ReplacedTokenDetectionHead, ReplacedTokenDetectionParams
    )
