"""Raw training records from a `data` node: the data shipped in ``convbert.data``, or the user's own files.

Every loader returns plain dicts in the schemas of ``convbert/data/README.md``; tokenization happens in the
task (``tasks.py``, ``mlm.py``) because each task turns records into model inputs differently.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from convbert import data as shipped
from convbert.data.splits import stable_key, stable_split
from convbert.errors import ConfigError

SHIPPED = {
    "sentiment": shipped.load_sentiment,
    "token_classification": shipped.load_token_classification,
    "qa": shipped.load_qa,
    "multiple_choice": shipped.load_multiple_choice,
}


def _user_file(path: str, key: str) -> Path:
    file = Path(path).expanduser()
    if not file.is_file():
        raise ConfigError(f"{key}={path!r}: no such file (relative paths are relative to {Path.cwd()})")
    return file


def _read_records(name: str, file: Path) -> list[dict[str, Any]]:
    if name == "sentiment" and ".tsv" in file.suffixes:
        return [{"text": r["text"], "label": int(r["rating"] > 0)} for r in shipped.read_sentiment_tsv(file)
                if r["rating"] != 0]
    records = shipped.read_jsonl(file)
    if name == "token_classification":
        index = {tag: i for i, tag in enumerate(shipped.TOKEN_LABELS)}
        for n, record in enumerate(records, 1):
            if "labels" not in record:
                unknown = sorted({t for t in record.get("tags", []) if t not in index})
                if unknown:
                    raise ConfigError(f"{file}:{n}: tags {unknown} are not in convbert.data.TOKEN_LABELS "
                                      f"{shipped.TOKEN_LABELS}; give integer `labels` instead")
                record["labels"] = [index[t] for t in record["tags"]]
    return records


REQUIRED = {
    "sentiment": ("text", "label"),
    "token_classification": ("tokens", "labels"),
    "qa": ("context", "question", "answers"),
    "multiple_choice": ("context", "choices", "label"),
}


def load_records(data: Any, split: str) -> list[dict[str, Any]]:
    """Labelled records of ``split`` ("train" or "dev"): the user's file if given, else the shipped split."""
    file = data.train_file if split == "train" else data.dev_file
    key = f"data.{split}_file"
    if file is not None:
        records = _read_records(data.name, _user_file(file, key))
    else:
        records = SHIPPED[data.name](data.train_split if split == "train" else data.dev_split)
    for n, record in enumerate(records[:50], 1):  # a wrong schema shows in the first records
        missing = [k for k in REQUIRED[data.name] if k not in record]
        if missing:
            raise ConfigError(f"{file or data.name} record {n}: missing {missing}; {data.name} records need "
                              f"{', '.join(REQUIRED[data.name])} (see convbert/data/README.md)")
    limit = data.max_examples if split == "train" else data.max_dev_examples
    return subset(records, limit)


def subset(records: list[Any], limit: int | None) -> list[Any]:
    """A fixed pseudo-random ``limit`` of the records (the same in every run), in their original order.

    Shipped files are ordered (by source, by label), so their first N records would not be a fair sample.
    """
    if not limit or limit >= len(records):
        return records
    keys = [stable_key(json.dumps(r, sort_keys=True, ensure_ascii=False)) for r in records]
    chosen = set(sorted(range(len(records)), key=lambda i: (keys[i], i))[:limit])
    return [r for i, r in enumerate(records) if i in chosen]


def load_paragraphs(data: Any) -> tuple[list[str], list[str]]:
    """(train, dev) paragraphs: dev holds ``dev_fraction`` of them, chosen by a stable hash of the text."""
    if data.path is not None:
        paths = [data.path] if isinstance(data.path, str) else list(data.path)
        paragraphs = []
        for path in paths:
            paragraphs += shipped.read_text_file(_user_file(path, "data.path"), paragraphs=data.paragraphs)
    else:
        paragraphs = shipped.load_corpus(list(data.sources))
    if len(paragraphs) < 2:
        raise ConfigError(f"the corpus has {len(paragraphs)} paragraph(s); pretraining needs at least 2 "
                          "(one for dev). Check data.path and data.paragraphs")
    fractions = (1 - data.dev_fraction, data.dev_fraction, 0.0)
    split = stable_split(paragraphs, key=lambda p: p, fractions=fractions)
    train, dev = split["train"], split["dev"]
    if not dev:
        train, dev = train[:-1], train[-1:]
    return train, dev
