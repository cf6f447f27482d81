"""Multiple-choice head: summarise each (context, choice) sequence, score it, softmax over the choices."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from convbert.activations import Activation
from convbert.errors import ConfigError
from convbert.hookspecs import hookimpl
from convbert.outputs import MultipleChoiceModelOutput

SUMMARY_TYPES = ("last", "first", "mean", "cls_index")  # cls_index without an index: the last, as HF


# Hugging Face's sequence-summary settings, saved in config.json under their own names.
SUMMARY_KEYS = ("summary_type", "summary_use_proj", "summary_proj_to_labels", "summary_activation",
                "summary_first_dropout", "summary_last_dropout")


@dataclass
class MultipleChoiceParams:
    # Hugging Face's ConvBERT config has no summary_type, so its SequenceSummary takes the *last* position,
    # which is padding in a right-padded batch. Kept as the default for parity; "first" ([CLS]) is the
    # better choice for new fine-tuning.
    summary_type: str = "last"
    summary_use_proj: bool = False
    summary_proj_to_labels: bool = False
    num_labels: int = 2
    summary_activation: str | None = None
    summary_first_dropout: float = 0.0
    summary_last_dropout: float = 0.0


class MultipleChoiceHead(nn.Module):
    """(B * C, L, H) -> (B, C) choice logits."""

    def __init__(self, params: MultipleChoiceParams, ctx) -> None:
        super().__init__()
        if params.summary_type not in SUMMARY_TYPES:
            raise ConfigError(
                f"{ctx.path}.summary_type: {params.summary_type!r} is not one of {SUMMARY_TYPES}"
            )
        hidden = ctx.hidden_size
        self.summary_type = params.summary_type
        out = params.num_labels if params.summary_proj_to_labels and params.num_labels > 0 else hidden
        self.summary = nn.Linear(hidden, out) if params.summary_use_proj else nn.Identity()
        self.activation = (
            Activation(params.summary_activation) if params.summary_activation else nn.Identity()
        )
        self.first_dropout = nn.Dropout(params.summary_first_dropout)
        self.last_dropout = nn.Dropout(params.summary_last_dropout)
        self.classifier = nn.Linear(out, 1)

    def forward(
        self, sequence_output: torch.Tensor, labels: torch.Tensor | None = None, num_choices: int = 1
    ) -> MultipleChoiceModelOutput:
        if self.summary_type in ("last", "cls_index"):
            pooled = sequence_output[:, -1]
        elif self.summary_type == "first":
            pooled = sequence_output[:, 0]
        else:
            pooled = sequence_output.mean(dim=1)
        pooled = self.last_dropout(self.activation(self.summary(self.first_dropout(pooled))))
        logits = self.classifier(pooled).view(-1, num_choices)
        loss = None if labels is None else F.cross_entropy(logits, labels)
        return MultipleChoiceModelOutput(loss=loss, logits=logits)


@hookimpl
def convbert_register_blocks(registry) -> None:
    registry.register("head", "multiple_choice", MultipleChoiceHead, MultipleChoiceParams,
                      config_fields={"num_labels": "num_labels", **{k: k for k in SUMMARY_KEYS}},
                      from_config=lambda c: {"num_labels": c.num_labels,
                                             **{k: getattr(c, k) for k in SUMMARY_KEYS if hasattr(c, k)}})
