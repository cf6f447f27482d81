"""Sequence classification: one label per text (the shipped data: Rotten Tomatoes sentiment)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from convbert import data as shipped
from convbert.errors import DataError
from convbert.hookspecs import hookimpl
from convbert.train import metrics
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
    option = "sentiment"
    record_fields = ("text", "label")
    load_shipped = staticmethod(shipped.load_sentiment)
    metric = "accuracy"
    greater_is_better = True

    @classmethod
    def read_file(cls, file: Path) -> list[dict[str, Any]]:
        """JSON lines ({"text", "label"}), or the Rotten Tomatoes TSV format (id, rating, text: rating > 0
        is label 1, < 0 label 0, neutral sentences left out)."""
        if ".tsv" in file.suffixes:
            rows = shipped.read_sentiment_tsv(file)
            return [{"text": r["text"], "label": int(r["rating"] > 0)} for r in rows if r["rating"] != 0]
        return super().read_file(file)

    @classmethod
    def check_record(cls, record, where, seen):
        super().check_record(record, where, seen)
        cls.check_label(record["label"], where, seen)
        if not isinstance(record["text"], str):
            raise DataError(f"{where}: text must be a string, got {type(record['text']).__name__}")

    def label_names(self):
        return self.names or list(shipped.SENTIMENT_LABELS)

    def encode(self, records, max_length):
        labels = self.label_ids([r["label"] for r in records], self.path)
        check_labels(labels, self.config.head["num_labels"], self.path)
        enc = self.tokenizer([r["text"] for r in records], truncation=True, max_length=max_length)
        return [{"input_ids": ids, "labels": label}
                for ids, label in zip(enc["input_ids"], labels, strict=True)]

    @torch.no_grad()
    def evaluate(self, module, dev, batch_size, device, autocast):
        predictions, total = [], 0.0
        for chunk, batch in self.batches(dev, batch_size, device):
            with autocast:
                out = module(**batch)
            predictions += out.logits.argmax(-1).tolist()
            total += float(out.loss) * len(chunk)
        labels = [f["labels"] for f in dev]
        return {"accuracy": metrics.accuracy(predictions, labels), "loss": total / max(1, len(dev))}


@hookimpl
def convbert_register_blocks(registry) -> None:
    registry.register_task(SequenceClassification)
