"""Position-wise feed-forward blocks: dense, and grouped (ConvBERT's grouped linear, one batched matmul).

When training, the activation between the two projections is recomputed in backward instead of being kept:
the (B, L, intermediate) tensor after the activation is the widest activation of a layer, and autograd would
keep it next to its input. One extra elementwise pass saves a sixth of the encoder's activation memory.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.autograd.function import once_differentiable

from convbert.activations import Activation
from convbert.capture import capturing
from convbert.errors import ConfigError
from convbert.hookspecs import hookimpl
from convbert.kernels import linear as fast_linear
from convbert.kernels.linear import Linear
from convbert.kernels.precision import autocast_off


@dataclass
class DenseFFNParams:
    intermediate_size: int = 3072
    activation: str = "gelu"


@dataclass
class GroupedFFNParams:
    intermediate_size: int = 3072
    num_groups: int = 1
    activation: str = "gelu"


def grouped_matmul(x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """(N, in) x (G, in/G, out/G) -> (N, out): G block-diagonal products.

    One product per group on the CPU (G is 1 to 4; each takes the library measured faster for its shape, no
    transposes unlike ``bmm``), else one ``bmm``.
    """
    groups, size = weight.shape[0], weight.shape[1]
    if fast_linear.eligible(x, weight):
        parts = [fast_linear.product(x[:, g * size : (g + 1) * size], weight[g].t()) for g in range(groups)]
        return torch.cat(parts, 1)
    y = torch.bmm(x.reshape(-1, groups, size).transpose(0, 1), weight)  # (G, N, out/G)
    return y.transpose(0, 1).reshape(x.shape[0], groups * weight.shape[2])


def grouped_matmul_backward(
    grad: torch.Tensor, x: torch.Tensor, weight: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Gradients of ``grouped_matmul(x, weight)`` for the (N, out) ``grad``: (grad_x, grad_weight)."""
    groups, size_in, size_out = weight.shape
    if fast_linear.eligible(grad, weight):
        grad_x, grad_weight = torch.empty_like(x), torch.empty_like(weight)
        for g in range(groups):
            grad_g = grad[:, g * size_out : (g + 1) * size_out]
            grad_x[:, g * size_in : (g + 1) * size_in] = fast_linear.input_grad(grad_g, weight[g].t())
            grad_weight[g] = fast_linear.weight_grad(grad_g, x[:, g * size_in : (g + 1) * size_in]).t()
        return grad_x, grad_weight
    g = grad.reshape(-1, groups, size_out).transpose(0, 1)  # (G, N, out/G)
    grad_x = torch.bmm(g, weight.transpose(1, 2)).transpose(0, 1).reshape(x.shape)
    grad_weight = torch.bmm(x.reshape(-1, groups, size_in).permute(1, 2, 0), g)
    return grad_x, grad_weight


