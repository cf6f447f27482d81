"""Multi-head self-attention heads through ``scaled_dot_product_attention``.

Probabilities are materialised only when asked for. Training with attention dropout on the CPU is the one
case SDPA serves badly (it falls back to its math path with a float Bernoulli mask); there a small autograd
function does the same computation with the cheap one-byte dropout mask of ``convbert.kernels.dropout``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from convbert.blocks.head_layout import head_layout
from convbert.hookspecs import hookimpl
from convbert.kernels import dropout as fast_dropout
from convbert.kernels.linear import Linear, linear
from convbert.kernels.precision import autocast_off
from convbert.kernels.sequence_mask import SequenceMask


@dataclass
class SelfAttentionParams:
    num_heads: int | None = None  # None: filled by the parent (mixed) or hidden_size // head_size
    head_size: int | None = None  # None: hidden_size // num_heads
    dropout: float = 0.1  # on the attention probabilities, as BERT
    share_query: bool = True  # publish the query projection for a span-conv sibling (ConvBERT shares it)


class _AttentionWithDropout(torch.autograd.Function):
    """softmax(q k^T * scale + mask) with dropout, times v; saves q, k, v, the probabilities and a byte mask.

    The dropout scale 1 / (1 - p) is applied to the (B, H, L, d) output, not the (B, H, L, L) probabilities.
    Everything runs in q's dtype (under autocast: the projections' bf16) with autocast off, both ways.
    """

    @staticmethod
    def forward(ctx, q, k, v, additive: torch.Tensor | None, p: float) -> torch.Tensor:
        scale = 1.0 / math.sqrt(q.shape[-1])
        with autocast_off(q.device.type):
            q, k, v = q * scale, k.to(q.dtype), v.to(q.dtype)
            scores = torch.matmul(q, k.transpose(-1, -2))  # (B, H, L, L)
            if additive is not None:
                scores += additive
            probs = torch.softmax(scores, -1)
            del scores
            keep = fast_dropout.keep_mask(probs.shape, p, probs.device)
            out = torch.matmul(fast_dropout.mask_as(keep, probs.dtype).mul_(probs), v).mul_(1.0 / (1.0 - p))
        ctx.save_for_backward(q, k, v, probs, keep)
        ctx.scale, ctx.p = scale, p
        return out

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        q, k, v, probs, keep = ctx.saved_tensors
        with autocast_off(grad.device.type):
            grad = grad.to(q.dtype) * (1.0 / (1.0 - ctx.p))
            keep = fast_dropout.mask_as(keep, probs.dtype)
            grad_v = torch.matmul((probs * keep).transpose(-1, -2), grad)
            grad_probs = torch.matmul(grad, v.transpose(-1, -2)).mul_(keep)
            del keep
            grad_scores = torch._softmax_backward_data(grad_probs, probs, -1, probs.dtype)
            del grad_probs
            grad_q = torch.matmul(grad_scores, k).mul_(ctx.scale)
            grad_k = torch.matmul(grad_scores.transpose(-1, -2), q)  # q was saved pre-scaled
        return grad_q, grad_k, grad_v, None, None


class SelfAttention(nn.Module):
    """(B, L, H) -> (B, L, num_heads * head_size). Probabilities are materialised only when asked for."""

    def __init__(self, params: SelfAttentionParams, ctx) -> None:
        super().__init__()
        hidden = ctx.hidden_size
        heads, size = head_layout(params.num_heads, params.head_size, hidden)
        self.num_heads, self.head_size = heads, size
        self.output_size = heads * size
        self.dropout = params.dropout
        self.share_query = params.share_query
        self.query = Linear(hidden, self.output_size)
        self.key = Linear(hidden, self.output_size)
        self.value = Linear(hidden, self.output_size)

    def forward(
        self,
        hidden: torch.Tensor,
        mask: SequenceMask,
        output_attentions: bool = False,
        shared: dict | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        batch, length, _ = hidden.shape
        query, key, value = self._project(hidden)
        if shared is not None and self.share_query:
            shared["query"] = query
        heads = (batch, length, self.num_heads, self.head_size)
        q, k, v = (t.view(heads).transpose(1, 2) for t in (query, key, value))
        dropout = self.dropout if self.training else 0.0
        additive = None if mask.additive is None else mask.additive.to(q.dtype)
        probs = None
        if output_attentions or (mask.has_empty_rows and torch.is_grad_enabled()):
            scores = q @ k.transpose(-1, -2) / math.sqrt(self.head_size)
            if additive is not None:
                scores = scores + additive
            probs = fast_dropout.dropout(scores.softmax(-1), dropout, self.training)
            context = probs @ v
        elif fast_dropout.fast_path(q, dropout, self.training):
            context = _AttentionWithDropout.apply(q, k, v, additive, dropout)
        else:
            context = F.scaled_dot_product_attention(q, k, v, attn_mask=additive, dropout_p=dropout)
        out = context.transpose(1, 2).reshape(batch, length, self.output_size)
        return out, probs if output_attentions else None

    def _project(self, hidden: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Query, key and value as one (H -> 3W) product: one larger GEMM, one input gradient in backward.

        The parameters stay three linears (checkpoint names unchanged); a projection that was replaced or
        hooked (adapters, pruning) is called as itself.
        """
        linears = (self.query, self.key, self.value)
        if not all(type(m) is Linear and not (m._forward_hooks or m._forward_pre_hooks) for m in linears):
            return self.query(hidden), self.key(hidden), self.value(hidden)
        weight = torch.cat([m.weight for m in linears])
        bias = torch.cat([m.bias for m in linears])
        return linear(hidden, weight, bias).split(self.output_size, dim=-1)


@hookimpl
def convbert_register_blocks(registry) -> None:
    registry.register("mixer", "self_attention", SelfAttention, SelfAttentionParams)
