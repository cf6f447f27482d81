"""State-dict key maps between our module names and Hugging Face's ConvBERT, both ways.

A rule pairs two templates with the same placeholders ({i}: layer index, {p}: weight or bias, {qkv}: query,
key or value) and, where the shapes differ (Hugging Face keeps the span key's depthwise and pointwise weights
as Conv1d kernels), a function each way.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

import torch

Tensor = torch.Tensor
PLACEHOLDERS = {"i": r"\d+", "p": r"weight|bias", "qkv": r"query|key|value"}
PREFIX = "convbert."


def _same(t: Tensor) -> Tensor:
    return t


@dataclass(frozen=True)
class Rule:
    ours: str
    hf: str
    to_hf: Callable[[Tensor], Tensor] = _same
    from_hf: Callable[[Tensor], Tensor] = _same


ENCODER_RULES = [
    Rule("embeddings.word.weight", "embeddings.word_embeddings.weight"),
    Rule("embeddings.position.weight", "embeddings.position_embeddings.weight"),
    Rule("embeddings.token_type.weight", "embeddings.token_type_embeddings.weight"),
    Rule("embeddings.norm.{p}", "embeddings.LayerNorm.{p}"),
    Rule("embeddings.project.{p}", "embeddings_project.{p}"),
    Rule("layers.{i}.mixer.parts.0.{qkv}.{p}", "encoder.layer.{i}.attention.self.{qkv}.{p}"),
    Rule("layers.{i}.mixer.parts.1.key_depthwise",
         "encoder.layer.{i}.attention.self.key_conv_attn_layer.depthwise.weight",
         lambda t: t.unsqueeze(1), lambda t: t.squeeze(1)),
    Rule("layers.{i}.mixer.parts.1.key_pointwise.weight",
         "encoder.layer.{i}.attention.self.key_conv_attn_layer.pointwise.weight",
         lambda t: t.unsqueeze(-1), lambda t: t.squeeze(-1)),
    Rule("layers.{i}.mixer.parts.1.key_pointwise.bias",
         "encoder.layer.{i}.attention.self.key_conv_attn_layer.bias",
         lambda t: t.unsqueeze(-1), lambda t: t.squeeze(-1)),
    Rule("layers.{i}.mixer.parts.1.kernel.{p}", "encoder.layer.{i}.attention.self.conv_kernel_layer.{p}"),
    Rule("layers.{i}.mixer.parts.1.conv_value.{p}", "encoder.layer.{i}.attention.self.conv_out_layer.{p}"),
    Rule("layers.{i}.mixer_out.{p}", "encoder.layer.{i}.attention.output.dense.{p}"),
    Rule("layers.{i}.mixer_norm.{p}", "encoder.layer.{i}.attention.output.LayerNorm.{p}"),
    Rule("layers.{i}.ffn.up.{p}", "encoder.layer.{i}.intermediate.dense.{p}"),
    Rule("layers.{i}.ffn.down.{p}", "encoder.layer.{i}.output.dense.{p}"),
    Rule("layers.{i}.ffn_norm.{p}", "encoder.layer.{i}.output.LayerNorm.{p}"),
]

HEAD_RULES: dict[str, list[Rule]] = {
    "masked_lm": [
        Rule("head.dense.{p}", "generator_predictions.dense.{p}"),
        Rule("head.norm.{p}", "generator_predictions.LayerNorm.{p}"),
        Rule("head.decoder.{p}", "generator_lm_head.{p}"),
    ],
    "sequence_classification": [
        Rule("head.classifier.dense.{p}", "classifier.dense.{p}"),
        Rule("head.classifier.out_proj.{p}", "classifier.out_proj.{p}"),
    ],
    "token_classification": [Rule("head.classifier.{p}", "classifier.{p}")],
    "question_answering": [Rule("head.qa_outputs.{p}", "qa_outputs.{p}")],
    "multiple_choice": [
        Rule("head.summary.{p}", "sequence_summary.summary.{p}"),
        Rule("head.classifier.{p}", "classifier.{p}"),
    ],
}
# Every Hugging Face ConvBERT head's prefixes: a head of another task class is recognised, not an error.
HF_HEAD_PREFIXES = (
    "generator_predictions.", "generator_lm_head.", "classifier.", "qa_outputs.", "sequence_summary."
)


def _regex(template: str) -> re.Pattern:
    pattern = re.escape(template)
    for name, sub in PLACEHOLDERS.items():
        pattern = pattern.replace(re.escape("{" + name + "}"), f"(?P<{name}>{sub})")
    return re.compile(pattern)


def _rules(head: str | None) -> list[tuple[Rule, bool]]:
    """(rule, is_encoder) for a model with ``head`` (None: the base model)."""
    return [(r, True) for r in ENCODER_RULES] + [(r, False) for r in HEAD_RULES.get(head or "", [])]


def _convert(
    state: dict[str, Tensor], head: str | None, direction: str
) -> tuple[dict[str, Tensor], list[str]]:
    task_model = head is not None
    compiled = []
    for rule, is_encoder in _rules(head):
        src, dst = (rule.ours, rule.hf) if direction == "to_hf" else (rule.hf, rule.ours)
        fn = rule.to_hf if direction == "to_hf" else rule.from_hf
        compiled.append((_regex(src), dst, fn, is_encoder))
    out, unmapped = {}, []
    for key, tensor in state.items():
        bare = key[len(PREFIX):] if key.startswith(PREFIX) else key
        for regex, template, fn, is_encoder in compiled:
            m = regex.fullmatch(bare if is_encoder else key)
            if m:
                name = template.format(**m.groupdict())
                out[(PREFIX if is_encoder and task_model else "") + name] = fn(tensor)
                break
        else:
            unmapped.append(key)
    return out, unmapped


def to_hf(state: dict[str, Tensor], head: str | None) -> tuple[dict[str, Tensor], list[str]]:
    """Our state dict -> Hugging Face names; returns (mapped, our keys that no rule covers)."""
    return _convert(state, head, "to_hf")


def from_hf(state: dict[str, Tensor], head: str | None) -> tuple[dict[str, Tensor], list[str]]:
    """A Hugging Face state dict (base model or any task class) -> our names for a model with ``head``.

    Returns (mapped, Hugging Face keys that no rule covers).
    """
    return _convert(state, head, "from_hf")


# Our own names that changed, old -> new; applied only where the old key is not the model's and the new one is
# (a self-attention part keeps its `value`).
_RENAMED = [  # both before 2026-12-08
    (re.compile(r"(^|\.)(mixer\.(?:parts\.\d+\.)?)value\."), r"\1\2conv_value."),
    (re.compile(r"(^|\.)head\.(dense|out_proj)\."), r"\1head.classifier.\2."),
]


def renamed_own_keys(state: dict[str, Tensor], ours) -> dict[str, Tensor]:
    """A state dict in our names as older versions wrote them -> today's (``ours``: the model's keys)."""
    out = {}
    for key, value in state.items():
        if key not in ours:
            for pattern, new in _RENAMED:
                candidate = pattern.sub(new, key)
                if candidate != key and candidate in ours:
                    key = candidate
                    break
        out[key] = value
    return out
