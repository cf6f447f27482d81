"""Raw training records from a `data` node: a task's shipped data or the user's own files (pretraining
corpora are read into a token store instead: ``convbert.data.token_store``).

Every loader returns plain dicts (the schemas of ``convbert/data/README.md`` for the shipped data); the task
says which keys its records need and tokenizes them, because each task turns records into inputs differently.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from convbert.data.splits import stable_key
from convbert.errors import ConfigError, DataError


def user_file(path: str, key: str) -> Path:
    file = Path(path).expanduser()
    try:
        found = file.is_file()
    except OSError as exc:  # a name too long for the file system, ...
        raise ConfigError(f"{key}={path[:80]!r}{'...' if len(path) > 80 else ''}: {exc.strerror}; "
                          "give the path of an existing file") from exc
    if not found:
        raise ConfigError(f"{key}={path!r}: no such file (relative paths are relative to {Path.cwd()})")
    return file


def load_records(data: Any, split: str, task: Any) -> list[dict[str, Any]]:
    """Labelled records of ``split`` ("train" or "dev"): the user's file if given (read by the task's
    ``read_file``), else its shipped split. Records lacking the task's ``record_fields`` are refused."""
    file = data.train_file if split == "train" else data.dev_file
    key = f"data.{split}_file"
    if file is not None:
        records = task.read_file(user_file(file, key))
    elif task.load_shipped is not None:
        records = task.load_shipped(data.train_split if split == "train" else data.dev_split)
    else:
        raise ConfigError(f"task {task.name!r} ships no data: set data.train_file and data.dev_file")
    fields = task.record_fields
    for n, record in enumerate(records[:50], 1):  # a wrong schema shows in the first records
        missing = [k for k in fields if k not in record]
        if missing:
            raise ConfigError(f"{file or data.name} record {n}: missing {missing}; {task.name} records need "
                              f"{', '.join(fields)}")
    if not records:
        raise DataError(f"{file or data.name}: no {split} records (the file is empty); give a file with one "
                        f"record per line, each with {', '.join(fields)}")
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
