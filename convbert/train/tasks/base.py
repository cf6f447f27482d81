"""What a task is to the training loop: the ``Task`` base every built-in and plugin task subclasses.

A task turns records into features (token ids and targets), builds the module the loop optimises, computes a
training loss, evaluates on dev (its main ``metric``) and saves the trained model. The loop (``loop.py``)
knows nothing else about it. A task class is also its registration: its class attributes name the task,
its config schema, the data it reads and how; ``registry.register_task(cls)`` in a module's
``convbert_register_blocks`` hook makes ``convbert-train task=<option>`` train it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import nn

from convbert.checking import require
from convbert.config import ConvBertConfig
from convbert.data import SPLITS, iter_jsonl
from convbert.errors import ConfigError, DataError
from convbert.interop.files import load_state_dict_dir
from convbert.modeling import task_class_for
from convbert.registry import Registry
from convbert.train import metrics
from convbert.train.batching import collate
from convbert.train.records import load_records, user_file
from convbert.train.schema import LabelledDataConfig

Features = list[dict[str, Any]]


@dataclass
class StepContext:
    """Where a batch sits in the run: its optimizer step and its rows' places in the global batch (what
    per-step randomness such as masks is keyed to, so it does not depend on the process that reads it)."""

    seed: int
    step: int  # the optimizer step being computed (0 for the first)
    rows: torch.Tensor  # (B,) the batch's rows' positions in the global batch
    global_rows: int  # examples in the global batch: batch_size x grad_accum_steps x processes


def training_registry() -> Registry:
    """The process-wide registry (blocks, heads and tasks, built-in and installed)."""
    return Registry.default()


class Task:
    """The base: subclasses set the class attributes below and implement ``encode`` (or ``features``) and
    ``evaluate``; ``baseline`` and ``chance_loss`` give the levels a trained model must beat."""

    # -- the registration ---------------------------------------------------------------------------------
    name: ClassVar[str]  # task.name in the config
    config_class: ClassVar[type]  # dataclass: the task node's keys (its `head` node included)
    data_name: ClassVar[str]  # the `name` of the data node it reads (data=<option> selects the node)
    data_class: ClassVar[type] = LabelledDataConfig  # dataclass: the data node's keys
    option: ClassVar[str | None] = None  # the conf/task file selecting it, when not named like the task
    pretraining: ClassVar[bool] = False  # may run as the `pretrain` stage
    # labelled records: the keys each needs, the shipped split loader, a reader for the user's files
    record_fields: ClassVar[tuple[str, ...]] = ()
    load_shipped: ClassVar[Callable[[str], list[dict[str, Any]]] | None] = None
    shipped_splits: ClassVar[tuple[str, ...]] = SPLITS
    metric = "loss"
    greater_is_better = False
    # what ``chance_loss`` is, in the "did not learn" verdict (a regression: "the variance of the training
    # targets, the MSE of predicting their mean")
    chance_level: ClassVar[str] = "the training loss of a model that learned nothing from its inputs"

    @classmethod
    def check_config(cls, config: Any, path: str) -> None:
        """Refuse values of the task node that type-check but cannot work (named by ``path``)."""

    @classmethod
    def check_data(cls, data: Any, path: str) -> None:
        """Refuse values of the data node that type-check but cannot work."""
        require(data.max_length >= 8, f"{path}.max_length", "must be >= 8 tokens")
        for key in ("max_examples", "max_dev_examples"):
            value = getattr(data, key)
            require(value is None or value >= 1, f"{path}.{key}", "must be >= 1 or null")
        for key in ("train_file", "dev_file"):  # a missing file is named before anything runs
            if getattr(data, key, None) is not None:
                user_file(getattr(data, key), f"{path}.{key}")
        for key in ("train_split", "dev_split"):
            if hasattr(data, key):
                value = getattr(data, key)
                require(value in cls.shipped_splits, f"{path}.{key}", f"{value!r} is not a split of the "
                        f"shipped {cls.data_name} data ({', '.join(cls.shipped_splits)})")

    @classmethod
    def read_file(cls, file: Path) -> list[dict[str, Any]]:
        """Records of a user's data file (JSON lines by default), each checked by ``check_record``."""
        records: list[dict[str, Any]] = []
        seen: dict[str, Any] = {}
        for number, record in iter_jsonl(file):
            cls.check_record(record, f"{file}:{number}", seen)
            records.append(record)
        return records

    @classmethod
    def check_record(cls, record: dict[str, Any], where: str, seen: dict[str, Any]) -> None:
        """Refuse a record of a user's file whose fields cannot be used, naming ``file:line`` (``seen``:
        what the file's earlier records established, e.g. the kind of their labels)."""
        missing = [k for k in cls.record_fields if k not in record]
        if missing:
            need = ", ".join(cls.record_fields)
            raise DataError(f"{where}: missing {missing}; {cls.name} records need {need}")

    progress: bool = True  # a task that prepares data may show its progress (trainer.progress)

    def __init__(self, config: Any, tokenizer: Any, path: str = "task") -> None:
        self.config, self.tokenizer, self.path = config, tokenizer, path

    # -- model --------------------------------------------------------------------------------------------
    def head_node(self, composition: dict[str, Any]) -> dict[str, Any]:
        return self.checked_head(dict(self.config.head))

    def checked_head(self, node: dict[str, Any]) -> dict[str, Any]:
        training_registry().parse("head", node, f"{self.path}.head")  # errors name task.head.<key>
        return node

    def check(self, composition: dict[str, Any]) -> None:
        """Refuse a bad head (or generator) before any stage runs, and a model that could not be saved after
        training: the model is built on the meta device (no memory) and its save is checked."""
        self.model_config(composition)
        with torch.device("meta"):
            module = self.build(composition)
        if hasattr(module, "saved_state_dict"):
            module.saved_state_dict()

    def label_names(self) -> list[str] | None:
        """Names for config.json's id2label, when the task knows them."""
        return None

    def model_config(self, composition: dict[str, Any]) -> tuple[ConvBertConfig, dict[str, Any]]:
        """The ConvBertConfig that rebuilds this task's model, head included, from config.json alone.

        ``ConvBertConfig.from_composition`` describes the head: in Hugging Face's flat fields for its task
        heads (num_labels, classifier_dropout, summary_* ...), whole in config.json's composition for any
        other head. A Hugging Face head whose settings the flat fields cannot hold is refused here, so that
        transformers, loading the saved model, builds the same head.
        """
        registry = training_registry()
        head = self.head_node(composition)
        fields = {}
        names = self.label_names()
        if names and len(names) == head.get("num_labels"):
            fields["id2label"] = dict(enumerate(names))
        config = ConvBertConfig.from_composition({**composition, "head": head}, registry, **fields)
        saved = config.saved_head()
        if saved is not None and registry.get("head", head["name"]).from_config is not None:
            _, ours = registry.parse("head", head, f"{self.path}.head")
            _, flat = registry.parse("head", ConvBertConfig(**{**config.to_dict(), "composition": None})
                                     .head_node(head["name"], registry), "config.json")
            differ = [k for k, v in vars(ours).items() if getattr(flat, k) != v]
            raise ConfigError(
                f"{self.path}.head.{differ[0]}={getattr(ours, differ[0])!r} cannot be saved: "
                f"from_pretrained rebuilds this head from config.json, which gives "
                f"{getattr(flat, differ[0])!r} (the model's own setting); leave it at that value"
            )
        return config, head

    def build(self, composition: dict[str, Any]) -> nn.Module:
        """The module the loop trains (wrapped in DistributedDataParallel under torchrun)."""
        config, head = self.model_config(composition)  # describes the model; the composition builds it
        registry = training_registry()
        return task_class_for(head["name"], registry)(config, composition={**composition, "head": head},
                                                      registry=registry)

    def model_class_name(self) -> str:
        """The class that loads the saved model: ``<it>.from_pretrained(<run dir>/model)``."""
        return task_class_for(self.config.head["name"]).__name__

    def load_init(self, module: nn.Module, directory: str | Path) -> None:
        """Start from a checkpoint directory (ours or Hugging Face's): its encoder, and its head when it is a
        checkpoint of this same task class; another head (a pretrained masked LM, ...) is left out."""
        state, source = load_state_dict_dir(directory)
        architectures = ConvBertConfig.from_pretrained(directory).architectures or []
        if architectures == [type(module).__name__] or not hasattr(module, "convbert"):
            module.load_checkpoint_state(state, source)
            return
        encoder = {k.removeprefix("convbert."): v for k, v in state.items() if not k.startswith("head.")}
        module.convbert.load_checkpoint_state(encoder, source)

    def compile_targets(self, module: nn.Module) -> list[nn.Module]:
        """The modules ``trainer.compile=true`` compiles (in place, so state-dict keys do not change)."""
        return [module]

    def save(self, module: nn.Module, directory: Path, tokenizer: Any) -> None:
        """The trained model, loadable with ``ConvBertFor*.from_pretrained(directory)``."""
        module.save_pretrained(directory)
        tokenizer.save_pretrained(directory)

    # -- data ---------------------------------------------------------------------------------------------
    def features(self, data: Any) -> tuple[Features, Features]:
        """(train, dev) features; read before the model is built, so a task can learn its label names."""
        self.data = data
        train = self.encode(load_records(data, "train", self), data.max_length)
        dev = self.encode(load_records(data, "dev", self), data.max_length)
        return train, dev

    def encode(self, records: list[dict[str, Any]], max_length: int) -> Features:
        raise NotImplementedError

    def data_record(self) -> dict[str, Any] | None:
        """What a resumed run needs to read the same data without preparing it again (kept in the stage's
        checkpoint directory), or None."""
        return None

    def reuse(self, record: dict[str, Any]) -> None:
        """Read the data ``data_record`` described (called on resume, before ``features``)."""

    def baseline(self, train: Features, dev: Features) -> dict[str, float]:
        """A trivial predictor's dev score, printed beside the model's."""
        return {}

    def chance_loss(self, train: Features) -> float | None:
        """The training loss of a model that learned nothing from the inputs (None: no such level, as for
        a regression or a pretraining loss); a stage whose loss ends above it did not learn."""
        return None

    # -- steps --------------------------------------------------------------------------------------------
    def training_batch(self, batch: dict[str, torch.Tensor], context: StepContext) -> dict[str, torch.Tensor]:
        """The batch a training step reads, given its place in the run (masked-LM tasks add their masks)."""
        return batch

    def loss_counts(self, batch: dict[str, torch.Tensor]) -> list[torch.Tensor]:
        """What each mean the loss takes is over, in this batch (examples by default; masked tokens for a
        masked LM). Summed over processes and micro-batches, it normalises the loss of the global batch."""
        return [torch.tensor(float(len(batch["input_ids"])))]

    def scaled_loss(self, module: nn.Module, batch: dict[str, torch.Tensor], rng: torch.Generator,
                    factors: list[torch.Tensor]) -> tuple[torch.Tensor, dict]:
        """The batch's share of the global batch's loss: its mean x its count / the global count (x the number
        of processes, whose gradients DistributedDataParallel averages). A task with several means (RTD)
        scales each by its own factor; the logs are scaled alike, so their sums over micro-batches and
        means over processes are the global batch's values."""
        loss, logs = self.loss(module, batch, rng)
        return loss * factors[0], {k: v * float(factors[0]) for k, v in logs.items()}

    def loss(self, module: nn.Module, batch: dict[str, torch.Tensor],
             rng: torch.Generator) -> tuple[torch.Tensor, dict]:
        out = module(**batch)
        return out.loss, {}

    @torch.no_grad()
    def evaluate(self, module: nn.Module, dev: Features, batch_size: int, device: torch.device,
                 autocast: contextlib.AbstractContextManager) -> dict[str, float]:
        raise NotImplementedError

    def batches(self, features: Features, batch_size: int,
                device: torch.device) -> Iterator[tuple[Features, dict]]:
        pad = self.tokenizer.pad_token_id
        for start in range(0, len(features), batch_size):
            chunk = features[start:start + batch_size]
            yield chunk, {k: v.to(device) for k, v in collate(chunk, pad).items()}


