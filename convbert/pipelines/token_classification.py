"""``token-classification`` (alias ``ner``): a label per word piece, or entities merged from them, with
character offsets into the text; as transformers' TokenClassificationPipeline.

``aggregation_strategy``:

- ``"none"``: one ``{"entity", "score", "index", "word", "start", "end"}`` per word piece (``word`` is the
  piece, e.g. "##ing"; special tokens are skipped);
- ``"simple"``: adjacent pieces with the same tag are grouped (B-X starts a new group, I-X and a bare X
  continue one) into ``{"entity_group", "score", "word", "start", "end"}``, the score the mean of the pieces';
- ``"first"``, ``"average"``, ``"max"``: pieces are first merged into words (a piece is a continuation when
  its text differs in length from the characters it covers, i.e. it carries "##"), the word's label taken from
  its first piece, from the mean of its pieces' scores, or from its most confident piece; then grouped as
  "simple".

Results whose label is in ``ignore_labels`` (default ``["O"]``) are left out. With ``stride`` a text longer
than the tokenizer's ``model_max_length`` is read in overlapping windows and overlapping entities are resolved
(the longer wins, then the higher score), as transformers does.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from convbert.errors import InputError
from convbert.modeling import ConvBertForTokenClassification
from convbert.pipelines.base import Feature, Pipeline, PipelineInputError, Prepared

STRATEGIES = ("none", "simple", "first", "average", "max")
WORD_STRATEGIES = ("first", "average", "max")


class TokenClassificationPipeline(Pipeline):
    """``pipe(text_or_texts, aggregation_strategy="none", ignore_labels=["O"], stride=None)``: a list of
    entities per text (a list of such lists for a list of texts)."""

    task = "token-classification"
    aliases = ("ner",)
    model_class = ConvBertForTokenClassification
    needs_offsets = True

    def sanitize(self, params: dict[str, Any]) -> dict[str, Any]:
        params = self.reject_unknown(params, {"aggregation_strategy": "none", "ignore_labels": None,
                                              "stride": None})
        given = params["aggregation_strategy"]
        strategy = str(getattr(given, "value", given)).lower()
        if strategy not in STRATEGIES:
            raise InputError(f"aggregation_strategy must be one of {', '.join(STRATEGIES)}, got "
                             f"{params['aggregation_strategy']!r}")
        params["aggregation_strategy"] = strategy
        labels = params["ignore_labels"]
        if labels is None:
            params["ignore_labels"] = ["O"]
        elif not isinstance(labels, (list, tuple, set)) or not all(isinstance(x, str) for x in labels):
            raise InputError(f"ignore_labels must be a list of label names, got {labels!r}")
        stride = params["stride"]
        if stride is not None:
            if not isinstance(stride, int) or isinstance(stride, bool) or stride < 0:
                raise InputError(f"stride must be a non-negative int, got {stride!r}")
            if stride >= self.tokenizer.model_max_length:
                raise InputError(f"stride={stride} must be less than the tokenizer's model_max_length "
                                 f"({self.tokenizer.model_max_length}), less the special tokens")
            if strategy == "none":
                raise InputError("stride reads a long text in windows, whose word pieces overlap: pick an "
                                 "aggregation_strategy other than 'none' (e.g. 'simple') to merge them")
        return params

    def __call__(self, inputs: str | list[str], **kwargs: Any) -> Any:
        if isinstance(inputs, (list, tuple)) and not inputs:
            raise InputError("token-classification needs at least one text")
        return super().__call__(inputs, **kwargs)

    def preprocess(self, index: int, item: Any, params: dict[str, Any]) -> list[Feature]:
        if not isinstance(item, str):
            raise PipelineInputError(index, "token-classification takes a text (str), got "
                                            f"{type(item).__name__}")
        windows = {}
        if params["stride"] is not None:
            windows = {"return_overflowing_tokens": True, "padding": True, "stride": params["stride"]}
        encoded = self.encode(index, item, truncation=True, return_special_tokens_mask=True,
                              return_offsets_mapping=True, **windows)
        rows = encoded["input_ids"] if windows else [encoded["input_ids"]]
        features = []
        for row in range(len(rows)):
            def take(key: str, row: int = row) -> list:
                return list(encoded[key][row] if windows else encoded[key])

            self.check_length(index, take("input_ids"),
                              "save the tokenizer with a model_max_length the model can read")
            features.append(Feature(
                {k: take(k) for k in ("input_ids", "token_type_ids", "attention_mask")},
                {"special_tokens_mask": take("special_tokens_mask"), "offsets": take("offset_mapping")},
            ))
        return features

    def postprocess(self, prepared: Prepared, outputs: list[dict[str, torch.Tensor]], params: dict[str, Any]):
        strategy, ignore = params["aggregation_strategy"], params["ignore_labels"]
        entities = []
        for feature, out in zip(prepared.features, outputs, strict=True):
            n = len(feature)
            rows = out["logits"].float().numpy()
            if self.tokenizer.padding_side == "left":  # the feature's tokens end the padded row
                rows = rows[len(rows) - n:]
            logits = rows[:n]
            shifted = np.exp(logits - np.max(logits, axis=-1, keepdims=True))
            scores = shifted / shifted.sum(axis=-1, keepdims=True)
            pieces = self.gather(prepared.item, feature, scores)
            for entity in self.aggregate(pieces, strategy):
                if entity.get("entity") not in ignore and entity.get("entity_group") not in ignore:
                    entities.append(entity)
        if len(outputs) > 1:
            entities = resolve_overlaps(entities)
        return entities

    def gather(self, sentence: str, feature: Feature, scores: np.ndarray) -> list[dict[str, Any]]:
        """One record per word piece that is not a special (or padding) token."""
        pieces = []
        ids, special = feature.inputs["input_ids"], feature.meta["special_tokens_mask"]
        for index, token_scores in enumerate(scores):
            if special[index]:
                continue
            word = self.tokenizer.convert_ids_to_tokens(int(ids[index]))
            start, end = (int(x) for x in feature.meta["offsets"][index])
            covered = sentence[start:end]
            is_subword = len(word) != len(covered)
            if int(ids[index]) == self.tokenizer.unk_token_id:
                word, is_subword = covered, False
            pieces.append({"word": word, "scores": token_scores, "start": start, "end": end, "index": index,
                           "is_subword": is_subword})
        return pieces

    def label(self, index: Any) -> str:
        return self.model.config.id2label[int(index)]

    def aggregate(self, pieces: list[dict[str, Any]], strategy: str) -> list[dict[str, Any]]:
        if strategy in ("none", "simple"):
            entities = []
            for piece in pieces:
                best = int(piece["scores"].argmax())
                entities.append({"entity": self.label(best), "score": float(piece["scores"][best]),
                                 "index": piece["index"], "word": piece["word"], "start": piece["start"],
                                 "end": piece["end"]})
            if strategy == "none":
                return entities
        else:
            entities = [self.aggregate_word(word, strategy) for word in words_of(pieces)]
        return self.group_entities(entities)

    def aggregate_word(self, pieces: list[dict[str, Any]], strategy: str) -> dict[str, Any]:
        """The pieces of one word as one entity, labelled by ``strategy``."""
        if strategy == "first":
            scores = pieces[0]["scores"]
        elif strategy == "max":
            scores = max(pieces, key=lambda piece: piece["scores"].max())["scores"]
        else:
            scores = np.nanmean(np.stack([piece["scores"] for piece in pieces]), axis=0)
        best = int(scores.argmax())
        return {
            "entity": self.label(best),
            "score": float(scores[best]),
            "word": self.tokenizer.convert_tokens_to_string([piece["word"] for piece in pieces]),
            "start": pieces[0]["start"],
            "end": pieces[-1]["end"],
        }

    def group_entities(self, entities: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Adjacent entities of the same tag, not interrupted by a B- tag, as one group each."""
        groups, current = [], []
        for entity in entities:
            if current:
                bi, tag = split_tag(entity["entity"])
                _, last_tag = split_tag(current[-1]["entity"])
                if tag != last_tag or bi == "B":
                    groups.append(self.group(current))
                    current = []
            current.append(entity)
        if current:
            groups.append(self.group(current))
        return groups

    def group(self, entities: list[dict[str, Any]]) -> dict[str, Any]:
        return {
            "entity_group": entities[0]["entity"].split("-", 1)[-1],
            "score": float(np.nanmean([entity["score"] for entity in entities])),
            "word": self.tokenizer.convert_tokens_to_string([entity["word"] for entity in entities]),
            "start": entities[0]["start"],
            "end": entities[-1]["end"],
        }


def words_of(pieces: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """Word pieces grouped into words: a continuation piece joins the word before it."""
    words: list[list[dict[str, Any]]] = []
    for piece in pieces:
        if words and piece["is_subword"]:
            words[-1].append(piece)
        else:
            words.append([piece])
    return words


def split_tag(label: str) -> tuple[str, str]:
    """("B" or "I", tag): "B-PER" -> ("B", "PER"), "I-PER" -> ("I", "PER"), "PER" -> ("I", "PER")."""
    if label.startswith(("B-", "I-")):
        return label[0], label[2:]
    return "I", label


def resolve_overlaps(entities: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Entities of overlapping windows: of two that overlap, the longer (then the more confident) stays."""
    if not entities:
        return entities
    entities = sorted(entities, key=lambda entity: entity["start"])
    kept, previous = [], entities[0]
    for entity in entities:
        if previous["start"] <= entity["start"] < previous["end"]:
            length, previous_length = entity["end"] - entity["start"], previous["end"] - previous["start"]
            longer = length > previous_length
            if longer or (length == previous_length and entity["score"] > previous["score"]):
                previous = entity
        else:
            kept.append(previous)
            previous = entity
    kept.append(previous)
    return kept
