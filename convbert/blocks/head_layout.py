"""How many heads a mixer has and how wide each is: the one rule every mixer (and plugin) follows.

A mixer given neither is one head over the hidden size; given one, it derives the other from the hidden size;
``mixed`` fills both for its parts from its ``num_heads``, ``head_ratio`` and ``head_size_rule``.
"""

from __future__ import annotations


def head_layout(num_heads: int | None, head_size: int | None, hidden_size: int) -> tuple[int, int]:
    """(heads, head size) from a block's ``num_heads`` / ``head_size`` parameters (either may be None)."""
    heads = num_heads or (hidden_size // head_size if head_size else 1)
    return heads, head_size or hidden_size // heads
