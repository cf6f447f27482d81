"""Sequence classification (regression / single-label / multi-label) and token classification heads."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from convbert.activations import Activation
from convbert.errors import ConfigError
from convbert.hookspecs import hookimpl
from convbert.outputs import SequenceClassifierOutput, TokenClassifierOutput


def classifier_dropout(config) -> float:
    """Hugging Face's rule: ``classifier_dropout``, or the hidden dropout when it is unset."""
    dropout = config.classifier_dropout
    return float(dropout if dropout is not None else config.hidden_dropout_prob)


PROBLEM_TYPES = ("regression", "single_label_classification", "multi_label_classification")


@dataclass
class SequenceClassificationParams:
    num_labels: int = 2
    activation: str = "gelu"
    dropout: float = 0.1
    problem_type: str | None = None  # None: inferred from num_labels and the labels' dtype, as Hugging Face


class ClassifierMLP(nn.Module):
    """The first token's state -> dropout, dense, activation, dropout, projection: transformers'
    ``ConvBertClassificationHead``, under its name ``classifier`` so that recipes which find a classification
    head by name (PEFT's ``modules_to_save`` for ``SEQ_CLS``) find this one."""

    def __init__(self, hidden_size: int, num_labels: int, activation: str, dropout: float) -> None:
        super().__init__()
        self.dense = nn.Linear(hidden_size, hidden_size)
        self.act = Activation(activation)
        self.dropout = nn.Dropout(dropout)
        self.out_proj = nn.Linear(hidden_size, num_labels)

    def forward(self, sequence_output: torch.Tensor) -> torch.Tensor:
        x = self.dropout(sequence_output[:, 0])
        return self.out_proj(self.dropout(self.act(self.dense(x))))


class SequenceClassificationHead(nn.Module):
    """Logits from the first token's state (``classifier``) and the loss of the problem type."""

    def __init__(self, params: SequenceClassificationParams, ctx) -> None:
        super().__init__()
        if params.problem_type is not None and params.problem_type not in PROBLEM_TYPES:
            raise ConfigError(
                f"{ctx.path}.problem_type: {params.problem_type!r} is not one of {PROBLEM_TYPES}"
            )
        self.num_labels = params.num_labels
        self.problem_type = params.problem_type
        self.classifier = ClassifierMLP(ctx.hidden_size, params.num_labels, params.activation, params.dropout)

    def forward(
        self, sequence_output: torch.Tensor, labels: torch.Tensor | None = None
    ) -> SequenceClassifierOutput:
        logits = self.classifier(sequence_output)
        loss = None if labels is None else self.loss(logits, labels)
        return SequenceClassifierOutput(loss=loss, logits=logits)

    def loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        if self.problem_type is None:
            if self.num_labels == 1:
                self.problem_type = "regression"
            elif labels.dtype in (torch.long, torch.int):
                self.problem_type = "single_label_classification"
            else:
                self.problem_type = "multi_label_classification"
        if self.problem_type == "regression":
            if self.num_labels == 1:
                return F.mse_loss(logits.squeeze(), labels.squeeze())
            return F.mse_loss(logits, labels)
        if self.problem_type == "single_label_classification":
            return F.cross_entropy(logits.view(-1, self.num_labels), labels.view(-1))
        return F.binary_cross_entropy_with_logits(logits, labels)


@dataclass
class TokenClassificationParams:
    num_labels: int = 2
    dropout: float = 0.1


class TokenClassificationHead(nn.Module):
    """Every token's state -> dropout -> num_labels logits; labels -100 are ignored."""

    def __init__(self, params: TokenClassificationParams, ctx) -> None:
        super().__init__()
        self.num_labels = params.num_labels
        self.dropout = nn.Dropout(params.dropout)
        self.classifier = nn.Linear(ctx.hidden_size, params.num_labels)

    def forward(
        self, sequence_output: torch.Tensor, labels: torch.Tensor | None = None
    ) -> TokenClassifierOutput:
        logits = self.classifier(self.dropout(sequence_output))
        loss = None
        if labels is not None:
            loss = F.cross_entropy(logits.view(-1, self.num_labels), labels.view(-1))
        return TokenClassifierOutput(loss=loss, logits=logits)


@hookimpl
def convbert_register_blocks(registry) -> None:
    registry.register(
        "head", "sequence_classification", SequenceClassificationHead, SequenceClassificationParams,
        config_fields={"num_labels": "num_labels", "dropout": "classifier_dropout",
                       "problem_type": "problem_type"},
        from_config=lambda c: {"num_labels": c.num_labels, "activation": c.hidden_act,
                               "dropout": classifier_dropout(c), "problem_type": c.problem_type},
    )
    registry.register(
        "head", "token_classification", TokenClassificationHead, TokenClassificationParams,
        config_fields={"num_labels": "num_labels", "dropout": "classifier_dropout"},
        from_config=lambda c: {"num_labels": c.num_labels, "dropout": classifier_dropout(c)},
    )
