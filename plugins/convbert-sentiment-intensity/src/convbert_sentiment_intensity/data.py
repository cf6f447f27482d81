"""The shipped data: 3,708 Amazon product-review sentences, each with its mean human sentiment rating.

``data/amazon_review_snippets.tsv`` (source and licence in ``data/README.md``): id, rating (-4..+4), text.
Split 80/10/10 by a stable hash of the text, so every run and machine sees the same split.
"""

from __future__ import annotations

import functools
from importlib import resources
from pathlib import Path
from typing import Any

from convbert.plugin import SPLITS, ConfigError, stable_split

FILE = "amazon_review_snippets.tsv"


def read_tsv(path: Path | Any) -> list[dict[str, Any]]:
    """Records ``{"text", "score"}`` of a file in the shipped format: id<TAB>rating<TAB>text per line."""
    records = []
    with open(path, encoding="utf-8") as handle:
        for n, line in enumerate(handle, 1):
            if not line.strip():
                continue
            parts = line.rstrip("\n").split("\t", 2)
            try:
                records.append({"text": parts[2], "score": float(parts[1])})
            except (IndexError, ValueError):
                raise ConfigError(f"{path}:{n}: expected id<TAB>rating<TAB>text with a numeric rating, got "
                                  f"{line[:80]!r}") from None
    return records


@functools.cache
def _splits() -> dict[str, list[dict[str, Any]]]:
    with resources.as_file(resources.files(__package__) / "data" / FILE) as path:
        records = read_tsv(path)
    return stable_split(records, key=lambda r: r["text"], fractions=(0.8, 0.1, 0.1))


def load_split(split: str) -> list[dict[str, Any]]:
    if split not in SPLITS:
        raise ConfigError(f"data split {split!r}: the shipped splits are {', '.join(SPLITS)}")
    return [dict(r) for r in _splits()[split]]
