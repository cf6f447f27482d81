"""``question-answering``: extractive answers ``{"score", "start", "end", "answer"}`` (character offsets into
the context), as transformers' QuestionAnsweringPipeline (transformers 4; transformers 5 dropped it).

A context too long for ``max_seq_len`` tokens with its question is read in overlapping windows (the fast
tokenizer's overflow, ``doc_stride`` tokens shared between neighbours). In each window the start and end
logits of tokens outside the context (question, special tokens, padding) are set to -10000 before their
softmax, except [CLS]; a span's score is p(start) * p(end), for start <= end < start + ``max_answer_len``,
[CLS] excluded. With ``align_to_words`` a span widens to whole words. Spans of the same text
(case-insensitive) from several windows add their scores; ``handle_impossible_answer`` adds the empty answer
scored by the lowest p(CLS) * p(CLS) of the windows. The ``top_k`` best are returned.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from convbert.errors import InputError
from convbert.modeling import ConvBertForQuestionAnswering
from convbert.pipelines.base import Feature, Pipeline, PipelineInputError, Prepared, check_positive, pad

NULL_SCORE = 1000000.0  # "no window seen yet" for the impossible answer's score


class QuestionAnsweringPipeline(Pipeline):
    """``pipe(question=..., context=..., top_k=1, max_answer_len=15, max_seq_len=384, doc_stride=128,
    handle_impossible_answer=False, align_to_words=True)``; also ``pipe({"question": ..., "context": ...})``
    or a list of such dicts.

    One answer is a dict, several (``top_k`` > 1) a list of dicts, best first; a list of questions gives a
    list of those (a list of one gives its result, as transformers).
    """

    task = "question-answering"
    model_class = ConvBertForQuestionAnswering
    needs_offsets = True
    output_names = ("start_logits", "end_logits")

    def sanitize(self, params: dict[str, Any]) -> dict[str, Any]:
        params = self.reject_unknown(params, {"top_k": 1, "max_answer_len": 15, "max_seq_len": None,
                                              "doc_stride": None, "handle_impossible_answer": False,
                                              "align_to_words": True})
        for name in ("top_k", "max_answer_len"):
            check_positive(name, params[name])
        check_positive("max_seq_len", params["max_seq_len"], allow_none=True)
        if params["max_seq_len"] is None:
            params["max_seq_len"] = min(self.tokenizer.model_max_length, 384, self.max_positions())
        stride = params["doc_stride"]
        if stride is None:
            params["doc_stride"] = min(params["max_seq_len"] // 2, 128)
        elif not isinstance(stride, int) or isinstance(stride, bool) or stride < 0:
            raise InputError(f"doc_stride must be a non-negative int, got {stride!r}")
        elif stride > params["max_seq_len"]:
            raise InputError(f"doc_stride ({stride}) is larger than max_seq_len ({params['max_seq_len']})")
        return params

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        items, single = self.examples(args, kwargs)
        results = self.predict(items, **kwargs)
        return results[0] if single or len(results) == 1 else results

    @staticmethod
    def examples(args: tuple, kwargs: dict[str, Any]) -> tuple[list[Any], bool]:
        """The questions of a call (popping question/context from ``kwargs``), and whether it was one."""
        if args:
            if "question" in kwargs or "context" in kwargs or len(args) > 2:
                raise InputError("pass the question and context as question=..., context=..., or one dict "
                                 "{'question': ..., 'context': ...} (or a list of them)")
            if len(args) == 2:
                return [{"question": args[0], "context": args[1]}], True
            if isinstance(args[0], (list, tuple)):
                return list(args[0]), False
            return [args[0]], True
        if "question" not in kwargs or "context" not in kwargs:
            raise InputError("question-answering needs question=... and context=... (or dicts with those "
                             "keys)")
        question, context = kwargs.pop("question"), kwargs.pop("context")
        if isinstance(question, list) and isinstance(context, str):
            return [{"question": q, "context": context} for q in question], False
        if isinstance(question, list) and isinstance(context, list):
            if len(question) != len(context):
                raise InputError(f"{len(question)} questions but {len(context)} contexts; give one context "
                                 "per question (or one context for all)")
            return [{"question": q, "context": c} for q, c in zip(question, context, strict=True)], False
        return [{"question": question, "context": context}], True

    def preprocess(self, index: int, item: Any, params: dict[str, Any]) -> list[Feature]:
        if not isinstance(item, dict):
            raise PipelineInputError(index, "question-answering takes {'question': str, 'context': str}, got "
                                            f"{type(item).__name__}")
        for key in ("question", "context"):
            if not isinstance(item.get(key), str) or not item[key]:
                got = "nothing" if key not in item else repr(item[key])
                raise PipelineInputError(index, f"{key} must be a non-empty string, got {got}")
        question_first = self.tokenizer.padding_side == "right"
        question, context = item["question"], item["context"]
        encoded = self.encode(
            index,
            question if question_first else context,
            context if question_first else question,
            truncation="only_second" if question_first else "only_first",
            max_length=params["max_seq_len"],
            stride=params["doc_stride"],
            return_overflowing_tokens=True,
            return_offsets_mapping=True,
        )
        features = []
        for row, encoding in enumerate(encoded.encodings):
            ids = list(encoded["input_ids"][row])
            self.check_length(index, ids, "lower max_seq_len")
            # 1 where a token cannot be in the answer: everything but the context, and [CLS] can (no answer)
            p_mask = [int(sequence != 1) if question_first else 0 for sequence in encoding.sequence_ids]
            cls_id = self.tokenizer.cls_token_id
            p_mask = [0 if token == cls_id else m for token, m in zip(ids, p_mask, strict=True)]
            features.append(Feature(
                {k: list(encoded[k][row]) for k in ("input_ids", "token_type_ids", "attention_mask")},
                {"p_mask": p_mask, "encoding": encoding},
            ))
        return features

    def postprocess(self, prepared: Prepared, outputs: list[dict[str, torch.Tensor]], params: dict[str, Any]):
        top_k = params["top_k"]
        context = prepared.item["context"]
        question_first = self.tokenizer.padding_side == "right"
        min_null_score = NULL_SCORE
        answers: list[dict[str, Any]] = []
        for feature, out in zip(prepared.features, outputs, strict=True):
            length = len(out["input_ids"])
            side = self.tokenizer.padding_side
            p_mask = np.asarray(pad(feature.meta["p_mask"], length, 1, side))
            starts, ends, scores, min_null_score = select_spans(
                out["start_logits"].float().numpy(), out["end_logits"].float().numpy(), p_mask,
                out["attention_mask"].numpy(), min_null_score,
                top_k * 2 + 10 if params["align_to_words"] else top_k,
                params["handle_impossible_answer"], params["max_answer_len"],
            )
            shift = length - len(feature) if side == "left" else 0
            for s, e, score in zip(starts, ends, scores, strict=True):
                start, end = char_span(feature.meta["encoding"], int(s) - shift, int(e) - shift,
                                       1 if question_first else 0, params["align_to_words"])
                text = context[start:end]
                same = next((a for a in answers if a["answer"].lower() == text.lower()), None)
                if same is not None:
                    same["score"] += float(score)
                else:
                    answers.append({"score": float(score), "start": start, "end": end, "answer": text})
        if params["handle_impossible_answer"]:
            answers.append({"score": float(min_null_score), "start": 0, "end": 0, "answer": ""})
        answers = sorted(answers, key=lambda answer: answer["score"], reverse=True)[:top_k]
        return answers[0] if len(answers) == 1 else answers


def select_spans(start: np.ndarray, end: np.ndarray, p_mask: np.ndarray, attention_mask: np.ndarray,
                 min_null_score: float, top_k: int, handle_impossible_answer: bool,
                 max_answer_len: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """The ``top_k`` best (start, end, score) token spans of one window, and the running null score."""
    allowed = (1 - p_mask) & attention_mask
    start = np.where(allowed == 0, -10000.0, start)
    end = np.where(allowed == 0, -10000.0, end)
    start = np.exp(start - start.max())
    start = start / start.sum()
    end = np.exp(end - end.max())
    end = end / end.sum()
    if handle_impossible_answer:
        min_null_score = min(min_null_score, float(start[0] * end[0]))
    start[0] = end[0] = 0.0  # [CLS] is the impossible answer, never a span
    starts, ends, scores = decode_spans(start, end, top_k, max_answer_len, allowed)
    return starts, ends, scores, min_null_score


def decode_spans(start: np.ndarray, end: np.ndarray, top_k: int, max_answer_len: int,
                 allowed: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Best spans by p(start) * p(end) with start <= end < start + max_answer_len, both ends allowed."""
    candidates = np.tril(np.triu(np.outer(start, end)), max_answer_len - 1)
    flat = candidates.flatten()
    if top_k == 1:
        order = np.array([np.argmax(flat)])
    elif len(flat) <= top_k:
        order = np.argsort(-flat)
    else:
        best = np.argpartition(-flat, top_k)[:top_k]
        order = best[np.argsort(-flat[best])]
    starts, ends = np.unravel_index(order, candidates.shape)
    ok_positions = np.nonzero(allowed)[0]
    keep = np.isin(starts, ok_positions) & np.isin(ends, ok_positions)
    starts, ends = starts[keep], ends[keep]
    return starts, ends, candidates[starts, ends]


def char_span(encoding: Any, s: int, e: int, sequence_index: int, align_to_words: bool) -> tuple[int, int]:
    """Character offsets of tokens ``s``..``e`` in the context; widened to whole words when asked."""
    if align_to_words:
        start_word, end_word = encoding.token_to_word(s), encoding.token_to_word(e)
        if start_word is not None and end_word is not None:
            try:
                return (encoding.word_to_chars(start_word, sequence_index=sequence_index)[0],
                        encoding.word_to_chars(end_word, sequence_index=sequence_index)[1])
            except Exception:  # noqa: BLE001 - the tokenizers library raises bare Exception here
                pass
    return encoding.offsets[s][0], encoding.offsets[e][1]
