"""Readers for the file formats of :mod:`convbert.data`, usable on your own files too.

* text corpora: UTF-8, one paragraph per line (or blank-line separated), optionally compressed;
* JSON Lines: one JSON object per line, schemas documented in ``convbert/data/README.md``;
* sentiment TSV: ``id <TAB> rating <TAB> text`` without a header;
* pretraining corpora (``data.path``): a file, a glob or a directory of text, JSON Lines or parquet files, or
  a directory written by Hugging Face ``datasets`` (the text column of the last three).
"""

from __future__ import annotations

import glob
import json
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Literal

from convbert.data._resources import Source, open_text
from convbert.errors import ConfigError, DataError

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


# -- corpus inputs: what `data.path` may name --------------------------------------------------------------
TEXT_SUFFIXES = (".txt", ".text")
COMPRESSED = (".gz", ".bz2", ".xz")
JSONL_SUFFIXES = (".jsonl", ".ndjson")


def corpus_format(path: Path) -> str:
    """``text``, ``jsonl``, ``parquet`` or ``datasets`` (a directory written by ``Dataset.save_to_disk``)."""
    if path.is_dir():
        return "datasets"
    suffixes = path.suffixes
    if suffixes and suffixes[-1] in COMPRESSED:
        suffixes = suffixes[:-1]
    last = suffixes[-1] if suffixes else ""
    if last in JSONL_SUFFIXES:
        return "jsonl"
    if last == ".parquet":
        return "parquet"
    return "text"


def expand_corpus_paths(spec: str | Sequence[str], key: str = "data.path") -> list[Path]:
    """The files a corpus setting names, in a fixed order: a file, a glob (``shards/*.txt.gz``), a directory
    (its files, recursively, sorted; a ``datasets`` directory stays one input) or a list of these."""
    entries = [spec] if isinstance(spec, (str, os.PathLike)) else list(spec)
    if not entries:
        raise ConfigError(f"{key}: an empty list; give a file, a glob, a directory or a list of them")
    found: list[Path] = []
    for entry in entries:
        text = os.path.expanduser(os.fspath(entry))
        if glob.has_magic(text):
            matches = sorted(Path(p) for p in glob.glob(text, recursive=True))
            if not matches:
                raise ConfigError(f"{key}={entry!r}: the glob matches no file (relative to {Path.cwd()})")
            found += [p for m in matches for p in _files_under(m)]
            continue
        path = Path(text)
        if not path.exists():
            raise ConfigError(f"{key}={entry!r}: no such file or directory (relative paths are relative to "
                              f"{Path.cwd()})")
        found += _files_under(path)
    if not found:
        raise ConfigError(f"{key}={spec!r}: no corpus file there (text, .jsonl, .parquet, optionally .gz / "
                          ".bz2 / .xz)")
    return list(dict.fromkeys(found))


def _files_under(path: Path) -> list[Path]:
    if not path.is_dir() or _is_datasets_dir(path):
        return [path]
    return sorted(p for p in path.rglob("*") if p.is_file() and not any(
        part.startswith(".") for part in p.relative_to(path).parts))


def _is_datasets_dir(path: Path) -> bool:
    return (path / "state.json").is_file() or (path / "dataset_dict.json").is_file()


def _pyarrow(what: str) -> Any:
    try:
        import pyarrow
        import pyarrow.ipc
        import pyarrow.parquet
    except ImportError as error:
        raise ConfigError(f"reading {what} needs pyarrow: pip install pyarrow (or 'convbert[data]')") \
            from error
    return pyarrow


def iter_column_texts(path: Path, field: str, key: str = "data.text_field") -> Iterator[str]:
    """The ``field`` column of a JSON Lines file, a parquet file or a ``datasets`` directory, in row order;
    a record without it (or not a string) is refused naming the file and the row."""
    kind = corpus_format(path)
    if kind == "jsonl":
        for number, record in iter_jsonl(path):
            yield _text_of(record.get(field), f"{path}:{number}", field, record.keys(), key)
        return
    pa = _pyarrow(f"{path.name} ({kind})")
    if kind == "parquet":
        tables = [pa.parquet.ParquetFile(path)]
        batches = (b for t in tables for b in t.iter_batches(columns=None))
    else:
        batches = (b for f in _datasets_files(path) for b in _arrow_batches(pa, f))
    row = 0
    for batch in batches:
        if field not in batch.schema.names:
            raise DataError(f"{path}: no column {field!r}; its columns are {batch.schema.names}. Set {key}")
        for value in batch.column(field).to_pylist():
            row += 1
            yield _text_of(value, f"{path} row {row}", field, [field], key)


def iter_table_records(path: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    """(where, row as a dict) of a JSON Lines, CSV (with a header row) or parquet file or a ``datasets``
    directory, in order."""
    if path.suffix == ".csv":
        import csv

        with open_text(path) as handle:
            reader = csv.DictReader(_lines(handle, path))
            for number, row in enumerate(reader, start=2):
                yield f"{path}:{number}", {k.removeprefix("\ufeff") if k else k: v for k, v in row.items()}
        return
    kind = corpus_format(path)
    if kind == "jsonl" or (kind == "text" and path.suffix == ".json"):
        for number, record in iter_jsonl(path):
            yield f"{path}:{number}", record
        return
    pa = _pyarrow(f"{path.name} ({kind})")
    batches = (pa.parquet.ParquetFile(path).iter_batches() if kind == "parquet"
               else (b for f in _datasets_files(path) for b in _arrow_batches(pa, f)))
    row = 0
    for batch in batches:
        for record in batch.to_pylist():
            row += 1
            yield f"{path} row {row}", record


def _text_of(value: Any, where: str, field: str, keys: Any, key: str) -> str:
    if isinstance(value, str):
        return value
    if value is None and field not in keys:
        raise DataError(f"{where}: no field {field!r} (it has {sorted(keys)}); set {key} to the text's field")
    raise DataError(f"{where}: {field!r} is a {type(value).__name__}, not text")


def _datasets_files(path: Path) -> list[Path]:
    """The Arrow files of a ``save_to_disk`` directory (its ``train`` split for a DatasetDict)."""
    if (path / "dataset_dict.json").is_file():
        splits = json.loads((path / "dataset_dict.json").read_text())["splits"]
        split = "train" if "train" in splits else splits[0]
        path = path / split
    state = json.loads((path / "state.json").read_text())
    return [path / item["filename"] for item in state["_data_files"]]


def _arrow_batches(pa: Any, file: Path) -> Iterator[Any]:
    with pa.memory_map(str(file)) as source:
        try:
            reader = pa.ipc.open_stream(source)
        except pa.ArrowInvalid:
            reader = pa.ipc.open_file(source)
            yield from (reader.get_batch(i) for i in range(reader.num_record_batches))
            return
        yield from reader
