"""The GLUE tasks: ``convbert-train task=glue/<name> data.data_dir=GLUE`` fine-tunes on a task of the GLUE
release (its TSV files, ``convbert.data.glue``) or on your own JSON lines with Hugging Face's GLUE columns,
and reports the task's official metric(s): Matthews correlation (CoLA), F1 and accuracy (MRPC, QQP), Pearson
and Spearman correlation (STS-B, a regression), accuracy (the others; MNLI on both of its dev sets).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from convbert.checking import require
from convbert.data.glue import TASKS, GlueTask, glue_task, parse_label, read_glue_tsv, task_folder
from convbert.data.readers import iter_table_records
from convbert.errors import ConfigError, DataError
from convbert.hookspecs import hookimpl
from convbert.train import metrics
from convbert.train.records import subset
from convbert.train.tasks.base import Features, check_labels
from convbert.train.tasks.sequence_classification import SequenceClassification


@dataclass
class GlueConfig:
    name: str = "glue"
    glue_task: str = "sst2"  # cola, sst2, mrpc, qqp, stsb, mnli, qnli, rte, wnli
    head: Any = field(default_factory=lambda: {"name": "sequence_classification"})


@dataclass
class GlueDataConfig:
    name: str = "glue"
    data_dir: str | None = None  # the GLUE release's folder (holding CoLA/, MRPC/ ...) or the task's folder
    train_file: str | None = None  # instead: JSON lines (or a GLUE TSV) with Hugging Face's GLUE columns
    dev_file: str | None = None
    max_length: int = 128
    max_examples: int | None = None
    max_dev_examples: int | None = None
    both_orders: bool = False  # train on every pair in both orders (the release's MRPC, QQP and STS-B recipe)
    glue_task: str | None = None  # the task node's (conf/data/glue.yaml): so a missing folder is found first


def glue_metrics(task: GlueTask, predictions: list[Any], labels: list[Any]) -> dict[str, float]:
    """The task's official metric(s), under GLUE's names."""
    if task.is_regression:
        return {"pearson": metrics.pearson(predictions, labels),
                "spearmanr": metrics.spearman(predictions, labels)}
    result = {"accuracy": metrics.accuracy(predictions, labels)}
    if "f1" in task.metrics:
        result["f1"] = metrics.f1_binary(predictions, labels)
    if "matthews_correlation" in task.metrics:
        result["matthews_correlation"] = metrics.matthews_correlation(predictions, labels)
    return result


class Glue(SequenceClassification):
    """A GLUE task: one text or a sentence pair per example, its official metric as the dev metric."""

    name = "glue"
    config_class = GlueConfig
    data_name = "glue"
    data_class = GlueDataConfig
    option = "glue/sst2"
    load_shipped = None
    greater_is_better = True

    @classmethod
    def check_config(cls, config, path):
        task = glue_task(config.glue_task, f"{path}.glue_task")
        wanted = 1 if task.is_regression else len(task.labels or ())
        got = config.head.get("num_labels")
        require(got == wanted, f"{path}.head.num_labels",
                f"{got} but {task.folder} has {wanted} "
                f"{'output (a regression)' if wanted == 1 else 'labels'}; "
                f"use task=glue/{task.name}, which sets it")

    @classmethod
    def check_data(cls, data, path):
        require(data.max_length >= 8, f"{path}.max_length", "must be >= 8 tokens")
        for key in ("train_file", "dev_file"):  # a file, or a `datasets` directory
            value = getattr(data, key)
            if value is not None and not Path(value).expanduser().exists():
                raise ConfigError(f"{path}.{key}={value!r}: no such file or directory (relative paths are "
                                  f"relative to {Path.cwd()})")
        if data.data_dir is None:
            require(data.train_file is not None and data.dev_file is not None, f"{path}.data_dir",
                    "missing: give the GLUE release's folder (data.data_dir=GLUE), or data.train_file and "
                    "data.dev_file")
        elif data.glue_task in TASKS:  # before anything runs (a GLUE sweep skips a task it lacks)
            task_folder(data.data_dir, TASKS[data.glue_task], f"{path}.data_dir")

    def __init__(self, config: Any, tokenizer: Any, path: str = "task") -> None:
        super().__init__(config, tokenizer, path)
        self.task = TASKS[config.glue_task]
        self.metric = self.task.metrics[0]
        self.extra_dev: dict[str, Features] = {}

    def label_names(self):
        return list(self.task.labels) if self.task.labels else None

    # -- data ---------------------------------------------------------------------------------------------
    def records(self, data: Any, split: str) -> dict[str, list[dict[str, Any]]]:
        """{dev set name: records} of ``split`` ("train" or "dev"; MNLI's dev is matched and mismatched)."""
        file = data.train_file if split == "train" else data.dev_file
        if file is not None:
            return {split: self.read_user_file(Path(file).expanduser())}
        folder = task_folder(data.data_dir, self.task)
        names = ["train.tsv"] if split == "train" else list(self.task.dev_files)
        found = {}
        for name in names:
            path = folder / name
            if not path.is_file():
                raise ConfigError(f"data.data_dir={data.data_dir}: {self.task.folder} has no {name} "
                                  f"({path}); give the GLUE release's folder as downloaded")
            key = split if name in ("train.tsv", "dev.tsv", "dev_matched.tsv") else name.removesuffix(".tsv")
            found[key] = read_glue_tsv(path, self.task)
        return found

    def read_user_file(self, file: Path) -> list[dict[str, Any]]:
        """A GLUE TSV, or Hugging Face's GLUE columns (``sentence1``, ``sentence2``, ``label`` ...) in JSON
        lines, a parquet file or a directory written by ``datasets``' ``save_to_disk``."""
        if ".tsv" in file.suffixes:
            return read_glue_tsv(file, self.task)
        fields = self.task.text_fields
        records = []
        for where, record in iter_table_records(file):
            missing = [k for k in (*fields, "label") if k not in record]
            if missing:
                raise DataError(f"{where}: missing {missing}; {self.task.folder} records have "
                                f"{', '.join((*fields, 'label'))} (Hugging Face's GLUE columns)")
            texts = [record[k] for k in fields]
            if not all(isinstance(t, str) for t in texts):
                raise DataError(f"{where}: {', '.join(fields)} must be strings")
            row = {"index": record.get("idx", len(records)), "text": texts[0],
                   "label": parse_label(record["label"], self.task, where)}
            if len(texts) > 1:
                row["text_pair"] = texts[1]
            records.append(row)
        return records

    def features(self, data: Any) -> tuple[Features, Features]:
        self.data = data
        train = self.records(data, "train")["train"]
        if not train:
            raise DataError(f"{self.task.folder}: no training records; check data.data_dir / data.train_file")
        train = subset(train, data.max_examples)
        if data.both_orders and "text_pair" in train[0]:
            train = train + [{**r, "text": r["text_pair"], "text_pair": r["text"]} for r in train]
        train = self.encode(train, data.max_length)
        dev_sets = {k: self.encode(subset(v, data.max_dev_examples), data.max_length)
                    for k, v in self.records(data, "dev").items()}
        dev = dev_sets.pop("dev")
        self.extra_dev = {k.removeprefix("dev_"): v for k, v in dev_sets.items()}
        self._dev_features = dev
        return train, dev

    def encode(self, records: list[dict[str, Any]], max_length: int) -> Features:
        texts = [r["text"] for r in records]
        if records and "text_pair" in records[0]:
            enc = self.tokenizer(texts, [r["text_pair"] for r in records], truncation="longest_first",
                                 max_length=max_length)
        else:
            enc = self.tokenizer(texts, truncation=True, max_length=max_length, return_token_type_ids=True)
        features = [{"input_ids": ids, "token_type_ids": types, "_index": r["index"]}
                    for ids, types, r in zip(enc["input_ids"], enc["token_type_ids"], records, strict=True)]
        if records and "label" not in records[0]:  # a test set
            return features
        if self.task.is_regression:
            labels: list[Any] = [float(r["label"]) for r in records]
        else:
            index = {name: i for i, name in enumerate(self.task.labels or ())}
            labels = [index[r["label"]] for r in records]
            check_labels(labels, self.config.head["num_labels"], self.path)
        for feature, label in zip(features, labels, strict=True):
            feature["labels"] = label
        return features

    def baseline(self, train, dev):
        return {} if self.task.is_regression else super().baseline(train, dev)

    def chance_loss(self, train):
        return None if self.task.is_regression else super().chance_loss(train)

    # -- evaluation ---------------------------------------------------------------------------------------
    @torch.no_grad()
    def predict(self, module, features: Features, batch_size, device, autocast,
                probabilities: list | None = None) -> tuple[list[Any], float]:
        """(predictions: class ids or scores, mean loss) of a dev or test set; with ``probabilities`` (a
        list), each example's class probabilities are appended to it."""
        predictions: list[Any] = []
        total = 0.0
        for chunk, batch in self.batches(features, batch_size, device):
            with autocast:
                out = module(**batch)
            logits = out.logits.float()
            predictions += logits[:, 0].tolist() if self.task.is_regression else logits.argmax(-1).tolist()
            if probabilities is not None and not self.task.is_regression:
                probabilities += logits.softmax(-1).tolist()
            if out.loss is not None:
                total += float(out.loss) * len(chunk)
        return predictions, total / max(1, len(features))

    @torch.no_grad()
    def evaluate(self, module, dev, batch_size, device, autocast):
        predictions, loss = self.predict(module, dev, batch_size, device, autocast)
        result = {**glue_metrics(self.task, predictions, [f["labels"] for f in dev]), "loss": loss}
        for name, features in self.extra_dev.items():  # MNLI's mismatched dev set
            predictions, loss = self.predict(module, features, batch_size, device, autocast)
            scores = glue_metrics(self.task, predictions, [f["labels"] for f in features])
            result.update({f"{k}_{name}": v for k, v in scores.items()}, **{f"loss_{name}": loss})
        return result


    # -- predictions people can inspect and submit ---------------------------------------------------------
    def save(self, module, directory: Path, tokenizer: Any) -> None:
        """The model, then ``predictions/<split>.jsonl`` for every dev set (and test set, when the task folder
        has one) and the GLUE server's files ``submission/<Task>.tsv`` for the test sets."""
        super().save(module, directory, tokenizer)
        run_dir = directory.parent
        device = next(module.parameters()).device
        module.eval()
        sets = {"dev": self._dev_features, **{f"dev_{k}": v for k, v in self.extra_dev.items()}}
        for name, features in {**sets, **self.test_sets()}.items():
            probabilities: list = []
            predictions, _ = self.predict(module, features, 128, device, torch.autocast(device.type,
                                                                                      enabled=False),
                                          probabilities)
            self.write_predictions(run_dir / "predictions" / f"{name}.jsonl", features, predictions,
                                   probabilities)
            if name.startswith("test"):
                self.write_submission(run_dir / "submission", name, features, predictions)

    def test_sets(self) -> dict[str, Features]:
        """The task folder's test files, encoded (none for user files)."""
        data = getattr(self, "data", None)
        if data is None or data.data_dir is None:
            return {}
        folder = task_folder(data.data_dir, self.task)
        sets = {}
        for file in self.task.test_files:
            if (folder / file).is_file():
                records = read_glue_tsv(folder / file, self.task, test=True)
                sets[file.removesuffix(".tsv")] = self.encode(records, data.max_length)
        diagnostic = Path(data.data_dir).expanduser() / "diagnostic" / "diagnostic.tsv"
        if self.task.name == "mnli" and diagnostic.is_file():  # AX: the MNLI model on the diagnostic set
            records = read_glue_tsv(diagnostic, TASKS["rte"], test=True)  # index, sentence1, sentence2
            sets["test_ax"] = self.encode(records, data.max_length)
        return sets

    def label_of(self, prediction: Any) -> Any:
        return prediction if self.task.is_regression else (self.task.labels or ())[prediction]

    def write_predictions(self, file: Path, features: Features, predictions: list[Any],
                          probabilities: list) -> None:
        """One line per example in file order: index, prediction (label or score), label, probabilities."""
        file.parent.mkdir(parents=True, exist_ok=True)
        with open(file, "w", encoding="utf-8") as handle:
            for i, (feature, prediction) in enumerate(zip(features, predictions, strict=True)):
                line = {"index": feature["_index"], "prediction": self.label_of(prediction)}
                if "labels" in feature:
                    line["label"] = self.label_of(feature["labels"])
                if probabilities:
                    line["probabilities"] = dict(zip(self.task.labels or (), probabilities[i], strict=True))
                handle.write(json.dumps(line) + "\n")

    def write_submission(self, folder: Path, name: str, features: Features, predictions: list[Any]) -> None:
        """``index<TAB>prediction`` under the GLUE server's file name: label names for MNLI, QNLI, RTE and
        AX; 0 / 1 for the other classification tasks; the score for STS-B."""
        task = self.task
        names = {"test_matched": "MNLI-m", "test_mismatched": "MNLI-mm", "test_ax": "AX"}
        file = names.get(name, task.folder)
        folder.mkdir(parents=True, exist_ok=True)
        with open(folder / f"{file}.tsv", "w", encoding="utf-8") as handle:
            handle.write("index\tprediction\n")
            for feature, prediction in zip(features, predictions, strict=True):
                if task.is_regression:
                    value = f"{prediction:.4f}"
                elif task.label_values:
                    value = task.label_values[prediction]
                else:
                    value = self.label_of(prediction)
                handle.write(f"{feature['_index']}\t{value}\n")


@hookimpl
def convbert_register_blocks(registry) -> None:
    registry.register_task(Glue)
