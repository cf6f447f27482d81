"""Masked language modelling on a text corpus: BERT's objective, and the base of replaced-token detection.

Paragraphs are tokenized once and packed into ``[CLS] ... [SEP]`` sequences of ``max_length`` tokens
(paragraphs joined by ``[SEP]``), so almost no step is spent on padding. The prediction head runs only at
the masked positions (``logits_at_labels_only``).
"""

from __future__ import annotations

import collections
import math
from dataclasses import dataclass, field
from typing import Any

import torch

from convbert.checking import require
from convbert.data import CORPUS_SOURCES
from convbert.data.splits import stable_key
from convbert.hookspecs import hookimpl
from convbert.labels import IGNORE_INDEX
from convbert.train.model_config import embedding_width, vocab_size
from convbert.train.records import load_paragraphs, user_file
from convbert.train.schema import CorpusConfig
from convbert.train.tasks.base import Features, Task
from convbert.train.token_masking import MaskingRule, mask_tokens

DEV_MASK_SEED = 1234  # dev masks are the same at every evaluation and in every run


def pack(paragraphs: list[str], tokenizer: Any, max_length: int, limit: int | None = None) -> Features:
    """Token ids of the paragraphs, joined by [SEP] and cut into [CLS] window [SEP] sequences.

    With ``limit``, paragraphs are taken in a fixed pseudo-random order until ``limit`` sequences are full, so
    a quick run does not tokenize the whole corpus.
    """
    if limit:
        paragraphs = sorted(paragraphs, key=stable_key)
    window = max_length - 2
    stream: list[int] = []
    for start in range(0, len(paragraphs), 256):
        ids = tokenizer(paragraphs[start:start + 256], add_special_tokens=False, return_token_type_ids=False,
                        return_attention_mask=False)["input_ids"]
        for row in ids:
            if row:
                stream += [*row, tokenizer.sep_token_id]
        if limit and len(stream) >= limit * window:
            break
    sequences = [{"input_ids": [tokenizer.cls_token_id, *stream[i:i + window], tokenizer.sep_token_id]}
                 for i in range(0, max(1, len(stream) - 1), window)]
    return sequences[:limit] if limit else sequences


@dataclass
class MaskedLMConfig:
    name: str = "pretrain_mlm"
    mask_prob: float = 0.15
    mask_token_prob: float = 0.8
    random_token_prob: float = 0.1
    head: Any = field(default_factory=lambda: {"name": "masked_lm"})


class MaskedLanguageModeling(Task):
    """Predict 15% of the tokens (80% shown as [MASK], 10% random, 10% unchanged). Metric: dev MLM loss."""

    name = "pretrain_mlm"
    config_class = MaskedLMConfig
    data_name = "corpus"
    data_class = CorpusConfig
    pretraining = True
    metric = "loss"
    greater_is_better = False

    @classmethod
    def check_config(cls, config, path):
        require(0 < config.mask_prob < 1, f"{path}.mask_prob", "must be in (0, 1), e.g. 0.15")
        require(config.mask_token_prob >= 0 and config.random_token_prob >= 0
                and config.mask_token_prob + config.random_token_prob <= 1, f"{path}.mask_token_prob",
                "mask_token_prob and random_token_prob must be >= 0 and sum to at most 1 (e.g. 0.8 and 0.1)")

    @classmethod
    def check_data(cls, data, path):
        super().check_data(data, path)
        require(data.paragraphs in ("line", "blank_line"), f"{path}.paragraphs",
                f"{data.paragraphs!r} is not line or blank_line")
        require(0 < data.dev_fraction < 1, f"{path}.dev_fraction", "must be in (0, 1)")
        if data.path is not None:  # a missing file is named before anything runs
            files = [data.path] if isinstance(data.path, str) else data.path
            require(isinstance(files, list) and bool(files) and all(isinstance(f, str) for f in files),
                    f"{path}.path", f"{data.path!r} is not a file path or a list of them")
            for file in files:
                user_file(file, f"{path}.path")
        if data.path is None:
            bad = [s for s in data.sources if s not in CORPUS_SOURCES]
            require(not bad and bool(data.sources), f"{path}.sources",
                    f"{bad or '[]'}: sources are {', '.join(CORPUS_SOURCES)} (or set {path}.path=your.txt)")

    def __init__(self, config: Any, tokenizer: Any, path: str = "task") -> None:
        super().__init__(config, tokenizer, path)
        self.rule = MaskingRule(config.mask_prob, config.mask_token_prob, config.random_token_prob)

    def head_node(self, composition):
        # the head decodes into the model's own vocabulary, whatever the config says
        head = {**self.config.head, "vocab_size": vocab_size(composition)}
        head["embedding_size"] = head.get("embedding_size") or embedding_width(composition)
        return self.checked_head(head)

    def features(self, data: Any) -> tuple[Features, Features]:
        train_text, dev_text = load_paragraphs(data)
        return (pack(train_text, self.tokenizer, data.max_length, data.max_examples),
                pack(dev_text, self.tokenizer, data.max_length, data.max_dev_examples))

    def baseline(self, train, dev):
        """The dev loss of predicting each token by its training frequency alone (add-one smoothing; [CLS]
        and [SEP], never masked, left out): a masked LM (or RTD's generator) must get below it."""
        special = {self.tokenizer.cls_token_id, self.tokenizer.sep_token_id}
        counts = collections.Counter(t for f in train for t in f["input_ids"] if t not in special)
        total, vocab = sum(counts.values()), len(self.tokenizer)
        tokens = [t for f in dev for t in f["input_ids"] if t not in special]
        if not tokens:
            return {}
        loss = sum(-math.log((counts[t] + 1) / (total + vocab)) for t in tokens) / len(tokens)
        return {"unigram_loss": loss}

    def special(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """(B, L) True at [CLS], [SEP] and padding: the tokens masking never selects."""
        ids, tok = batch["input_ids"], self.tokenizer
        return (ids == tok.cls_token_id) | (ids == tok.sep_token_id) | (batch["attention_mask"] == 0)

    def corrupt(self, batch: dict[str, torch.Tensor],
                rng: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        return mask_tokens(batch["input_ids"], self.special(batch), self.rule, self.tokenizer.mask_token_id,
                           len(self.tokenizer), rng)

    def loss(self, module, batch, rng):
        corrupted, labels = self.corrupt(batch, rng)
        out = module(input_ids=corrupted, attention_mask=batch["attention_mask"], labels=labels,
                     logits_at_labels_only=True)
        return out.loss, {}

    @torch.no_grad()
    def evaluate(self, module, dev, batch_size, device, autocast):
        rng = torch.Generator(device=device).manual_seed(DEV_MASK_SEED)
        total = correct = count = 0.0
        for _, batch in self.batches(dev, batch_size, device):
            corrupted, labels = self.corrupt(batch, rng)
            with autocast:
                out = module(input_ids=corrupted, attention_mask=batch["attention_mask"], labels=labels,
                             logits_at_labels_only=True)
            n = int((labels != IGNORE_INDEX).sum())
            total += float(out.loss) * n
            correct += float((out.logits.argmax(-1) == labels[labels != IGNORE_INDEX]).sum())
            count += n
        return {"loss": total / max(1, count), "mlm_accuracy": correct / max(1, count)}


@hookimpl
def convbert_register_blocks(registry) -> None:
    registry.register_task(MaskedLanguageModeling)
