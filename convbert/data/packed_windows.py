"""Pretraining examples read from a token store: fixed windows of the token stream, ELECTRA's two segments.

Window ``i`` covers the store's tokens from ``i * stride`` (``stride = max_length - 3``). When a document
starts inside it, the window is cut there into two segments, ``[CLS] a [SEP] b [SEP]`` with token type ids 0
and 1 (the document start nearest the middle, as ELECTRA's ``build_pretraining_dataset.py`` fills two
segments of about half the length), so fine-tuning on sentence pairs starts from a trained segment embedding;
otherwise it is one segment, ``[CLS] a [SEP]``, one token longer. Every window is ``max_length`` tokens but
the last.

Nothing per window is kept: a window is computed from the memory map when it is read, so a corpus of any size
costs the same memory.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from convbert.data.token_store import TokenStore


class PackedWindows:
    """The windows of one split of a store; ``batch(indices)`` gives padded tensors for a list of windows."""

    def __init__(self, store: TokenStore, split: str, max_length: int, cls_id: int, sep_id: int, pad_id: int,
                 limit: int | None = None, two_segments: bool = True) -> None:
        if max_length < 8:
            raise ValueError("max_length must be >= 8")
        self.store, self.split, self.max_length = store, split, max_length
        self.cls_id, self.sep_id, self.pad_id = cls_id, sep_id, pad_id
        self.two_segments = two_segments
        self.stride = max_length - 3 if two_segments else max_length - 2
        total = store.num_tokens(split)
        self.num_windows = max(1, -(-total // self.stride)) if total else 0
        if limit:
            self.num_windows = min(self.num_windows, limit)

    def __len__(self) -> int:
        return self.num_windows

    def __getstate__(self) -> dict[str, Any]:  # DataLoader workers re-open the memory map
        return dict(self.__dict__)

    def window(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """(input ids, token type ids) of window ``index``."""
        if not 0 <= index < self.num_windows:
            raise IndexError(f"window {index} of {self.num_windows}")
        tokens, offsets = self.store.tokens(self.split), self.store.offsets(self.split)
        start = index * self.stride
        end = min(start + self.stride + (1 if self.two_segments else 0), len(tokens))
        cut = self._cut(offsets, start, end) if self.two_segments else None
        cls, sep = np.array([self.cls_id]), np.array([self.sep_id])
        if cut is None:
            ids = np.concatenate([cls, tokens[start:end], sep])
            return ids, np.zeros(len(ids), dtype=np.int64)
        second_end = min(start + self.stride, end)
        first, second = tokens[start:cut], tokens[cut:second_end]
        ids = np.concatenate([cls, first, sep, second, sep])
        types = np.zeros(len(ids), dtype=np.int64)
        types[len(first) + 2:] = 1
        return ids, types

    def _cut(self, offsets: np.ndarray, start: int, end: int) -> int | None:
        """The document start inside [start, end) nearest the middle that leaves both segments non-empty."""
        low = int(np.searchsorted(offsets, start, side="right"))
        high = int(np.searchsorted(offsets, min(end, start + self.stride) - 1, side="right"))
        if low >= high:
            return None
        inside = np.asarray(offsets[low:high])
        middle = start + self.stride / 2
        return int(inside[np.argmin(np.abs(inside - middle))])

    def __getitem__(self, index: int) -> dict[str, list[int]]:
        ids, types = self.window(index)
        return {"input_ids": ids.tolist(), "token_type_ids": types.tolist()}

    def batch(self, indices: Any) -> dict[str, torch.Tensor]:
        """The windows ``indices`` padded to ``max_length``: input_ids, token_type_ids, attention_mask."""
        rows = [self.window(int(i)) for i in indices]
        size = (len(rows), self.max_length)
        ids = torch.full(size, self.pad_id, dtype=torch.long)
        types = torch.zeros(size, dtype=torch.long)
        mask = torch.zeros(size, dtype=torch.long)
        for row, (window_ids, window_types) in enumerate(rows):
            n = len(window_ids)
            ids[row, :n] = torch.from_numpy(window_ids.astype(np.int64))
            types[row, :n] = torch.from_numpy(window_types)
            mask[row, :n] = 1
        return {"input_ids": ids, "token_type_ids": types, "attention_mask": mask}

    def __getitems__(self, indices: list[int]) -> dict[str, torch.Tensor]:
        """What a DataLoader's batched fetch calls: one padded batch, not a list of examples."""
        return self.batch(indices)

    def features(self) -> list[dict[str, list[int]]]:
        """Every window as a feature dict (for the small dev split only)."""
        return [self[i] for i in range(len(self))]
