"""Reuse of a large output's memory across calls, once nothing else holds it.

A fresh CPU tensor of more than 32 MB is a new ``mmap`` that glibc unmaps again on release, so every step
first-touches every page of it: for the masked-LM logits of a training step (8 x 128 tokens x 30522 words,
125 MB) that is about 35 ms of page faults, half the time of the product that fills them
(docs/performance.md). The CUDA caching allocator reuses such blocks; PyTorch's CPU allocator does not.
``RecycledOutputs`` keeps the last few outputs it handed out and gives one back when its storage is
referenced by nothing but the pool: no tensor, view, saved-for-backward copy or NumPy array. The caller then
writes every element of it.

Holding a second reference in the pool is what makes that test possible (``torch._C._storage_Use_Count``
counts the tensors sharing a storage); the pool never holds an autograd graph (it keeps detached aliases).
``slots=2`` covers the usual loop that keeps the previous step's outputs until the next assignment.
"""

from __future__ import annotations

import math
import threading

import torch

# glibc serves smaller blocks from its heap once one was freed (its mmap threshold adapts up to 32 MB on
# 64-bit systems), so their pages are not faulted again: nothing to gain below this
MIN_BYTES = 32 << 20

_ALONE: int | None = None


def _use_count(t: torch.Tensor) -> int:
    return torch._C._storage_Use_Count(t.untyped_storage()._cdata)


def _alone() -> int:
    """The use count of a storage that one tensor alone holds (measured: it includes the storage's Python
    object that ``_use_count`` creates, an implementation detail of the PyTorch version)."""
    global _ALONE
    if _ALONE is None:
        probe = torch.empty(1, device="cpu")
        _use_count(probe)
        _ALONE = _use_count(probe)
    return _ALONE


def supported() -> bool:
    return hasattr(torch._C, "_storage_Use_Count")


class RecycledOutputs:
    """Up to ``slots`` spare CPU buffers; ``take`` one that nothing else references, ``keep`` a new one."""

    def __init__(self, slots: int = 2, min_bytes: int = MIN_BYTES) -> None:
        self.slots, self.min_bytes = slots, min_bytes
        self._spares: list[torch.Tensor] = []  # detached aliases of outputs handed out, newest first
        self._lock = threading.Lock()

    def take(self, shape: tuple[int, ...], dtype: torch.dtype, device: torch.device) -> torch.Tensor | None:
        """A tensor of ``shape`` over a spare that nothing else holds (stale contents), or None."""
        if not supported() or torch.device(device).type != "cpu":
            return None
        numel = math.prod(shape)
        if numel * dtype.itemsize < self.min_bytes:
            return None
        with self._lock:
            for i, spare in enumerate(self._spares):
                fits = spare.dtype == dtype and numel <= spare.numel() <= 2 * numel
                if fits and _use_count(spare) == _alone():
                    # a new tensor over the spare's storage (not a view: in-place ops on it stay allowed)
                    out = torch.empty(0, dtype=dtype, device=spare.device)
                    out.set_(spare.untyped_storage(), 0, shape)
                    self._spares.insert(0, self._spares.pop(i))
                    return out
        return None

    def keep(self, out: torch.Tensor) -> None:
        """Remember ``out``, a fresh CPU tensor that spans its whole storage, for a later ``take``."""
        nbytes = out.numel() * out.element_size()
        whole = out.storage_offset() == 0 and out.untyped_storage().nbytes() == nbytes
        if not supported() or out.device.type != "cpu" or not out.is_contiguous() or not whole \
                or nbytes < self.min_bytes:
            return
        with self._lock:
            if any(spare.untyped_storage().data_ptr() == out.untyped_storage().data_ptr()
                   for spare in self._spares):
                return
            self._spares.insert(0, out.detach())
            del self._spares[self.slots:]

    def clear(self) -> None:
        with self._lock:
            self._spares.clear()

    # copies of a module (deepcopy, pickle) start with an empty pool instead of sharing or saving buffers
    def __deepcopy__(self, memo) -> RecycledOutputs:
        return RecycledOutputs(self.slots, self.min_bytes)

    def __getstate__(self) -> dict:
        return {"slots": self.slots, "min_bytes": self.min_bytes}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["slots"], state.get("min_bytes", MIN_BYTES))
