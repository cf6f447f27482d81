"""Position-wise feed-forward blocks: dense, and grouped (ConvBERT's grouped linear, one batched matmul)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from convbert.activations import Activation
from convbert.errors import ConfigError
from convbert.hookspecs import hookimpl


@dataclass
class DenseFFNParams:
    intermediate_size: int = 3072
    activation: str = "gelu"


@dataclass
class GroupedFFNParams:
    intermediate_size: int = 3072
    num_groups: int = 1
    activation: str = "gelu"


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
        lead = x.shape[:-1]
        x = x.reshape(-1, self.groups, x.shape[-1] // self.groups).transpose(0, 1)  # (G, N, in/G)
        y = torch.bmm(x, self.weight.to(x.dtype))  # (G, N, out/G)
        return (y.transpose(0, 1).reshape(*lead, self.out_features)) + self.bias.to(y.dtype)

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
        self.up = nn.Linear(hidden, intermediate) if groups == 1 else GroupedLinear(hidden, intermediate, groups)
        self.act = Activation(activation)
        self.down = nn.Linear(intermediate, hidden) if groups == 1 else GroupedLinear(intermediate, hidden, groups)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down(self.act(self.up(x)))


def dense_ffn(params: DenseFFNParams, ctx) -> FeedForward:
    return FeedForward(ctx.hidden_size, params.intermediate_size, 1, params.activation, ctx.path)


def grouped_ffn(params: GroupedFFNParams, ctx) -> FeedForward:
    return FeedForward(ctx.hidden_size, params.intermediate_size, params.num_groups, params.activation, ctx.path)


@hookimpl
def convbert_register_blocks(registry) -> None:
    registry.register("ffn", "dense", dense_ffn, DenseFFNParams, "Dense FFN: Linear, activation, Linear.")
    registry.register(
        "ffn", "grouped", grouped_ffn, GroupedFFNParams, "Grouped FFN: G block-diagonal linears (one bmm)."
    )
