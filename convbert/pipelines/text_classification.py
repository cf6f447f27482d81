"""``text-classification`` (alias ``sentiment-analysis``): label scores of a text or a text pair, as
transformers' TextClassificationPipeline.

Scores: ``function_to_apply`` "sigmoid", "softmax" or "none"; by default none for a regression model
(``problem_type="regression"``), sigmoid for multi-label or single-output models, softmax otherwise.
Labels are the config's ``id2label`` names.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from convbert.errors import InputError
from convbert.modeling import ConvBertForSequenceClassification
from convbert.pipelines.base import Feature, Pipeline, PipelineInputError, Prepared, check_positive

FUNCTIONS = ("sigmoid", "softmax", "none")
TOKENIZER_KWARGS = {"truncation": None, "max_length": None}
_UNSET = object()  # top_k not given: one {"label", "score"} per text, as transformers' legacy output


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def softmax(x: np.ndarray) -> np.ndarray:
    shifted = np.exp(x - np.max(x, axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)


class TextClassificationPipeline(Pipeline):
    """``pipe(text_or_texts, top_k=..., function_to_apply=None, truncation=None, max_length=None)``.

    A text (or ``{"text": ..., "text_pair": ...}``) without ``top_k``: its best label,
    ``[{"label", "score"}]`` for a str and ``{"label", "score"}`` for a dict; a list: one such dict per text.
    With ``top_k`` (an int, or None for every label): the ``top_k`` best ``{"label", "score"}`` per text, best
    first.
    """

    task = "text-classification"
    aliases = ("sentiment-analysis",)
    model_class = ConvBertForSequenceClassification

    def sanitize(self, params: dict[str, Any]) -> dict[str, Any]:
        params = self.reject_unknown(params, {"top_k": _UNSET, "function_to_apply": None, **TOKENIZER_KWARGS})
        if params["top_k"] is not _UNSET:
            check_positive("top_k", params["top_k"], allow_none=True)
        function = params["function_to_apply"]
        if function is not None:
            name = str(getattr(function, "value", function)).lower()
            if name not in FUNCTIONS:
                raise InputError(f"function_to_apply must be one of {', '.join(FUNCTIONS)}, got {function!r}")
            params["function_to_apply"] = name
        return params

    def __call__(self, inputs: Any, **kwargs: Any) -> Any:
        if isinstance(inputs, (list, tuple)):
            return self.predict(list(inputs), **kwargs)
        result = self.predict([inputs], **kwargs)[0]
        legacy = self.parameters(**kwargs)["top_k"] is _UNSET
        return [result] if isinstance(inputs, str) and legacy else result

    def preprocess(self, index: int, item: Any, params: dict[str, Any]) -> list[Feature]:
        if isinstance(item, dict):
            if set(item) - {"text", "text_pair"} or not isinstance(item.get("text"), str) \
                    or not isinstance(item.get("text_pair", ""), str):
                raise PipelineInputError(index, f"a text pair is {{'text': str, 'text_pair': str}}, got keys "
                                                f"{sorted(item)}")
            text, pair = item["text"], item.get("text_pair")
        elif isinstance(item, str):
            text, pair = item, None
        else:
            raise PipelineInputError(index, "text-classification takes a text (str) or a pair "
                                            f"{{'text': ..., 'text_pair': ...}}, got {type(item).__name__}")
        kwargs = {k: params[k] for k in TOKENIZER_KWARGS if params[k] is not None}
        encoded = self.encode(index, text, pair, **kwargs)
        self.check_length(index, encoded["input_ids"], "shorten the text or pass truncation=True")
        return [Feature({k: list(encoded[k]) for k in ("input_ids", "token_type_ids", "attention_mask")})]

    def default_function(self) -> str:
        config = self.model.config
        problem = getattr(config, "problem_type", None)
        if problem == "regression":
            return "none"
        if problem == "multi_label_classification" or config.num_labels == 1:
            return "sigmoid"
        if problem == "single_label_classification" or config.num_labels > 1:
            return "softmax"
        return str(getattr(config, "function_to_apply", "none"))

    def postprocess(self, prepared: Prepared, outputs: list[dict[str, torch.Tensor]], params: dict[str, Any]):
        logits = outputs[0]["logits"].float().numpy()
        function = params["function_to_apply"] or self.default_function()
        scores = sigmoid(logits) if function == "sigmoid" else softmax(logits) if function == "softmax" \
            else logits
        id2label = self.model.config.id2label
        top_k = params["top_k"]
        if top_k is _UNSET:
            best = int(scores.argmax())
            return {"label": id2label[best], "score": float(scores[best])}
        ranked = sorted(({"label": id2label[i], "score": float(s)} for i, s in enumerate(scores)),
                        key=lambda entry: entry["score"], reverse=True)
        return ranked if top_k is None else ranked[:top_k]
