"""Multiple choice: score each (context, choice) pair, softmax over the choices."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from convbert import data as shipped
from convbert.errors import ConfigError, DataError
from convbert.hookspecs import hookimpl
from convbert.train import metrics
from convbert.train.tasks.base import LabelNames, OneLabelPerExample, Task, check_labels


@dataclass
class MultipleChoiceConfig:
    name: str = "multiple_choice"
    head: Any = field(default_factory=lambda: {"name": "multiple_choice"})


class MultipleChoice(OneLabelPerExample, Task):
    """Pick one of C continuations: each (context, choice) pair is scored, softmax over the choices.
    Metric: accuracy."""

    name = "multiple_choice"
    config_class = MultipleChoiceConfig
    data_name = "multiple_choice"
    record_fields = ("context", "choices", "label")
    load_shipped = staticmethod(shipped.load_multiple_choice)
    shipped_splits = (*shipped.SPLITS, "smoke")
    metric = "accuracy"
    greater_is_better = True

    @classmethod
    def check_record(cls, record, where, seen):
        super().check_record(record, where, seen)
        LabelNames.check_label(record["label"], where, seen, names=False)  # the index of the right choice
        if not isinstance(record["context"], str):
            raise DataError(f"{where}: context must be a string, got {type(record['context']).__name__}")
        if not isinstance(record["choices"], list) or not all(isinstance(c, str) for c in record["choices"]):
            raise DataError(f"{where}: choices must be a list of strings")

    def encode(self, records, max_length):
        check_labels([r["label"] for r in records], self.config.head["num_labels"], self.path)
        features = []
        for record in records:
            choices = list(record["choices"])
            enc = self.tokenizer([record["context"]] * len(choices), choices, truncation="longest_first",
                                 max_length=max_length)
            features.append({"input_ids": enc["input_ids"], "token_type_ids": enc["token_type_ids"],
                             "labels": int(record["label"])})
        sizes = {len(f["input_ids"]) for f in features}
        if len(sizes) > 1:
            raise ConfigError(f"multiple choice records have different numbers of choices {sorted(sizes)}; "
                              "every record needs the same number (it is the head's num_labels)")
        return features

    @torch.no_grad()
    def evaluate(self, module, dev, batch_size, device, autocast):
        predictions = []
        for _, batch in self.batches(dev, max(1, batch_size // 4), device):
            with autocast:
                out = module(**batch)
            predictions += out.logits.argmax(-1).tolist()
        return {"accuracy": metrics.accuracy(predictions, [f["labels"] for f in dev])}


@hookimpl
def convbert_register_blocks(registry) -> None:
    registry.register_task(MultipleChoice)
