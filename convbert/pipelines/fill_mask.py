"""``fill-mask``: the most likely tokens for each [MASK] of a text, as transformers' FillMaskPipeline.

Each proposition is ``{"score", "token", "token_str", "sequence"}``: the softmax probability over the
vocabulary (or over ``targets`` only), the token id, the token decoded alone, and the text with the token in
place of the mask (special tokens dropped when there is one mask; kept when there are several, so the other
masks show).
"""

from __future__ import annotations

import logging
from typing import Any

import torch

from convbert.errors import InputError
from convbert.modeling import ConvBertForMaskedLM
from convbert.pipelines.base import Feature, Pipeline, PipelineInputError, Prepared, check_positive

logger = logging.getLogger(__name__)
MODEL_INPUTS = ("input_ids", "token_type_ids", "attention_mask")


class FillMaskPipeline(Pipeline):
    """``pipe(text, top_k=5, targets=None, tokenizer_kwargs=None)``.

    One mask: a list of ``top_k`` propositions; several masks: one such list per mask. A list of texts gives a
    list of those, except that a list of one text gives that text's result (as transformers).
    """

    task = "fill-mask"
    model_class = ConvBertForMaskedLM

    def sanitize(self, params: dict[str, Any]) -> dict[str, Any]:
        params = self.reject_unknown(params, {"top_k": 5, "targets": None, "tokenizer_kwargs": None})
        check_positive("top_k", params["top_k"])
        if params["tokenizer_kwargs"] is not None and not isinstance(params["tokenizer_kwargs"], dict):
            raise InputError(f"tokenizer_kwargs must be a dict (e.g. {{'truncation': True}}), got "
                             f"{params['tokenizer_kwargs']!r}")
        targets = params["targets"]
        params["target_ids"] = None if targets is None else self.target_ids(targets)
        return params

    def target_ids(self, targets: str | list[str]) -> list[int]:
        """Vocabulary ids of ``targets``; a target outside the vocabulary stands for its first word piece."""
        if isinstance(targets, str):
            targets = [targets]
        if not isinstance(targets, (list, tuple)) or not all(isinstance(t, str) for t in targets):
            raise InputError(f"targets must be a token (str) or a list of tokens, got {targets!r}")
        vocab = self.tokenizer.get_vocab()
        ids = []
        for target in targets:
            index = vocab.get(target)
            if index is None:
                pieces = self.tokenizer(target, add_special_tokens=False, return_attention_mask=False,
                                        return_token_type_ids=False, max_length=1,
                                        truncation=True)["input_ids"]
                if not pieces:
                    logger.warning("target %r is not in the vocabulary and tokenizes to nothing; ignored",
                                   target)
                    continue
                index = pieces[0]
                logger.warning("target %r is not in the vocabulary; using its first word piece %r", target,
                               self.tokenizer.convert_ids_to_tokens(index))
            ids.append(index)
        if not ids:
            raise InputError(f"none of the targets {list(targets)} is a token of the vocabulary or tokenizes "
                             "to one; give vocabulary tokens such as 'paris'")
        return list(dict.fromkeys(ids))

    def __call__(self, inputs: str | list[str], **kwargs: Any) -> Any:
        results = self.predict(inputs if isinstance(inputs, list) else [inputs], **kwargs)
        return results if isinstance(inputs, list) and len(inputs) != 1 else results[0]

    def preprocess(self, index: int, item: Any, params: dict[str, Any]) -> list[Feature]:
        if not isinstance(item, str):
            raise PipelineInputError(index, f"fill-mask takes a text (str), got {type(item).__name__}")
        kwargs = {k: v for k, v in (params["tokenizer_kwargs"] or {}).items() if k != "return_tensors"}
        encoded = self.encode(index, item, **kwargs)
        ids = encoded["input_ids"]
        mask = self.tokenizer.mask_token
        if self.tokenizer.mask_token_id not in ids:
            if mask in item:
                raise PipelineInputError(index, f"its {mask} is past the first {len(ids)} tokens, which is "
                                                "all that is read (truncation); shorten the text")
            shown = item if len(item) <= 60 else item[:57] + "..."
            raise PipelineInputError(index, f"no {mask} token in {shown!r}: write {mask} where the word to "
                                            f"predict goes, e.g. 'Paris is the {mask} of France.'")
        self.check_length(index, ids, "shorten the text or pass tokenizer_kwargs={'truncation': True}")
        return [Feature({k: list(encoded[k]) for k in MODEL_INPUTS if k in encoded})]

    def postprocess(self, prepared: Prepared, outputs: list[dict[str, torch.Tensor]], params: dict[str, Any]):
        out = outputs[0]
        input_ids = out["input_ids"]
        masked = torch.nonzero(input_ids == self.tokenizer.mask_token_id, as_tuple=False).squeeze(-1)
        probs = out["logits"][masked].float().softmax(dim=-1)
        target_ids, top_k = params["target_ids"], params["top_k"]
        if target_ids is not None:
            probs = probs[..., torch.tensor(target_ids)]
        values, predictions = probs.topk(min(top_k, probs.shape[-1]))
        single = values.shape[0] == 1
        result = []
        rows = zip(masked.tolist(), values.tolist(), predictions.tolist(), strict=True)
        for position, scores, picks in rows:
            row = []
            for score, pick in zip(scores, picks, strict=True):
                token = target_ids[pick] if target_ids is not None else pick
                tokens = input_ids.clone()
                tokens[position] = token
                tokens = tokens[tokens != self.tokenizer.pad_token_id].tolist()
                row.append({
                    "score": score,
                    "token": token,
                    "token_str": self.tokenizer.decode([token]),
                    "sequence": self.tokenizer.decode(tokens, skip_special_tokens=single),
                })
            result.append(row)
        return result[0] if single else result
