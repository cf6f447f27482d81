"""Mixed attention: concatenate the heads of several token mixers (ConvBERT = attention + span conv).

``parts`` maps each part's role to its mixer node (``{attention: {name: self_attention}, conv: {name:
span_conv}}``, in order), so a config swaps one part by its role: ``mixer@model.layer.mixer.parts.conv=
dynamic_conv``; a list of nodes (the normal form a saved config.json holds) works too. The head ratio decides
the split. With ``num_heads`` (the config's head count) and ``head_ratio`` set, each
part whose node leaves ``num_heads``/``head_size`` empty gets ``max(num_heads // head_ratio, 1)`` heads of
size ``head_size_rule`` decides: ``"hf"`` (Hugging Face after transformers PR #21849: the attention width is
hidden/2 and the head size grows with the ratio) or ``"paper"`` (head size hidden/num_heads fixed, each
part's width hidden/head_ratio; the layer projects the concatenation back to the hidden size).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from convbert.errors import ConfigError
from convbert.hookspecs import hookimpl
from convbert.kernels.sequence_mask import SequenceMask

HEAD_SIZE_RULES = ("hf", "paper")


@dataclass
class MixedParams:
    parts: Any = field(default_factory=lambda: {"attention": {"name": "self_attention"},
                                                "conv": {"name": "span_conv"}})
    num_heads: int | None = None
    head_ratio: int | None = None
    head_size_rule: str = "hf"
    dropout: float | None = None  # attention-probability dropout handed to parts that take one


def split_heads(hidden: int, num_heads: int, head_ratio: int, rule: str) -> tuple[int, int]:
    """(heads per part, head size) for a head ratio, by Hugging Face's or the paper's rule."""
    if rule not in HEAD_SIZE_RULES:
        raise ConfigError(f"head_size_rule {rule!r} is not one of {HEAD_SIZE_RULES}")
    heads = max(num_heads // head_ratio, 1)
    size = (hidden // heads) // 2 if rule == "hf" else hidden // num_heads
    return heads, size


def part_items(parts: Any, path: str) -> list[tuple[str, Any]]:
    """(key, node) of each part: role names of a mapping, indices of a list."""
    if isinstance(parts, dict):
        return [(str(k), v) for k, v in parts.items()]
    if isinstance(parts, (list, tuple)):
        return [(str(i), v) for i, v in enumerate(parts)]
    raise ConfigError(f"{path}.parts: expected a mapping of role -> mixer node (or a list), got {parts!r}")


class MixedAttention(nn.Module):
    """(B, L, H) -> (B, L, sum of the parts' widths); attention probabilities from the first part with any."""

    def __init__(self, params: MixedParams, ctx) -> None:
        super().__init__()
        if not params.parts:
            raise ConfigError(f"{ctx.path}.parts: a mixed block needs at least one part")
        fill: dict[str, Any] = {}
        if params.num_heads is not None and params.head_ratio is not None:
            if params.head_ratio < 1:
                raise ConfigError(f"{ctx.path}.head_ratio: must be >= 1, got {params.head_ratio}")
            fill["num_heads"], fill["head_size"] = split_heads(
                ctx.hidden_size, params.num_heads, params.head_ratio, params.head_size_rule
            )
        parts = []
        for key, node in part_items(params.parts, ctx.path):
            node = {"name": node} if isinstance(node, str) else dict(node)
            extra = dict(fill)
            if params.dropout is not None and node.get("name") == "self_attention":
                extra["dropout"] = params.dropout
            parts.append(ctx.build("mixer", node, f"parts.{key}", **extra))
        self.parts = nn.ModuleList(parts)
        self.output_size = sum(p.output_size for p in parts)

    def forward(
        self,
        hidden: torch.Tensor,
        mask: SequenceMask,
        output_attentions: bool = False,
        shared: dict | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        shared = {} if shared is None else shared
        outputs, probs = [], None
        for part in self.parts:
            out, part_probs = part(hidden, mask, output_attentions, shared)
            outputs.append(out)
            if probs is None:
                probs = part_probs
        return torch.cat(outputs, dim=-1), probs


@hookimpl
def convbert_register_blocks(registry) -> None:
    registry.register(
        "mixer", "mixed", MixedAttention, MixedParams,
        example={"num_heads": 4, "head_ratio": 2,
                 "parts": [{"name": "self_attention"},
                           {"name": "span_conv", "kernel_size": 3, "mask_padding": True}]},
    )
