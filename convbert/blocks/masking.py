"""The padding mask, prepared once per forward in the two forms the blocks need."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class SequenceMask:
    """``keep``: (B, L) 1.0 for real tokens, 0.0 for padding (None: no padding).

    ``additive``: (B, 1, 1, L) 0 or the dtype's minimum, added to attention scores as Hugging Face does
    (a fully padded row then attends uniformly instead of producing NaN).
    """

    keep: torch.Tensor | None = None
    additive: torch.Tensor | None = None

    @classmethod
    def from_attention_mask(cls, attention_mask: torch.Tensor | None, dtype: torch.dtype) -> SequenceMask:
        if attention_mask is None:
            return cls()
        keep = attention_mask.to(dtype)
        additive = (1.0 - keep)[:, None, None, :] * torch.finfo(dtype).min
        return cls(keep=keep, additive=additive)

    def zero_padding(self, x: torch.Tensor) -> torch.Tensor:
        """Zero padded positions of a (B, L, ...) tensor; identity without a mask."""
        if self.keep is None:
            return x
        return x * self.keep.view(*self.keep.shape, *([1] * (x.dim() - 2))).to(x.dtype)