class OneLabelPerExample:
    """For tasks whose features carry one class label each (``labels``): the majority-class baseline and the
    label entropy as the chance level of the training loss."""

    chance_level = "the entropy of the training labels"

    def baseline(self, train: Features, dev: Features) -> dict[str, float]:
        return {"majority_accuracy": metrics.majority_accuracy([f["labels"] for f in train],
                                                               [f["labels"] for f in dev])}

    def chance_loss(self, train: Features) -> float | None:
        return metrics.entropy([f["labels"] for f in train])


class LabelNames:
    """Class labels given as integers or as names: names map to ids through ``data.labels`` when set, else
    through the sorted names of the training file; the names become config.json's id2label."""

    names: list[str] | None = None

    @staticmethod
    def check_label(label: Any, where: str, seen: dict[str, Any], names: bool = True) -> None:
        """An int (or, with ``names``, a string), of the same kind as the file's earlier labels."""
        is_id = isinstance(label, int) and not isinstance(label, bool)
        kind = int if is_id else str if isinstance(label, str) and names else None
        if kind is None:
            what = "an integer class id (0, 1, ...)" + (' or a class name ("pos")' if names else "")
            raise DataError(f"{where}: label {label!r} is a {type(label).__name__}; a label is {what}")
        first = seen.setdefault("label_kind", kind)
        if kind is not first:
            kinds = {int: "a number", str: "a name"}
            earlier = {int: "numbers", str: "names"}[first]
            raise DataError(f"{where}: label {label!r} is {kinds[kind]} but the earlier labels are "
                            f"{earlier}; use one kind in a file (names map to ids through data.labels)")

    def label_ids(self, labels: list[Any], path: str) -> list[int]:
        """Integer ids of ``labels``; names are mapped (the first call, on the training data, fixes them)."""
        given = getattr(getattr(self, "data", None), "labels", None)
        if not any(isinstance(x, str) for x in labels):
            if given and self.names is None:
                self.names = list(given)
            return [int(x) for x in labels]
        if self.names is None:
            self.names = list(given) if given else sorted({x for x in labels if isinstance(x, str)})
        index = {name: i for i, name in enumerate(self.names)}
        unknown = sorted({x for x in labels if x not in index}, key=str)
        if unknown:
            raise DataError(f"labels {unknown} are not among the label names {self.names} "
                            f"({'data.labels' if given else 'learned from the training file'}); list every "
                            f"name in order with data.labels=[{','.join(map(str, [*self.names, *unknown]))}]")
        return [index[x] for x in labels]


def check_labels(labels: Sequence[int], num_labels: int, path: str) -> None:
    """Class ids must lie in 0..num_labels-1; the message says which setting fits the data."""
    if labels and min(labels) < 0:
        raise DataError(f"the data has label {min(labels)}; class ids run from 0 to num_labels - 1 (-100, "
                        "'ignore', is for token tags only)")
    if labels and max(labels) >= num_labels:
        raise ConfigError(f"{path}.head.num_labels={num_labels} but the data has labels "
                          f"{min(labels)}..{max(labels)}; set {path}.head.num_labels={max(labels) + 1}")
