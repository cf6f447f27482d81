"""The padding mask, prepared once per forward in the two forms the blocks need."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from convbert.capture import capturing


@dataclass
class SequenceMask:
    """``keep``: (B, L) 1.0 for real tokens, 0.0 for padding (None: no padding).

    ``additive``: (B, 1, 1, L) 0 or the dtype's minimum, added to attention scores as Hugging Face does
    (a fully padded row then attends uniformly instead of producing NaN).
    """

    keep: torch.Tensor | None = None
    additive: torch.Tensor | None = None
    has_empty_rows: bool = False

    @classmethod
    def from_attention_mask(cls, attention_mask: torch.Tensor | None, dtype: torch.dtype) -> SequenceMask:
        """The masks for a (B, L) 1/0 ``attention_mask``; none at all when nothing is padded.

        A tokenizer's all-ones mask is dropped on the CPU (outside ``torch.compile``): attention then takes
        SDPA's unmasked kernel and nothing is added or multiplied. On accelerators the check would cost a
        host sync, so there the mask is always built.
        """
        if attention_mask is None:
            return cls()
        on_cpu = attention_mask.device.type == "cpu" and not capturing()
        if on_cpu and bool(attention_mask.all()):
            return cls()
        keep = attention_mask.bool().to(dtype)  # any non-zero value attends, as transformers 5
        additive = (1.0 - keep)[:, None, None, :] * torch.finfo(dtype).min
        # A row with no real token attends uniformly (all scores at the minimum). CPU SDPA's fused backward
        # gets that case wrong, so the attention takes its explicit path then; checked on the CPU only
        # (free there; a host sync on an accelerator) and not under torch.compile.
        empty = on_cpu and bool((keep.sum(-1) == 0).any())
        return cls(keep=keep, additive=additive, has_empty_rows=empty)

    def zero_padding(self, x: torch.Tensor) -> torch.Tensor:
        """Zero padded positions of a (B, L, ...) tensor; identity without a mask."""
        if self.keep is None:
            return x
        return x * self.keep.view(*self.keep.shape, *([1] * (x.dim() - 2))).to(x.dtype)
