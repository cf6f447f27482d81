"""Extractive question answering: the answer's span in the context, read in overlapping windows.

Data: the shipped cloze questions, JSON lines of flattened SQuAD records, or the official SQuAD v1.1 / v2.0
JSON files (``data.train_file=train-v2.0.json``). With unanswerable questions (v2.0) a window without the
answer, and an unanswerable question, point at [CLS]; a question's no-answer score is its lowest [CLS] score
over its windows, and "no answer" is predicted when it beats the best span by more than
``null_score_threshold``. The run writes ``predictions.json`` (and ``null_odds.json`` for v2.0) in the form
the official evaluation reads.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from convbert import data as shipped
from convbert.data.squad import is_squad_file, read_squad_json
from convbert.errors import ConfigError, DataError
from convbert.hookspecs import hookimpl
from convbert.train import metrics
from convbert.train.tasks.base import Task


@dataclass
class QuestionAnsweringConfig:
    name: str = "question_answering"
    max_answer_length: int = 30
    doc_stride: int | None = 32  # tokens shared by neighbouring windows of a long context; null: truncate
    max_question_length: int | None = 48  # a longer question keeps its first tokens; null: never cut
    null_score_threshold: float = 0.0  # v2.0: predict no answer when null score - best span score > this
    version_2: bool | None = None  # unanswerable questions; null: when the data has any
    head: Any = field(default_factory=lambda: {"name": "question_answering"})


class QuestionAnswering(Task):
    """Extractive QA: start and end logits over the context's tokens (question first). A context longer than
    the window is read in overlapping windows (``doc_stride`` tokens shared by neighbours, as Hugging Face's
    run_qa): each window is a training feature (a window without the answer points at [CLS]), and a dev
    question's answer is the best-scoring span over all its windows. Metrics: SQuAD exact match and F1 of the
    best span (at most ``max_answer_length`` tokens)."""

    name = "question_answering"
    config_class = QuestionAnsweringConfig
    data_name = "qa"
    record_fields = ("context", "question", "answers")
    load_shipped = staticmethod(shipped.load_qa)
    shipped_splits = (*shipped.SPLITS, "smoke")
    metric = "f1"
    greater_is_better = True

    @classmethod
    def read_file(cls, file: Path) -> list[dict[str, Any]]:
        """An official SQuAD JSON file, or JSON lines of flattened records."""
        if is_squad_file(file):
            return read_squad_json(file)
        return super().read_file(file)

    def features(self, data):
        train, dev = super().features(data)
        answerless = any(not f["_answers"] for f in [*train, *dev])
        self.version_2 = self.config.version_2 if self.config.version_2 is not None else answerless
        return train, dev

    @classmethod
    def check_record(cls, record, where, seen):
        super().check_record(record, where, seen)
        if not isinstance(record["context"], str) or not isinstance(record["question"], str):
            raise DataError(f"{where}: context and question must be strings")
        answers = record["answers"]
        texts = answers.get("text") if isinstance(answers, dict) else None
        starts = answers.get("answer_start") if isinstance(answers, dict) else None
        ok = isinstance(texts, list) and isinstance(starts, list) and len(texts) == len(starts) \
            and all(isinstance(t, str) for t in texts) \
            and all(isinstance(s, int) and 0 <= s <= len(record["context"]) for s in starts)
        if not ok:
            shape = '{"text": [str, ...], "answer_start": [int, ...]}'
            raise DataError(f"{where}: answers must be {shape}, one character offset into the context per "
                            "answer (SQuAD's format)")

    def encode(self, records, max_length):
        self._check_windows(max_length)
        questions = self._clip_questions([r["question"] for r in records])
        stride = self.config.doc_stride
        windows = {"truncation": "only_second", "return_overflowing_tokens": True, "stride": stride}
        if stride is None:  # one window per question: the longer text is cut
            windows = {"truncation": "longest_first"}
        try:
            enc = self.tokenizer(questions, [r["context"] for r in records],
                                 max_length=max_length, return_offsets_mapping=True, **windows)
        except ValueError as exc:  # a question that leaves no room for the context's windows
            raise ConfigError(f"{self.path}: {exc} (raise data.max_length, lower {self.path}.doc_stride or "
                              f"{self.path}.max_question_length, or set {self.path}.doc_stride=null to "
                              "truncate instead)") from None
        example_of = enc["overflow_to_sample_mapping"] if stride is not None else range(len(records))
        features = []
        for n, example in enumerate(example_of):
            record = records[example]
            sequence = enc.sequence_ids(n)
            offsets = [tuple(o) if s == 1 else None
                       for o, s in zip(enc["offset_mapping"][n], sequence, strict=True)]
            start_char = record["answers"]["answer_start"][0] if record["answers"]["answer_start"] else -1
            end_char = start_char + len(record["answers"]["text"][0]) if start_char >= 0 else -1
            start = end = 0  # [CLS]: the answer is not in this window of the context
            inside = [i for i, o in enumerate(offsets)
                      if o is not None and o[0] < end_char and o[1] > start_char]
            if inside and offsets[inside[0]][0] <= start_char and offsets[inside[-1]][1] >= end_char:
                start, end = inside[0], inside[-1]
            features.append({"input_ids": enc["input_ids"][n], "token_type_ids": enc["token_type_ids"][n],
                             "start_positions": start, "end_positions": end, "_offsets": offsets,
                             "_example": int(example), "_context": record["context"],
                             "_answers": list(record["answers"]["text"]),
                             "_id": str(record.get("id", example))})
        return features

    def _check_windows(self, max_length: int) -> None:
        """Refuse settings where the longest allowed question would leave a window no new context tokens,
        before any data is read (else the first such question would stop the run)."""
        stride, limit = self.config.doc_stride, self.config.max_question_length
        if limit is not None and limit < 1:
            raise ConfigError(f"{self.path}.max_question_length={limit}: must be at least 1, or null")
        if stride is not None and stride < 0:
            raise ConfigError(f"{self.path}.doc_stride={stride}: must be 0 or more, or null to truncate")
        if stride is not None and limit is not None and max_length - 3 - limit <= stride:
            raise ConfigError(
                f"{self.path}.doc_stride={stride} with {self.path}.max_question_length={limit} and "
                f"data.max_length={max_length}: a window holds max_length - 3 - max_question_length = "
                f"{max_length - 3 - limit} context tokens, which must exceed the stride; raise "
                f"data.max_length, or lower {self.path}.doc_stride or {self.path}.max_question_length")

    def _clip_questions(self, questions: list[str]) -> list[str]:
        """Questions cut to their first ``max_question_length`` tokens, so a long one leaves the context room
        (the original SQuAD scripts' max_query_length)."""
        limit = self.config.max_question_length
        if limit is None:
            return questions
        enc = self.tokenizer(questions, add_special_tokens=False, truncation=True, max_length=limit,
                             return_offsets_mapping=True)
        return [question[:offsets[-1][1]] if len(offsets) == limit else question
                for question, offsets in zip(questions, enc["offset_mapping"], strict=True)]

    def loss(self, module, batch, rng):
        return module(**batch).loss, {}

    @torch.no_grad()
    def evaluate(self, module, dev, batch_size, device, autocast):
        best: dict[int, tuple[float, str]] = {}  # example -> (score, text) of its best span over its windows
        null: dict[int, float] = {}  # example -> its lowest [CLS] score over its windows
        answers: dict[int, list[str]] = {}
        ids: dict[int, str] = {}
        for chunk, batch in self.batches(dev, batch_size, device):
            batch = {k: v for k, v in batch.items() if k not in ("start_positions", "end_positions")}
            with autocast:
                out = module(**batch)
            logits = zip(chunk, out.start_logits.float(), out.end_logits.float(), strict=True)
            for feature, starts, ends in logits:
                example = feature["_example"]
                answers[example], ids[example] = feature["_answers"], feature.get("_id", str(example))
                span = self._best_span(feature, starts, ends)
                if example not in best or span[0] > best[example][0]:
                    best[example] = span
                null[example] = min(null.get(example, float("inf")), float(starts[0] + ends[0]))
        order = sorted(answers)
        if not getattr(self, "version_2", False):
            self.last_predictions = ({ids[e]: best[e][1] for e in order}, None)
            return metrics.squad([best[e][1] for e in order], [answers[e] for e in order])
        odds = {ids[e]: null[e] - best[e][0] for e in order}
        predictions = {ids[e]: "" if odds[ids[e]] > self.config.null_score_threshold else best[e][1]
                       for e in order}
        self.last_predictions = (predictions, odds)
        scores = metrics.squad_v2(predictions, odds, {ids[e]: answers[e] for e in order})
        return {("exact_match" if k == "exact" else k): (v if k.endswith(("total", "thresh")) else v / 100)
                for k, v in scores.items()}

    def save(self, module, directory: Path, tokenizer: Any) -> None:
        """The model, and the final dev predictions as the official evaluation reads them:
        ``predictions.json`` ({question id: answer}) and, for v2.0, ``null_odds.json`` ({question id:
        no-answer score - best span score})."""
        super().save(module, directory, tokenizer)
        predictions, odds = getattr(self, "last_predictions", ({}, None))
        if predictions:
            (directory.parent / "predictions.json").write_text(json.dumps(predictions, indent=1) + "\n")
        if odds is not None:
            (directory.parent / "null_odds.json").write_text(json.dumps(odds, indent=1) + "\n")

    def _best_span(self, feature, starts: torch.Tensor, ends: torch.Tensor) -> tuple[float, str]:
        """The highest start + end logit over the window's context spans, and that span's text."""
        offsets = feature["_offsets"]
        context = [i for i, o in enumerate(offsets) if o is not None]
        if not context:
            return float("-inf"), ""
        idx = torch.tensor(context)
        s, e = starts[idx], ends[idx]
        scores = s[:, None] + e[None, :]  # (start, end) over context tokens
        n = len(context)
        valid = torch.ones(n, n, dtype=torch.bool).triu() & ~torch.ones(n, n, dtype=torch.bool).triu(
            self.config.max_answer_length)
        scores = scores.masked_fill(~valid, float("-inf"))
        best = int(scores.argmax())
        i, j = context[best // n], context[best % n]
        return float(scores.flatten()[best]), feature["_context"][offsets[i][0]:offsets[j][1]]


@hookimpl
def convbert_register_blocks(registry) -> None:
    registry.register_task(QuestionAnswering)
