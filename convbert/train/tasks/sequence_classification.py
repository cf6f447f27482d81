"""Sequence classification: one label per text or sentence pair (the shipped data: Rotten Tomatoes sentiment).

A pair (``data.text_fields=[sentence1,sentence2]``) is encoded as ``[CLS] a [SEP] b [SEP]`` with token type
ids 0 and 1, truncated as Hugging Face's ``longest_first``. Dev metrics: accuracy, and for two classes GLUE's
F1 (of class 1) and Matthews correlation.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from convbert import data as shipped
from convbert.checking import require
from convbert.data import iter_jsonl
from convbert.errors import DataError
from convbert.hookspecs import hookimpl
from convbert.train import metrics
from convbert.train.schema import TextDataConfig
from convbert.train.tasks.base import LabelNames, OneLabelPerExample, Task, check_labels


@dataclass
class SequenceClassificationConfig:
    name: str = "sequence_classification"
    head: Any = field(default_factory=lambda: {"name": "sequence_classification"})


class SequenceClassification(LabelNames, OneLabelPerExample, Task):
    """One label per text (sentiment): the [CLS] state through the classification head. Metric: accuracy."""

    name = "sequence_classification"
    config_class = SequenceClassificationConfig
    data_name = "sentiment"
    data_class = TextDataConfig
    option = "sentiment"
    record_fields: tuple[str, ...] = ("text", "label")
    load_shipped = staticmethod(shipped.load_sentiment)
    metric = "accuracy"
    greater_is_better = True

    @classmethod
    def check_data(cls, data, path):
        super().check_data(data, path)
        fields = data.text_fields
        require(1 <= len(fields) <= 2 and all(isinstance(f, str) and f for f in fields),
                f"{path}.text_fields",
                f"{fields!r}: one field (a text) or two (a sentence pair), e.g. [sentence1,sentence2]")

    @property
    def text_fields(self) -> list[str]:
        data = getattr(self, "data", None)
        return list(data.text_fields) if data is not None else ["text"]

    def features(self, data):
        self.data = data
        self.record_fields = (*self.text_fields, "label")  # this run's: a pair's two fields
        return super().features(data)

    def read_file(self, file: Path) -> list[dict[str, Any]]:
        """JSON lines ({"text", "label"}, or the ``text_fields`` of a pair), or the Rotten Tomatoes TSV format
        (id, rating, text: rating > 0 is label 1, < 0 label 0, neutral sentences left out)."""
        if ".tsv" in file.suffixes:
            rows = shipped.read_sentiment_tsv(file)
            return [{"text": r["text"], "label": int(r["rating"] > 0)} for r in rows if r["rating"] != 0]
        records: list[dict[str, Any]] = []
        seen: dict[str, Any] = {}
        for number, record in iter_jsonl(file):
            self.check_record(record, f"{file}:{number}", seen)
            records.append(record)
        return records

    def check_record(self, record, where, seen):
        missing = [k for k in self.record_fields if k not in record]
        if missing:
            fix = " (set data.text_fields to the record's text fields)" if set(missing) - {"label"} else ""
            raise DataError(f"{where}: missing {missing}; records need {', '.join(self.record_fields)}{fix}")
        self.check_label(record["label"], where, seen)
        for key in self.text_fields:
            if not isinstance(record[key], str):
                raise DataError(f"{where}: {key} must be a string, got {type(record[key]).__name__}")

    def label_names(self):
        return self.names or list(shipped.SENTIMENT_LABELS)

    def encode(self, records, max_length):
        labels = self.label_ids([r["label"] for r in records], self.path)
        check_labels(labels, self.config.head["num_labels"], self.path)
        fields = self.text_fields
        texts = [r[fields[0]] for r in records]
        if len(fields) == 1:
            enc = self.tokenizer(texts, truncation=True, max_length=max_length)
            return [{"input_ids": ids, "labels": label}
                    for ids, label in zip(enc["input_ids"], labels, strict=True)]
        pairs = [r[fields[1]] for r in records]
        enc = self.tokenizer(texts, pairs, truncation="longest_first", max_length=max_length)
        return [{"input_ids": ids, "token_type_ids": types, "labels": label}
                for ids, types, label in zip(enc["input_ids"], enc["token_type_ids"], labels, strict=True)]

    @torch.no_grad()
    def evaluate(self, module, dev, batch_size, device, autocast):
        predictions, total = [], 0.0
        for chunk, batch in self.batches(dev, batch_size, device):
            with autocast:
                out = module(**batch)
            predictions += out.logits.argmax(-1).tolist()
            total += float(out.loss) * len(chunk)
        labels = [f["labels"] for f in dev]
        result = {"accuracy": metrics.accuracy(predictions, labels), "loss": total / max(1, len(dev))}
        if self.config.head.get("num_labels") == 2:  # GLUE's binary metrics (MRPC, QQP: F1; CoLA: MCC)
            result["f1"] = metrics.f1_binary(predictions, labels)
            result["matthews_correlation"] = metrics.matthews_correlation(predictions, labels)
        return result


@hookimpl
def convbert_register_blocks(registry) -> None:
    registry.register_task(SequenceClassification)
