"""Sentiment intensity: predict a sentence's mean human rating (-4..+4), a regression.

The model is Hugging Face's ``ConvBertForSequenceClassification`` with one output and the MSE loss
(``problem_type: regression``), so the trained model loads in transformers too. Metrics: Pearson's r (the
main one), Spearman's rho and the MSE on dev; the baseline predicts the training mean for every sentence.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from convbert.plugin import Task, read_jsonl, require

from convbert_sentiment_intensity.data import load_split, read_tsv
from convbert_sentiment_intensity.metrics import pearson, spearman


@dataclass
class SentimentIntensityConfig:
    name: str = "sentiment_intensity"
    head: Any = field(default_factory=lambda: {"name": "sequence_classification", "num_labels": 1,
                                               "problem_type": "regression"})


class SentimentIntensity(Task):
    """One real-valued score per text: the [CLS] state through a one-output regression head."""

    name = "sentiment_intensity"
    config_class = SentimentIntensityConfig
    data_name = "sentiment_intensity"
    record_fields = ("text", "score")
    load_shipped = staticmethod(load_split)
    metric = "pearson"
    greater_is_better = True
    chance_level = "a regression's chance level: the variance of the training scores, the MSE of their mean"

    @classmethod
    def check_config(cls, config, path):
        head = config.head
        require(head.get("num_labels") == 1, f"{path}.head.num_labels", "a regression has one output: set 1")
        require(head.get("problem_type") in (None, "regression"), f"{path}.head.problem_type",
                "must be regression (or null)")

    @classmethod
    def read_file(cls, file: Path) -> list[dict[str, Any]]:
        """The shipped TSV format (id, rating, text), or JSON lines ``{"text": str, "score": float}``."""
        return read_tsv(file) if ".tsv" in file.suffixes else read_jsonl(file)

    def encode(self, records, max_length):
        enc = self.tokenizer([r["text"] for r in records], truncation=True, max_length=max_length)
        return [{"input_ids": ids, "labels": float(r["score"])}
                for ids, r in zip(enc["input_ids"], records, strict=True)]

    def baseline(self, train, dev):
        mean = statistics.fmean(f["labels"] for f in train)
        return {"mean_prediction_mse": statistics.fmean((f["labels"] - mean) ** 2 for f in dev)}

    def chance_loss(self, train):
        """The MSE of predicting the training mean: the variance of the training scores."""
        return statistics.pvariance([f["labels"] for f in train]) if len(train) > 1 else None

    @torch.no_grad()
    def evaluate(self, module, dev, batch_size, device, autocast):
        predictions: list[float] = []
        for _, batch in self.batches(dev, batch_size, device):
            with autocast:
                out = module(**batch)
            predictions += out.logits.float().squeeze(-1).tolist()
        gold = [f["labels"] for f in dev]
        mse = statistics.fmean((p - g) ** 2 for p, g in zip(predictions, gold, strict=True))
        return {"pearson": pearson(predictions, gold), "spearman": spearman(predictions, gold), "mse": mse,
                "loss": mse}