class _GroupedLinear(torch.autograd.Function):
    """grouped_matmul(x, weight) + bias with its hand-written backward (per-group products on the CPU)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(x, weight)
        return grouped_matmul(x, weight) + bias

    @staticmethod
    @once_differentiable
    def backward(ctx, grad: torch.Tensor):
        x, weight = ctx.saved_tensors
        grad_x, grad_weight = grouped_matmul_backward(grad, x, weight)
        return grad_x, grad_weight, grad.sum(0)


class GroupedLinear(nn.Module):
    """Split the features into G groups, each with its own (in/G x out/G) matrix: G times fewer weights.

    Weight layout (G, in/G, out/G) as Hugging Face's ``GroupedLinearLayer``, so checkpoints map one to one.
    """

    def __init__(self, in_features: int, out_features: int, groups: int) -> None:
        super().__init__()
        self.groups, self.out_features = groups, out_features
        self.weight = nn.Parameter(torch.empty(groups, in_features // groups, out_features // groups))
        self.bias = nn.Parameter(torch.zeros(out_features))
        self.init_block_weights(0.02)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        flat = x.reshape(-1, x.shape[-1])
        if fast_linear.eligible(flat, self.weight):
            return _GroupedLinear.apply(flat, self.weight, self.bias).view(*x.shape[:-1], self.out_features)
        y = grouped_matmul(flat, self.weight.to(x.dtype))
        return y.view(*x.shape[:-1], self.out_features) + self.bias.to(y.dtype)

    def init_block_weights(self, std: float) -> None:
        nn.init.normal_(self.weight, std=std)
        nn.init.zeros_(self.bias)

    def extra_repr(self) -> str:
        g, i, o = self.weight.shape
        return f"groups={g}, in_features={g * i}, out_features={g * o}"


class FeedForward(nn.Module):
    """(B, L, H) -> (B, L, H): up-projection, activation, down-projection (dense when groups == 1)."""

    def __init__(self, hidden: int, intermediate: int, groups: int, activation: str, path: str) -> None:
        super().__init__()
        if groups < 1 or hidden % groups or intermediate % groups:
            raise ConfigError(
                f"{path}.num_groups: {groups} must be >= 1 and divide both hidden_size ({hidden}) and "
                f"intermediate_size ({intermediate}); pick a common divisor such as 1, 2 or 4"
            )
        linear = Linear if groups == 1 else lambda i, o: GroupedLinear(i, o, groups)
        self.up = linear(hidden, intermediate)
        self.act = Activation(activation)
        self.down = linear(intermediate, hidden)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if type(self.up) is Linear:
            fused = fast_linear.linear_activation(x, self.up.weight, self.up.bias, self.act.name)
            if fused is not None:
                return self.down(fused)
        hidden = self.up(x)
        down = self.down
        plain = type(down) in (Linear, GroupedLinear) and not (down._forward_hooks or down._forward_pre_hooks)
        if plain and torch.is_grad_enabled() and hidden.requires_grad and not capturing():
            grouped = type(down) is GroupedLinear
            return _ActivationThenLinear.apply(hidden, down.weight, down.bias, self.act.fn, grouped)
        return down(self.act(hidden))


class _ActivationThenLinear(torch.autograd.Function):
    """down(act(u)) saving only u (and the weight): act(u) is recomputed in backward.

    Runs in u's dtype with autocast off (under autocast u is already the projection's bf16), both ways.
    Under ``torch.compile`` the plain modules are used: inductor's partitioner makes the same choice itself.
    """

    @staticmethod
    def forward(ctx, u: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, act, grouped: bool):
        with autocast_off(u.device.type):
            weight, bias = weight.to(u.dtype), bias.to(u.dtype)
            h = act(u).reshape(-1, u.shape[-1])
            y = grouped_matmul(h, weight) + bias if grouped else fast_linear.linear(h, weight, bias)
        ctx.save_for_backward(u, weight)
        ctx.act, ctx.grouped = act, grouped
        return y.view(*u.shape[:-1], y.shape[-1])

    @staticmethod
    @once_differentiable
    def backward(ctx, grad: torch.Tensor):
        u, weight = ctx.saved_tensors
        with autocast_off(u.device.type):
            with torch.enable_grad():
                leaf = u.detach().requires_grad_()
                h = ctx.act(leaf)
            grad = grad.to(u.dtype).reshape(-1, grad.shape[-1])
            flat = h.detach().reshape(-1, h.shape[-1])
            if ctx.grouped:
                grad_h, grad_weight = grouped_matmul_backward(grad, flat, weight)
            elif fast_linear.eligible(grad, weight):
                grad_h = fast_linear.input_grad(grad, weight)
                grad_weight = fast_linear.weight_grad(grad, flat)
            else:
                grad_h = grad @ weight
                grad_weight = grad.t() @ flat
            grad_bias = grad.sum(0)
            (grad_u,) = torch.autograd.grad(h, leaf, grad_h.view(h.shape))
        return grad_u, grad_weight, grad_bias, None, None


def dense_ffn(params: DenseFFNParams, ctx) -> FeedForward:
    return FeedForward(ctx.hidden_size, params.intermediate_size, 1, params.activation, ctx.path)


def grouped_ffn(params: GroupedFFNParams, ctx) -> FeedForward:
    return FeedForward(
        ctx.hidden_size, params.intermediate_size, params.num_groups, params.activation, ctx.path
    )


@hookimpl
def convbert_register_blocks(registry) -> None:
    registry.register("ffn", "dense", dense_ffn, DenseFFNParams, "Dense FFN: Linear, activation, Linear.")
    registry.register(
        "ffn", "grouped", grouped_ffn, GroupedFFNParams, "Grouped FFN: G block-diagonal linears (one bmm)."
    )
