"""Extractive question answering head: start and end logits per token."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from convbert.errors import ConfigError
from convbert.hookspecs import hookimpl
from convbert.outputs import QuestionAnsweringModelOutput


@dataclass
class QuestionAnsweringParams:
    num_labels: int = 2


class QuestionAnsweringHead(nn.Module):
    """Positions outside the input are clamped and ignored in the loss, as Hugging Face does."""

    def __init__(self, params: QuestionAnsweringParams, ctx) -> None:
        super().__init__()
        if params.num_labels != 2:
            raise ConfigError(
                f"{ctx.path}.num_labels: question answering needs 2 (start, end), got {params.num_labels}"
            )
        self.qa_outputs = nn.Linear(ctx.hidden_size, 2)

    def forward(
        self,
        sequence_output: torch.Tensor,
        start_positions: torch.Tensor | None = None,
        end_positions: torch.Tensor | None = None,
    ) -> QuestionAnsweringModelOutput:
        logits = self.qa_outputs(sequence_output)
        start_logits, end_logits = logits[..., 0].contiguous(), logits[..., 1].contiguous()
        loss = None
        if start_positions is not None and end_positions is not None:
            ignored = start_logits.size(1)
            start = start_positions.reshape(-1).clamp(0, ignored)
            end = end_positions.reshape(-1).clamp(0, ignored)
            loss = (
                F.cross_entropy(start_logits, start, ignore_index=ignored)
                + F.cross_entropy(end_logits, end, ignore_index=ignored)
            ) / 2
        return QuestionAnsweringModelOutput(loss=loss, start_logits=start_logits, end_logits=end_logits)


@hookimpl
def convbert_register_blocks(registry) -> None:
    registry.register("head", "question_answering", QuestionAnsweringHead, QuestionAnsweringParams,
                      config_fields={"num_labels": "num_labels"},
                      from_config=lambda c: {"num_labels": c.num_labels})
