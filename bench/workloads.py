"""What the model benchmark runs: the configs, the two implementations with the same weights, and the steps.

A workload is (config, length, batch, dtype, mode) and one of two sides:

- ``inference``: the encoder (``ConvBertModel``) forward under ``torch.inference_mode``.
- ``mlm``: class against class, ``ConvBertForMaskedLM`` with full (B, L, V) logits: forward, loss, backward,
  AdamW step. 15% of the tokens carry labels, as in BERT.
- ``pretrain``: our pretraining step (prediction head only at the labelled positions,
  ``logits_at_labels_only=True``) against Hugging Face's standard masked-LM step (the same as its ``mlm``).

Both sides load one checkpoint (ours saved in Hugging Face's format), so they hold the same weights.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass

import torch

COMMON = dict(vocab_size=30522, num_hidden_layers=12, head_ratio=2, conv_kernel_size=9, pad_token_id=0,
              type_vocab_size=2, hidden_act="gelu", hidden_dropout_prob=0.1, attention_probs_dropout_prob=0.1)
CONFIGS = {
    "small": dict(hidden_size=256, num_attention_heads=4, intermediate_size=1024, num_groups=1,
                  embedding_size=128),
    "medium-small": dict(hidden_size=384, num_attention_heads=8, intermediate_size=1536, num_groups=2,
                         embedding_size=128),
    "base": dict(hidden_size=768, num_attention_heads=12, intermediate_size=3072, num_groups=1,
                 embedding_size=768),
}
MODES = ("inference", "mlm", "pretrain")
DTYPES = {"fp32": None, "bf16": torch.bfloat16}
MASK_FRACTION = 0.15
SIDES = ("ours", "hf")


@dataclass(frozen=True)
class Workload:
    config: str
    length: int
    batch: int
    dtype: str
    mode: str

    @property
    def tokens(self) -> int:
        return self.batch * self.length

    def to_dict(self) -> dict:
        return asdict(self)


def config_kwargs(name: str, length: int) -> dict:
    """Hugging Face ConvBertConfig fields; the position table covers ``length`` (>= 512, as released)."""
    return {**COMMON, **CONFIGS[name], "max_position_embeddings": max(512, length)}


def checkpoint(directory: str, name: str, length: int, seed: int = 0) -> str:
    """Save a randomly initialised ConvBERT masked LM (ours, in Hugging Face's format) once per config."""
    import convbert

    path = os.path.join(directory, f"{name}-{max(512, length)}")
    if not os.path.isdir(path):
        torch.manual_seed(seed)
        model = convbert.ConvBertForMaskedLM(convbert.ConvBertConfig(**config_kwargs(name, length)))
        model.save_pretrained(path)
    return path


def load(side: str, path: str) -> torch.nn.Module:
    """The masked-LM model of one side from the shared checkpoint."""
    if side == "ours":
        import convbert

        return convbert.ConvBertForMaskedLM.from_pretrained(path)
    import transformers

    transformers.logging.set_verbosity_error()
    return transformers.ConvBertForMaskedLM.from_pretrained(path)


def inputs(work: Workload, vocab_size: int = 30522, seed: int = 1) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(1, vocab_size, (work.batch, work.length), generator=g)
    labelled = torch.rand(work.batch, work.length, generator=g) < MASK_FRACTION
    labelled[:, 0] = True  # never an empty selection
    labels = torch.where(labelled, ids, -100)
    return {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": labels}


def autocast(dtype: str, device: str = "cpu"):
    target = DTYPES[dtype]
    if target is None:
        return contextlib.nullcontext()
    return torch.autocast(torch.device(device).type, dtype=target)


def make_step(side: str, model: torch.nn.Module, work: Workload, device: str = "cpu") -> Callable[[], None]:
    """A closure running one step of ``work`` on ``model`` (already on ``device``); it sets eval or train
    mode on each call (closures of one model interleave) and owns its optimizer."""
    batch = {k: v.to(device) for k, v in inputs(work, model.config.vocab_size).items()}
    if work.mode == "inference":
        encoder = model.convbert

        def infer() -> None:
            model.eval()
            with torch.inference_mode(), autocast(work.dtype, device):
                encoder(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])

        return infer
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    extra = {"logits_at_labels_only": True} if side == "ours" and work.mode == "pretrain" else {}

    def train() -> None:
        model.train()
        with autocast(work.dtype, device):
            loss = model(**batch, **extra).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    return train
