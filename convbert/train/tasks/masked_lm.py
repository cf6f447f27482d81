"""Masked language modelling on a text corpus: BERT's objective, and the base of replaced-token detection.

The corpus is tokenized once into a memory-mapped token store (``convbert.data.token_store``, cached by a
fingerprint of the inputs and the tokenizer) and read as packed windows of ``max_length`` tokens, two segments
where a document starts inside (``convbert.data.packed_windows``), so no step is spent on padding and memory
does not grow with the corpus. Masks are drawn per step for the global batch (``token_masking.step_draws``);
the loss is normalised by the global batch's count of masked tokens, so one process with batch B, gradient
accumulation and several processes give the same updates. The prediction head runs only at the masked
positions (``logits_at_labels_only``).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from convbert.checking import require
from convbert.data import CORPUS_SOURCES
from convbert.data.packed_windows import PackedWindows
from convbert.data.readers import expand_corpus_paths
from convbert.data.token_store import CorpusSpec, TokenStore, ensure_store
from convbert.hookspecs import hookimpl
from convbert.labels import IGNORE_INDEX
from convbert.train.model_config import embedding_width, vocab_size
from convbert.train.schema import CorpusConfig
from convbert.train.tasks.base import StepContext, Task
from convbert.train.token_masking import MaskingRule, draws, mask_tokens, step_draws

DEV_MASK_SEED = 1234  # dev masks are the same at every evaluation and in every run


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
        require(data.prepare_workers is None or data.prepare_workers >= 1, f"{path}.prepare_workers",
                "must be >= 1 or null (the CPUs this process may use)")
        if data.path is not None:  # a missing file or an empty glob is named before anything runs
            files = [data.path] if isinstance(data.path, str) else data.path
            require(isinstance(files, list) and bool(files) and all(isinstance(f, str) for f in files),
                    f"{path}.path", f"{data.path!r} is not a path, a glob, a directory or a list of them")
            expand_corpus_paths(files, f"{path}.path")
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

    # -- data ---------------------------------------------------------------------------------------------
    store_directory: Path | None = None  # set by `reuse`: a resumed run reads the store it started with

    def store(self, data: Any) -> TokenStore:
        """The corpus's token store, prepared on first use (one process per machine; the others wait)."""
        if self.store_directory is not None:
            store = TokenStore(self.store_directory)
            store.check_tokenizer(self.tokenizer)
            return store
        def say(line: str) -> None:  # whichever process prepares (or waits) says so; the bar is process 0's
            print(line, file=sys.stderr, flush=True)

        return ensure_store(CorpusSpec.from_data(data), self.tokenizer, data.cache_dir,
                            workers=data.prepare_workers, progress=self.progress, say=say)

    def features(self, data: Any) -> tuple[PackedWindows, PackedWindows]:
        """Train and dev windows of the corpus's store (read from the memory map as batches are needed)."""
        self.data = data
        self.token_store = store = self.store(data)
        tok = self.tokenizer
        ids = (tok.cls_token_id, tok.sep_token_id, tok.pad_token_id)
        train = PackedWindows(store, "train", data.max_length, *ids, limit=data.max_examples,
                              two_segments=data.two_segments)
        dev = PackedWindows(store, "dev", data.max_length, *ids, limit=data.max_dev_examples,
                            two_segments=data.two_segments)
        return train, dev

    def build(self, composition):
        self.token_types = int(composition.get("embedding", {}).get("type_vocab_size", 2))
        return super().build(composition)

    def segments(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """A model with one token type (``type_vocab_size=1``) reads both segments as type 0."""
        if "token_type_ids" in batch and getattr(self, "token_types", 2) < 2:
            batch = {**batch, "token_type_ids": torch.zeros_like(batch["token_type_ids"])}
        return batch

    def batches(self, features, batch_size, device):
        if not hasattr(features, "batch"):
            yield from super().batches(features, batch_size, device)
            return
        for start in range(0, len(features), batch_size):
            indices = range(start, min(start + batch_size, len(features)))
            yield indices, self.segments({k: v.to(device) for k, v in features.batch(indices).items()})

    def data_record(self) -> dict[str, Any] | None:
        return {"token_store": str(self.token_store.directory)}

    def reuse(self, record: dict[str, Any]) -> None:
        if record.get("token_store") and Path(record["token_store"]).is_dir():
            self.store_directory = Path(record["token_store"])

    def baseline(self, train, dev):
        """The dev loss of predicting each token by its training frequency alone (add-one smoothing; [CLS]
        and [SEP], never masked, left out): a masked LM (or RTD's generator) must get below it. The counts
        come with the store (computed when it was prepared)."""
        special = {self.tokenizer.cls_token_id, self.tokenizer.sep_token_id}
        counts = self.token_store.unigram_counts().astype(np.float64)
        vocab = len(self.tokenizer)
        counts = np.pad(counts, (0, max(0, vocab - len(counts))))
        for t in special:
            counts[t] = 0
        total = counts.sum()
        if hasattr(dev, "stride"):  # the tokens the dev windows read
            tokens = np.asarray(self.token_store.tokens("dev")[:len(dev) * dev.stride + 1], dtype=np.int64)
        else:
            tokens = np.array([t for f in dev for t in f["input_ids"]], dtype=np.int64)
        tokens = tokens[~np.isin(tokens, list(special))]
        if not len(tokens):
            return {}
        loss = float(-np.log((counts[tokens] + 1) / (total + vocab)).mean())
        return {"unigram_loss": loss}

    def special(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """(B, L) True at [CLS], [SEP] and padding: the tokens masking never selects."""
        ids, tok = batch["input_ids"], self.tokenizer
        return (ids == tok.cls_token_id) | (ids == tok.sep_token_id) | (batch["attention_mask"] == 0)

    def corrupt(self, batch: dict[str, torch.Tensor], rng: torch.Generator | None = None,
                drawn: dict[str, torch.Tensor] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        return mask_tokens(batch["input_ids"], self.special(batch), self.rule, self.tokenizer.mask_token_id,
                           len(self.tokenizer), rng, drawn)

    # -- steps --------------------------------------------------------------------------------------------
    def training_batch(self, batch: dict[str, torch.Tensor], context: StepContext) -> dict[str, torch.Tensor]:
        """The step's masks, from the (seed, step) draws of this batch's rows of the global batch."""
        drawn = step_draws(context.seed, context.step, context.global_rows, batch["input_ids"].shape[-1],
                           len(self.tokenizer), context.rows, batch["input_ids"].device)
        corrupted, labels = self.corrupt(batch, drawn=drawn)
        return {**self.segments(batch), "corrupted_ids": corrupted, "labels": labels,
                "sample_uniforms": drawn["sample"]}

    def loss_counts(self, batch: dict[str, torch.Tensor]) -> list[torch.Tensor]:
        return [(batch["labels"] != IGNORE_INDEX).sum()]

    def inputs(self, batch: dict[str, torch.Tensor], rng: torch.Generator | None) -> dict[str, torch.Tensor]:
        if "corrupted_ids" not in batch:  # called without training_batch (a plugin subclass, a test)
            batch = {**batch}
            batch["corrupted_ids"], batch["labels"] = self.corrupt(batch, rng)
        return batch

    def loss(self, module, batch, rng):
        batch = self.inputs(batch, rng)
        out = module(input_ids=batch["corrupted_ids"], attention_mask=batch["attention_mask"],
                     token_type_ids=batch.get("token_type_ids"), labels=batch["labels"],
                     logits_at_labels_only=True)
        return out.loss, {}

    @torch.no_grad()
    def evaluate(self, module, dev, batch_size, device, autocast):
        rng = torch.Generator(device=device).manual_seed(DEV_MASK_SEED)
        total = correct = count = 0.0
        for _, batch in self.batches(dev, batch_size, device):
            corrupted, labels = self.corrupt(batch, drawn=draws(tuple(batch["input_ids"].shape),
                                                                len(self.tokenizer), rng, device))
            with autocast:
                out = module(input_ids=corrupted, attention_mask=batch["attention_mask"], labels=labels,
                             token_type_ids=batch.get("token_type_ids"), logits_at_labels_only=True)
            n = int((labels != IGNORE_INDEX).sum())
            total += float(out.loss) * n
            correct += float((out.logits.argmax(-1) == labels[labels != IGNORE_INDEX]).sum())
            count += n
        return {"loss": total / max(1, count), "mlm_accuracy": correct / max(1, count)}


@hookimpl
def convbert_register_blocks(registry) -> None:
    registry.register_task(MaskedLanguageModeling)
