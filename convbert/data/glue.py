"""The nine GLUE tasks as the GLUE release lays them out: folders, TSV columns, label lists, official metrics.

Columns and quirks follow transformers 4.x ``data/processors/glue.py`` (tab-separated, no quoting: a quote is
part of the text; CoLA's train and dev files have no header; QQP has lines too short to hold a pair, which are
skipped; MRPC's files may start with a byte-order mark). Label lists and their order are Hugging Face
``datasets``' GLUE configs, so a model's id2label reads the same as one trained from ``load_dataset("glue")``.
"""

from __future__ import annotations

import csv
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from convbert.data._resources import open_text
from convbert.errors import ConfigError, DataError


@dataclass(frozen=True)
class GlueTask:
    """Where a GLUE task's data is and how its rows read."""

    name: str
    folder: str  # the task's folder in the GLUE release
    labels: tuple[str, ...] | None  # label names in id order (Hugging Face datasets); None: regression
    metrics: tuple[str, ...]  # the official metric(s); the first is the model-selection metric
    columns: tuple[int, ...]  # train / dev: the text column(s)
    label_column: int  # train / dev
    test_columns: tuple[int, ...]  # test: the text column(s) (column 0 is the index)
    header: bool = True  # train / dev files start with a header row
    text_fields: tuple[str, ...] = ("sentence",)  # Hugging Face's column names, for JSONL / parquet files
    dev_files: tuple[str, ...] = ("dev.tsv",)
    test_files: tuple[str, ...] = ("test.tsv",)
    label_values: tuple[str, ...] | None = None  # how the TSV writes labels, when not their names

    @property
    def is_regression(self) -> bool:
        return self.labels is None


TASKS: dict[str, GlueTask] = {t.name: t for t in (
    GlueTask("cola", "CoLA", ("unacceptable", "acceptable"), ("matthews_correlation",), (3,), 1, (1,),
             header=False, label_values=("0", "1")),
    GlueTask("sst2", "SST-2", ("negative", "positive"), ("accuracy",), (0,), 1, (1,),
             label_values=("0", "1")),
    GlueTask("mrpc", "MRPC", ("not_equivalent", "equivalent"), ("f1", "accuracy"), (3, 4), 0, (3, 4),
             text_fields=("sentence1", "sentence2"), label_values=("0", "1")),
    GlueTask("qqp", "QQP", ("not_duplicate", "duplicate"), ("f1", "accuracy"), (3, 4), 5, (1, 2),
             text_fields=("question1", "question2"), label_values=("0", "1")),
    GlueTask("stsb", "STS-B", None, ("pearson", "spearmanr"), (7, 8), -1, (7, 8),
             text_fields=("sentence1", "sentence2")),
    GlueTask("mnli", "MNLI", ("entailment", "neutral", "contradiction"), ("accuracy",), (8, 9), -1, (8, 9),
             text_fields=("premise", "hypothesis"), dev_files=("dev_matched.tsv", "dev_mismatched.tsv"),
             test_files=("test_matched.tsv", "test_mismatched.tsv")),
    GlueTask("qnli", "QNLI", ("entailment", "not_entailment"), ("accuracy",), (1, 2), -1, (1, 2),
             text_fields=("question", "sentence")),
    GlueTask("rte", "RTE", ("entailment", "not_entailment"), ("accuracy",), (1, 2), -1, (1, 2),
             text_fields=("sentence1", "sentence2")),
    GlueTask("wnli", "WNLI", ("not_entailment", "entailment"), ("accuracy",), (1, 2), -1, (1, 2),
             text_fields=("sentence1", "sentence2"), label_values=("0", "1")),
)}


def glue_task(name: str, key: str = "task.glue_task") -> GlueTask:
    if name not in TASKS:
        raise ConfigError(f"{key}={name!r}: not a GLUE task; the tasks are {', '.join(TASKS)}")
    return TASKS[name]


class MissingTaskData(ConfigError):
    """The GLUE folder has no files for this task (a GLUE sweep skips the task)."""


