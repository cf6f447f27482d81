"""``feature-extraction``: the encoder's last hidden states, as transformers' FeatureExtractionPipeline.

A text gives a nested list ``[[[h_0 ...], [h_1 ...], ...]]`` of shape (1, tokens, hidden_size), special
tokens included; ``return_tensors=True`` gives the tensor instead. As in transformers, a text batched with
longer ones (``batch_size`` > 1) gets rows for the padding positions too.
"""

from __future__ import annotations

from typing import Any

import torch

from convbert.errors import InputError
from convbert.modeling import ConvBertModel
from convbert.pipelines.base import Feature, Pipeline, PipelineInputError, Prepared


class FeatureExtractionPipeline(Pipeline):
    """``pipe(text_or_texts, truncation=None, tokenize_kwargs=None, return_tensors=False)``.

    Any ConvBERT checkpoint fits: a task model's head is not used (a task model instance is read through its
    encoder, ``model.base_model``)."""

    task = "feature-extraction"
    model_class = ConvBertModel
    output_names = ("last_hidden_state",)

    def sanitize(self, params: dict[str, Any]) -> dict[str, Any]:
        params = self.reject_unknown(params, {"truncation": None, "tokenize_kwargs": None,
                                              "return_tensors": False})
        kwargs = params["tokenize_kwargs"]
        if kwargs is not None and not isinstance(kwargs, dict):
            raise InputError(f"tokenize_kwargs must be a dict (e.g. {{'max_length': 128}}), got {kwargs!r}")
        kwargs = dict(kwargs or {})
        if params["truncation"] is not None:
            if "truncation" in kwargs:
                raise InputError("truncation is given twice (as a parameter and in tokenize_kwargs)")
            kwargs["truncation"] = params["truncation"]
        kwargs.pop("return_tensors", None)
        params["tokenize_kwargs"] = kwargs
        return params

    def preprocess(self, index: int, item: Any, params: dict[str, Any]) -> list[Feature]:
        if not isinstance(item, str):
            raise PipelineInputError(index, "feature-extraction takes a text (str), got "
                                            f"{type(item).__name__}")
        encoded = self.encode(index, item, **params["tokenize_kwargs"])
        self.check_length(index, encoded["input_ids"], "shorten the text or pass truncation=True")
        return [Feature({k: list(encoded[k]) for k in ("input_ids", "token_type_ids", "attention_mask")})]

    def postprocess(self, prepared: Prepared, outputs: list[dict[str, torch.Tensor]], params: dict[str, Any]):
        hidden = outputs[0]["last_hidden_state"].unsqueeze(0)
        return hidden if params["return_tensors"] else hidden.tolist()
