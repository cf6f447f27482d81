"""Token classification: a BIO tag per word (the shipped data: entity tags derived from real text)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from convbert import data as shipped
from convbert.errors import DataError
from convbert.hookspecs import hookimpl
from convbert.labels import IGNORE_INDEX
from convbert.train import metrics
from convbert.train.tasks.base import Task, check_labels


@dataclass
class TokenClassificationConfig:
    name: str = "token_classification"
    label_all_subwords: bool = False
    head: Any = field(default_factory=lambda: {"name": "token_classification"})


class TokenClassification(Task):
    """A tag per word: the word's first piece carries it (all pieces with ``label_all_subwords``).
    Metric: entity F1 over exact BIO spans."""

    name = "token_classification"
    config_class = TokenClassificationConfig
    data_name = "token_classification"
    record_fields = ("tokens", "labels")
    load_shipped = staticmethod(shipped.load_token_classification)
    metric = "f1"
    greater_is_better = True

    @classmethod
    def check_record(cls, record, where, seen):
        """``tokens`` (strings) and, one per token, integer ``labels`` or ``tags`` named as in
        convbert.data.TOKEN_LABELS (converted to labels here)."""
        if "labels" not in record and isinstance(record.get("tags"), list):
            index = {tag: i for i, tag in enumerate(shipped.TOKEN_LABELS)}
            unknown = sorted({str(t) for t in record["tags"] if t not in index})
            if unknown:
                raise DataError(f"{where}: tags {unknown} are not in convbert.data.TOKEN_LABELS "
                                f"{shipped.TOKEN_LABELS}; give integer `labels` instead")
            record["labels"] = [index[t] for t in record["tags"]]
        super().check_record(record, where, seen)
        tokens, labels = record["tokens"], record["labels"]
        if not isinstance(tokens, list) or not all(isinstance(t, str) for t in tokens):
            raise DataError(f"{where}: tokens must be a list of strings (the words of the sentence)")
        if not isinstance(labels, list) or not all(type(x) is int for x in labels):
            raise DataError(f"{where}: labels must be a list of integer tag ids, one per token")
        if len(labels) != len(tokens):
            raise DataError(f"{where}: {len(tokens)} tokens but {len(labels)} labels; give one per token")

    def label_names(self):
        """TOKEN_LABELS for the shipped data; for other label sets label 0 is O and each other an entity."""
        n = self.config.head["num_labels"]
        if n == len(shipped.TOKEN_LABELS):
            return list(shipped.TOKEN_LABELS)
        return [f"B-L{i}" if i else "O" for i in range(n)]

    def encode(self, records, max_length):
        check_labels([x for r in records for x in r["labels"]], self.config.head["num_labels"], self.path)
        enc = self.tokenizer([r["tokens"] for r in records], is_split_into_words=True, truncation=True,
                             max_length=max_length)
        features = []
        for n, record in enumerate(records):
            word_ids = enc.word_ids(n)
            labels, previous = [], None
            for word in word_ids:
                first = word is not None and word != previous
                keep = word is not None and (first or self.config.label_all_subwords)
                labels.append(record["labels"][word] if keep else IGNORE_INDEX)
                previous = word
            features.append({"input_ids": enc["input_ids"][n], "labels": labels, "_word_ids": word_ids,
                             "_gold": record["labels"]})
        return features

    def baseline(self, train, dev):
        gold = [x for f in dev for x in f["_gold"]]
        majority = metrics.majority_accuracy([x for f in train for x in f["_gold"]], gold)
        return {"majority_token_accuracy": majority}  # its entity F1 is 0: the majority tag is O

    def chance_loss(self, train):
        return metrics.entropy([x for f in train for x in f["labels"] if x != IGNORE_INDEX])

    @torch.no_grad()
    def evaluate(self, module, dev, batch_size, device, autocast):
        names = self.label_names()
        gold_tags, pred_tags, correct, count = [], [], 0, 0
        for chunk, batch in self.batches(dev, batch_size, device):
            with autocast:
                logits = module(**batch).logits
            best = logits.argmax(-1).tolist()
            for feature, row in zip(chunk, best, strict=True):
                words = [0] * len(feature["_gold"])  # words cut off by truncation are predicted "O"
                seen = set()
                for position, word in enumerate(feature["_word_ids"]):
                    if word is not None and word not in seen:
                        seen.add(word)
                        words[word] = row[position]
                correct += sum(int(p == g) for p, g in zip(words, feature["_gold"], strict=True))
                count += len(words)
                gold_tags.append([names[i] for i in feature["_gold"]])
                pred_tags.append([names[i] for i in words])
        scores = metrics.entity_f1(gold_tags, pred_tags)
        return {**scores, "token_accuracy": correct / max(1, count)}


@hookimpl
def convbert_register_blocks(registry) -> None:
    registry.register_task(TokenClassification)
