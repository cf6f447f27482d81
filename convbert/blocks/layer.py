"""The transformer layer: a token mixer and an FFN, each with a residual and a LayerNorm.

Each sub-block's dropout and residual add are one pass (``Dropout.add``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from convbert.errors import ConfigError
from convbert.hookspecs import hookimpl
from convbert.kernels.dropout import Dropout
from convbert.kernels.linear import Linear
from convbert.kernels.sequence_mask import SequenceMask


@dataclass
class TransformerLayerParams:
    mixer: Any = field(default_factory=lambda: {"name": "mixed"})
    ffn: Any = field(default_factory=lambda: {"name": "dense"})
    dropout: float = 0.1  # hidden dropout after each sub-block, before the residual
    norm: str = "post"  # "post": BERT/ConvBERT; "pre": LayerNorm before each sub-block


class TransformerLayer(nn.Module):
    """(B, L, H) -> (B, L, H). The mixer's output width may differ from H: ``mixer_out`` projects it back."""

    def __init__(self, params: TransformerLayerParams, ctx) -> None:
        super().__init__()
        if params.norm not in ("post", "pre"):
            raise ConfigError(f"{ctx.path}.norm: {params.norm!r} is not 'post' or 'pre'")
        hidden = ctx.hidden_size
        self.pre_norm = params.norm == "pre"
        self.mixer = ctx.build("mixer", params.mixer, "mixer")
        self.mixer_out = Linear(self.mixer.output_size, hidden)
        self.mixer_norm = nn.LayerNorm(hidden, eps=ctx.layer_norm_eps)
        self.ffn = ctx.build("ffn", params.ffn, "ffn")
        self.ffn_norm = nn.LayerNorm(hidden, eps=ctx.layer_norm_eps)
        self.dropout = Dropout(params.dropout)

    def forward(
        self, hidden: torch.Tensor, mask: SequenceMask, output_attentions: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        if self.pre_norm:
            mixed, probs = self.mixer(self.mixer_norm(hidden), mask, output_attentions, {})
            hidden = self.dropout.add(self.mixer_out(mixed), hidden)
            return self.dropout.add(self.ffn(self.ffn_norm(hidden)), hidden), probs
        mixed, probs = self.mixer(hidden, mask, output_attentions, {})
        hidden = self.mixer_norm(self.dropout.add(self.mixer_out(mixed), hidden))
        hidden = self.ffn_norm(self.dropout.add(self.ffn(hidden), hidden))
        return hidden, probs


@hookimpl
def convbert_register_blocks(registry) -> None:
    registry.register(
        "layer", "transformer", TransformerLayer, TransformerLayerParams,
        example={"mixer": {"name": "mixed", "num_heads": 4, "head_ratio": 2, "parts": [
            {"name": "self_attention"}, {"name": "span_conv", "kernel_size": 3, "mask_padding": True}]},
            "ffn": {"name": "dense", "intermediate_size": 24}},
    )
