"""Readers for the file formats of :mod:`convbert.data`, usable on your own files too.

* text corpora: UTF-8, one paragraph per line (or blank-line separated), optionally compressed;
* JSON Lines: one JSON object per line, schemas documented in ``convbert/data/README.md``;
* sentiment TSV: ``id <TAB> rating <TAB> text`` without a header.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any, Literal

from convbert.data._resources import Source, open_text


def iter_text_file(source: Source, *, paragraphs: Literal["line", "blank_line"] = "line") -> Iterator[str]:
    """Yield the non-empty paragraphs of a text file, whitespace-trimmed.

    ``paragraphs="line"``: each non-blank line is a paragraph (the shipped corpus format).
    ``paragraphs="blank_line"``: paragraphs are separated by blank lines; their lines are joined by spaces.
    """
    if paragraphs not in ("line", "blank_line"):
        raise ValueError(f"paragraphs must be 'line' or 'blank_line', got {paragraphs!r}")
    with open_text(source) as handle:
        pending: list[str] = []
        for line in handle:
            stripped = line.strip()
            if paragraphs == "line":
                if stripped:
                    yield stripped
            elif stripped:
                pending.append(stripped)
            elif pending:
                yield " ".join(pending)
                pending = []
        if pending:
            yield " ".join(pending)


def read_text_file(source: Source, *, paragraphs: Literal["line", "blank_line"] = "line") -> list[str]:
    """Return all paragraphs of a text file (see :func:`iter_text_file`)."""
    return list(iter_text_file(source, paragraphs=paragraphs))


def read_jsonl(source: Source) -> list[dict[str, Any]]:
    """Read a JSON Lines file (optionally compressed); blank lines are skipped.

    A line that is not valid JSON raises ``ValueError``, one that is not an object ``TypeError``; both
    name the file and line number.
    """
    records: list[dict[str, Any]] = []
    with open_text(source) as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as error:
                raise ValueError(f"{source}:{number}: invalid JSON ({error.msg})") from error
            if not isinstance(record, dict):
                raise TypeError(f"{source}:{number}: expected a JSON object, got {type(record).__name__}")
            records.append(record)
    return records


def read_sentiment_tsv(source: Source) -> list[dict[str, Any]]:
    """Read ``id<TAB>rating<TAB>text`` rows into ``{"id": int, "rating": float, "text": str}``.

    The text is everything after the second tab, kept verbatim (no CSV quoting rules apply).
    """
    rows: list[dict[str, Any]] = []
    with open_text(source) as handle:
        for number, line in enumerate(handle, start=1):
            line = line.rstrip("\n")
            if not line.strip():
                continue
            parts = line.split("\t", 2)
            if len(parts) != 3:
                raise ValueError(f"{source}:{number}: expected 3 tab-separated columns, got {len(parts)}")
            rows.append({"id": int(parts[0]), "rating": float(parts[1]), "text": parts[2]})
    return rows
