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
from convbert.errors import DataError

UTF8_FIX = "save it as UTF-8 (e.g. iconv -f latin1 -t utf-8 FILE > FILE.utf8)"


def iter_text_file(source: Source, *, paragraphs: Literal["line", "blank_line"] = "line") -> Iterator[str]:
    """Yield the non-empty paragraphs of a text file, whitespace-trimmed.

    ``paragraphs="line"``: each non-blank line is a paragraph (the shipped corpus format).
    ``paragraphs="blank_line"``: paragraphs are separated by blank lines; their lines are joined by spaces.
    """
    if paragraphs not in ("line", "blank_line"):
        raise ValueError(f"paragraphs must be 'line' or 'blank_line', got {paragraphs!r}")
    with open_text(source) as handle:
        pending: list[str] = []
        for line in _lines(handle, source):
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

    A byte-order mark is skipped. A line that is not valid JSON, or not an object, and a file that is not
    UTF-8 raise ``DataError`` naming the file and line number.
    """
    return [record for _, record in iter_jsonl(source)]


def iter_jsonl(source: Source) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, record) of each object of a JSON Lines file (see :func:`read_jsonl`)."""
    with open_text(source) as handle:
        for number, line in enumerate(_lines(handle, source), start=1):
            if number == 1:
                line = line.removeprefix("\ufeff")
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except (json.JSONDecodeError, RecursionError) as error:
                why = getattr(error, "msg", "nested too deeply")
                raise DataError(f"{source}:{number}: invalid JSON ({why}); each line must be one JSON "
                                'object, e.g. {"text": "...", "label": 1}') from None
            if not isinstance(record, dict):
                raise DataError(f"{source}:{number}: expected a JSON object ({{...}}), got "
                                f"{type(record).__name__}")
            yield number, record


def _lines(handle: Any, source: Source) -> Iterator[str]:
    """The lines of a text handle; bytes that are not UTF-8 raise DataError with the line and the fix."""
    number = 0
    try:
        for number, line in enumerate(handle, start=1):  # noqa: B007 (read by the handler)
            yield line
    except UnicodeDecodeError as error:
        bad = error.object[error.start:error.start + 1]
        where = f"byte {bad!r}, at or after line {number + 1}"
        raise DataError(f"{source}: not UTF-8 ({where}); {UTF8_FIX}") from None


def read_sentiment_tsv(source: Source) -> list[dict[str, Any]]:
    """Read ``id<TAB>rating<TAB>text`` rows into ``{"id": int, "rating": float, "text": str}``.

    The text is everything after the second tab, kept verbatim (no CSV quoting rules apply).
    """
    rows: list[dict[str, Any]] = []
    with open_text(source) as handle:
        for number, line in enumerate(_lines(handle, source), start=1):
            line = line.rstrip("\n")
            if not line.strip():
                continue
            parts = line.split("\t", 2)
            if len(parts) != 3:
                raise DataError(f"{source}:{number}: expected 3 tab-separated columns (id, rating, text), "
                                f"got {len(parts)}")
            try:
                rows.append({"id": int(parts[0]), "rating": float(parts[1]), "text": parts[2]})
            except ValueError:
                raise DataError(f"{source}:{number}: id must be an integer and rating a number, got "
                                f"{parts[0]!r} and {parts[1]!r}") from None
    return rows
