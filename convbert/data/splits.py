"""Deterministic train/dev/test splitting that does not depend on Python's RNG or hash seed.

Items are ordered by the SHA-256 of ``seed`` plus a per-item key, then cut into fixed fractions.
The same key always lands in the same split on every platform and Python version.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Hashable, Sequence
from typing import TypeVar

T = TypeVar("T")

SPLITS: tuple[str, ...] = ("train", "dev", "test")
"""Split names used by every shipped dataset."""

DEFAULT_FRACTIONS: tuple[float, float, float] = (0.8, 0.1, 0.1)
DEFAULT_SEED = "convbert-data-v1"


def check_split(split: str, valid: Sequence[str], dataset: str) -> str:
    """Return ``split`` or raise ``ValueError`` listing the valid split names of ``dataset``."""
    if split not in valid:
        raise ValueError(f"unknown split {split!r} for {dataset}; valid splits: {', '.join(valid)}")
    return split


def stable_key(key: str, seed: str = DEFAULT_SEED) -> str:
    """Hex SHA-256 of ``seed`` and ``key``: the sort key that defines split membership."""
    return hashlib.sha256(f"{seed}\x00{key}".encode()).hexdigest()


def stable_split(
    items: Sequence[T],
    key: Callable[[T], str],
    *,
    seed: str = DEFAULT_SEED,
    fractions: tuple[float, float, float] = DEFAULT_FRACTIONS,
    stratify: Callable[[T], Hashable] | None = None,
) -> dict[str, list[T]]:
    """Split ``items`` into train/dev/test by hashed ``key``, optionally per ``stratify`` group.

    Dev and test get ``round(n * fraction)`` items of each group, train gets the rest, so sizes are
    exact and reproducible. Within a split, items keep their original relative order.
    """
    groups: dict[Hashable, list[int]] = {}
    for index, item in enumerate(items):
        groups.setdefault(stratify(item) if stratify else None, []).append(index)
    assignment: dict[int, str] = {}
    for indices in groups.values():
        ordered = sorted(indices, key=lambda i: (stable_key(key(items[i]), seed), i))
        n_dev = round(len(ordered) * fractions[1])
        n_test = round(len(ordered) * fractions[2])
        n_train = len(ordered) - n_dev - n_test
        for position, index in enumerate(ordered):
            if position < n_train:
                assignment[index] = "train"
            elif position < n_train + n_dev:
                assignment[index] = "dev"
            else:
                assignment[index] = "test"
    result: dict[str, list[T]] = {name: [] for name in SPLITS}
    for index, item in enumerate(items):
        result[assignment[index]].append(item)
    return result
