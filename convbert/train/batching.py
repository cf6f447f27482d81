"""Batches: which examples each step reads (seeded, sharded, resumable) and how they are padded.

The order of an epoch is a function of (seed, epoch) alone, so a resumed run re-derives it and skips to its
position instead of storing it; under torchrun every process takes its own interleaved share of each global
batch, so the processes together read exactly what one process would read with world_size times the batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from convbert.labels import IGNORE_INDEX


class BatchOrder:
    """The example indices of every step of an epoch, for one process of ``world_size``.

    ``epoch(e)`` is a (steps, batch_size) tensor: row ``s`` holds this process's examples of step ``s``, taken
    interleaved (``rank::world_size``) from the step's global batch, so ``rows()`` gives their places in it.
    The order is a seeded permutation held as one int64 tensor: nothing per example is a Python object, so a
    corpus of millions of windows costs 8 bytes a window.

    With ``lengths`` (one per example), batches are grouped by length as Hugging Face's ``group_by_length``:
    the shuffled examples are cut into mega-batches of ``GROUP`` global batches, each sorted by length and cut
    into batches, and the batches are shuffled again. Every batch is still a random draw, of similar lengths,
    so little of a step's compute goes to padding.
    """

    GROUP = 50

    def __init__(self, num_examples: int, batch_size: int, seed: int, rank: int = 0,
                 world_size: int = 1, lengths: Sequence[int] | None = None) -> None:
        if num_examples < 1:
            raise ValueError("no training examples: check the data node (max_examples, files)")
        self.num_examples, self.batch_size = num_examples, batch_size
        self.seed, self.rank, self.world_size, self.lengths = seed, rank, world_size, lengths
        self.global_batch = batch_size * world_size
        # Drop the last partial global batch, but never drop everything: tiny data sets still train.
        self.steps_per_epoch = max(1, num_examples // self.global_batch)

    def epoch(self, epoch: int) -> torch.Tensor:
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
        order = torch.randperm(self.num_examples, generator=g)
        needed = self.steps_per_epoch * self.global_batch
        if len(order) < needed:  # fewer examples than one batch: repeat them
            order = order.repeat(-(-needed // len(order)))
        used = order[:needed]
        chunks = self._grouped(used, g) if self.lengths is not None else used.view(-1, self.global_batch)
        return chunks[:, self.rank::self.world_size]

    def rows(self) -> torch.Tensor:
        """(batch_size,) the positions of this process's examples in each global batch."""
        return torch.arange(self.batch_size) * self.world_size + self.rank

    def _grouped(self, order: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        size = self.GROUP * self.global_batch
        ranked = []
        for block in order.split(size):
            ranked += sorted(block.tolist(), key=lambda i: -self.lengths[i])
        chunks = torch.tensor(ranked).view(-1, self.global_batch)
        return chunks[torch.randperm(len(chunks), generator=g)]


def _pad(rows: Sequence[Any], value: int) -> torch.Tensor:
    """Right-pad nested lists (B, L) or (B, C, L) of ints to one rectangular tensor."""
    if rows and isinstance(rows[0][0], list):  # (B, C, L): multiple choice
        width = max(len(seq) for row in rows for seq in row)
        return torch.tensor([[seq + [value] * (width - len(seq)) for seq in row] for row in rows])
    width = max(len(row) for row in rows)
    return torch.tensor([list(row) + [value] * (width - len(row)) for row in rows])


def collate(features: Sequence[dict[str, Any]], pad_token_id: int) -> dict[str, torch.Tensor]:
    """Pad a list of features to the longest in the batch; adds ``attention_mask``.

    ``input_ids`` pad with ``pad_token_id``, ``token_type_ids`` with 0, list-valued ``labels`` with -100;
    scalar fields become 1-D tensors. Keys starting with ``_`` (evaluation bookkeeping) are left out.
    """
    batch: dict[str, torch.Tensor] = {}
    ids = [f["input_ids"] for f in features]
    batch["input_ids"] = _pad(ids, pad_token_id)
    mask_rows = [[[1] * len(seq) for seq in row] for row in ids] if isinstance(ids[0][0], list) \
        else [[1] * len(row) for row in ids]
    batch["attention_mask"] = _pad(mask_rows, 0)
    for key in features[0]:
        if key == "input_ids" or key.startswith("_"):
            continue
        values = [f[key] for f in features]
        if isinstance(values[0], list):
            batch[key] = _pad(values, IGNORE_INDEX if key == "labels" else 0)
        else:
            batch[key] = torch.tensor(values)
    return batch