def task_folder(data_dir: str | Path, task: GlueTask, key: str = "data.data_dir") -> Path:
    """The task's folder: ``data_dir`` itself when it holds the task's files, else ``data_dir/<Folder>``."""
    root = Path(data_dir).expanduser()
    for folder in (root, root / task.folder):
        if (folder / "train.tsv").is_file() or (folder / task.dev_files[0]).is_file():
            return folder
    raise MissingTaskData(f"{key}={data_dir}: no {task.folder}/train.tsv or {task.folder}/"
                          f"{task.dev_files[0]} there; give the GLUE release's folder (holding "
                          f"{task.folder}/) or the {task.folder} folder itself")


def _rows(path: Path) -> Iterator[tuple[int, list[str]]]:
    """(line number, columns) of a tab-separated file without quoting (GLUE's), byte-order mark dropped."""
    limit = csv.field_size_limit()
    csv.field_size_limit(sys.maxsize)
    try:
        with open_text(path) as handle:
            for number, row in enumerate(csv.reader(handle, delimiter="\t", quoting=csv.QUOTE_NONE), start=1):
                if number == 1 and row:
                    row[0] = row[0].removeprefix("\ufeff")
                yield number, row
    except UnicodeDecodeError as error:
        raise DataError(f"{path}: not UTF-8 ({error.reason}); the GLUE files are UTF-8") from None
    finally:
        csv.field_size_limit(limit)


def read_glue_tsv(path: str | Path, task: GlueTask, test: bool = False) -> list[dict[str, Any]]:
    """Records ``{"index", "text"[, "text_pair"][, "label"]}`` of a GLUE TSV file, in file order; a label is
    its name (a float for STS-B). A row without the task's columns is refused naming ``file:line`` (QQP's
    short rows are skipped, as transformers does)."""
    path = Path(path)
    columns = task.test_columns if test else task.columns
    header = True if test else task.header
    records: list[dict[str, Any]] = []
    for number, row in _rows(path):
        if header and number == 1:
            continue
        if not row or row == [""]:
            continue
        needed = max(columns) + 1
        if not test and task.label_column >= 0:
            needed = max(needed, task.label_column + 1)
        if len(row) < needed:
            if task.name == "qqp":
                continue
            raise DataError(f"{path}:{number}: {len(row)} column(s), a {task.folder} "
                            f"{'test' if test else 'train / dev'} row has at least {needed}; is this the "
                            f"{task.folder} file?")
        record: dict[str, Any] = {"index": len(records)}
        texts = [row[c] for c in columns]
        record["text"] = texts[0]
        if len(texts) > 1:
            record["text_pair"] = texts[1]
        if test:  # a test file's first column is the index the GLUE server expects back
            record["index"] = _index(row[0], len(records))
        if not test:
            record["label"] = parse_label(row[task.label_column], task, f"{path}:{number}")
        records.append(record)
    return records


def _index(value: str, default: int) -> int:
    try:
        return int(value)
    except ValueError:
        return default


def parse_label(value: Any, task: GlueTask, where: str) -> Any:
    """A label as the task's label name (or float score), from a TSV cell or a Hugging Face id / name."""
    if task.is_regression:
        try:
            return float(value)
        except (TypeError, ValueError):
            raise DataError(f"{where}: the {task.folder} score must be a number, got {value!r}") from None
    assert task.labels is not None
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < len(task.labels):
        return task.labels[value]  # a Hugging Face ClassLabel id
    text = str(value).strip()
    if text in task.labels:
        return text
    if task.label_values and text in task.label_values:
        return task.labels[task.label_values.index(text)]
    if text.isdigit() and int(text) < len(task.labels):  # a ClassLabel id written as text (CSV)
        return task.labels[int(text)]
    allowed = ", ".join(task.label_values or task.labels)
    raise DataError(f"{where}: label {value!r} is not one of {task.folder}'s labels ({allowed}); check that "
                    f"the file belongs to {task.folder}")
