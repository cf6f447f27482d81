"""What a task is to the training loop, and the fine-tuning tasks on the shipped data.

A task turns records into features (token ids and targets), builds the module the loop optimises, computes a
training loss, evaluates on dev (its main ``metric``) and saves the trained model. The loop (``loop.py``)
knows nothing else about it. Pretraining tasks live in ``mlm.py`` and ``rtd.py``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from convbert.config import ConvBertConfig
from convbert.data import SENTIMENT_LABELS, TOKEN_LABELS
from convbert.errors import ConfigError
from convbert.interop.files import load_state_dict_dir
from convbert.labels import IGNORE_INDEX
from convbert.modeling import HEAD_CLASSES
from convbert.registry import Registry
from convbert.train import metrics
from convbert.train.batching import collate
from convbert.train.datasets import load_records

Features = list[dict[str, Any]]
# Head parameter -> the config.json field from which from_pretrained rebuilds it, per head.
SUMMARY_KEYS = ("summary_type", "summary_use_proj", "summary_proj_to_labels", "summary_activation",
                "summary_first_dropout", "summary_last_dropout")
HEAD_FIELDS: dict[str, dict[str, str]] = {
    "masked_lm": {"tie_word_embeddings": "tie_word_embeddings"},
    "sequence_classification": {"num_labels": "num_labels", "dropout": "classifier_dropout",
                                "problem_type": "problem_type"},
    "token_classification": {"num_labels": "num_labels", "dropout": "classifier_dropout"},
    "question_answering": {"num_labels": "num_labels"},
    "multiple_choice": {"num_labels": "num_labels", **{k: k for k in SUMMARY_KEYS}},
}


def training_registry() -> Registry:
    """The process-wide registry, with the replaced-token detection head added if the built-ins lack it."""
    registry = Registry.default()
    if "replaced_token_detection" not in registry.specs["head"]:
        from convbert.heads import replaced_token_detection

        registry.register_plugin(replaced_token_detection, replaced_token_detection.__name__,
                                 distribution="convbert")
    return registry


class Task:
    """The base: subclasses set ``metric`` and implement ``encode`` (or ``features``) and ``evaluate``."""

    metric = "loss"
    greater_is_better = False

    def __init__(self, config: Any, tokenizer: Any, path: str = "task") -> None:
        self.config, self.tokenizer, self.path = config, tokenizer, path

    # -- model --------------------------------------------------------------------------------------------
    def head_node(self, composition: dict[str, Any]) -> dict[str, Any]:
        return self.checked_head(dict(self.config.head))

    def checked_head(self, node: dict[str, Any]) -> dict[str, Any]:
        training_registry().parse("head", node, f"{self.path}.head")  # errors name task.head.<key>
        return node

    def check(self, composition: dict[str, Any]) -> None:
        """Refuse a bad head (or generator) before any stage runs; builds nothing."""
        self.model_config(composition)

    def label_names(self) -> list[str] | None:
        """Names for config.json's id2label, when the task knows them."""
        return None

    def model_config(self, composition: dict[str, Any]) -> tuple[ConvBertConfig, dict[str, Any]]:
        """The ConvBertConfig that rebuilds this task's model, head included, from config.json alone.

        ``from_pretrained`` rebuilds the head from the flat fields (num_labels, classifier_dropout, summary_*
        ...), so the task's head node is written into them, and refused if they cannot express it.
        """
        registry = training_registry()
        head = self.head_node(composition)
        name = head["name"]
        fields = {HEAD_FIELDS[name][k]: v for k, v in head.items() if k in HEAD_FIELDS.get(name, {})}
        names = self.label_names()
        if names and len(names) == head.get("num_labels"):
            fields["id2label"] = dict(enumerate(names))
        config = ConvBertConfig.from_composition(composition, **fields)
        if name in HEAD_FIELDS:
            _, ours = registry.parse("head", head, f"{self.path}.head")
            _, saved = registry.parse("head", config.head_node(name), "config.json")
            differ = [k for k, v in vars(ours).items() if getattr(saved, k) != v]
            if differ:
                raise ConfigError(
                    f"{self.path}.head.{differ[0]}={getattr(ours, differ[0])!r} cannot be saved: "
                    f"from_pretrained rebuilds this head from config.json, which gives "
                    f"{getattr(saved, differ[0])!r} (the model's own setting); leave it at that value"
                )
        return config, head

    def build(self, composition: dict[str, Any]) -> nn.Module:
        """The module the loop trains (wrapped in DistributedDataParallel under torchrun)."""
        config, head = self.model_config(composition)
        return HEAD_CLASSES[head["name"]](config, composition=composition, registry=training_registry())

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
        train = self.encode(load_records(data, "train"), data.max_length)
        dev = self.encode(load_records(data, "dev"), data.max_length)
        return train, dev

    def encode(self, records: list[dict[str, Any]], max_length: int) -> Features:
        raise NotImplementedError

    def baseline(self, train: Features, dev: Features) -> dict[str, float]:
        """A trivial predictor's dev score, printed beside the model's."""
        return {}

    def chance_loss(self, train: Features) -> float | None:
        """The training loss of a model that learned nothing from the inputs (None: no such level, as for
        a regression or a pretraining loss); a stage whose loss ends above it did not learn."""
        return None

    # -- steps --------------------------------------------------------------------------------------------
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


def _check_labels(labels: Sequence[int], num_labels: int, path: str) -> None:
    if labels and (min(labels) < 0 or max(labels) >= num_labels):
        raise ConfigError(f"{path}.head.num_labels={num_labels} but the data has labels "
                          f"{min(labels)}..{max(labels)}; set {path}.head.num_labels={max(labels) + 1}")


class SequenceClassification(Task):
    """One label per text (sentiment): the [CLS] state through the classification head. Metric: accuracy."""

    metric = "accuracy"
    greater_is_better = True

    def label_names(self):
        return list(SENTIMENT_LABELS)

    def encode(self, records, max_length):
        _check_labels([r["label"] for r in records], self.config.head["num_labels"], self.path)
        enc = self.tokenizer([r["text"] for r in records], truncation=True, max_length=max_length)
        return [{"input_ids": ids, "labels": int(record["label"])}
                for ids, record in zip(enc["input_ids"], records, strict=True)]

    def baseline(self, train, dev):
        return {"majority_accuracy": metrics.majority_accuracy([f["labels"] for f in train],
                                                               [f["labels"] for f in dev])}

    def chance_loss(self, train):
        return metrics.entropy([f["labels"] for f in train])

    @torch.no_grad()
    def evaluate(self, module, dev, batch_size, device, autocast):
        predictions, total = [], 0.0
        for chunk, batch in self.batches(dev, batch_size, device):
            with autocast:
                out = module(**batch)
            predictions += out.logits.argmax(-1).tolist()
            total += float(out.loss) * len(chunk)
        labels = [f["labels"] for f in dev]
        return {"accuracy": metrics.accuracy(predictions, labels), "loss": total / max(1, len(dev))}


class TokenClassification(Task):
    """A tag per word: the word's first piece carries it (all pieces with ``label_all_subwords``).
    Metric: entity F1 over exact BIO spans."""

    metric = "f1"
    greater_is_better = True

    def label_names(self):
        """TOKEN_LABELS for the shipped data; for other label sets label 0 is O and each other an entity."""
        n = self.config.head["num_labels"]
        return list(TOKEN_LABELS) if n == len(TOKEN_LABELS) else [f"B-L{i}" if i else "O" for i in range(n)]

    def encode(self, records, max_length):
        _check_labels([x for r in records for x in r["labels"]], self.config.head["num_labels"], self.path)
        enc = self.tokenizer([r["tokens"] for r in records], is_split_into_words=True, truncation=True,
                             max_length=max_length)
        features = []
        for n, record in enumerate(records):
            word_ids = enc.word_ids(n)
            labels, previous = [], None
            for word in word_ids:
                first = word is not None and word != previous
                keep = word is not None and (first or self.config.label_all_subwords)
                labels.append(record["labels"][word] if keep else IGNORE_INDEX)
                previous = word
            features.append({"input_ids": enc["input_ids"][n], "labels": labels, "_word_ids": word_ids,
                             "_gold": record["labels"]})
        return features

    def baseline(self, train, dev):
        gold = [x for f in dev for x in f["_gold"]]
        majority = metrics.majority_accuracy([x for f in train for x in f["_gold"]], gold)
        return {"majority_token_accuracy": majority}  # its entity F1 is 0: the majority tag is O

    def chance_loss(self, train):
        return metrics.entropy([x for f in train for x in f["labels"] if x != IGNORE_INDEX])

    @torch.no_grad()
    def evaluate(self, module, dev, batch_size, device, autocast):
        names = self.label_names()
        gold_tags, pred_tags, correct, count = [], [], 0, 0
        for chunk, batch in self.batches(dev, batch_size, device):
            with autocast:
                logits = module(**batch).logits
            best = logits.argmax(-1).tolist()
            for feature, row in zip(chunk, best, strict=True):
                words = [0] * len(feature["_gold"])  # words cut off by truncation are predicted "O"
                seen = set()
                for position, word in enumerate(feature["_word_ids"]):
                    if word is not None and word not in seen:
                        seen.add(word)
                        words[word] = row[position]
                correct += sum(int(p == g) for p, g in zip(words, feature["_gold"], strict=True))
                count += len(words)
                gold_tags.append([names[i] for i in feature["_gold"]])
                pred_tags.append([names[i] for i in words])
        scores = metrics.entity_f1(gold_tags, pred_tags)
        return {**scores, "token_accuracy": correct / max(1, count)}


class QuestionAnswering(Task):
    """Extractive QA: start and end logits over the context's tokens (question first). A context longer than
    the window is read in overlapping windows (``doc_stride`` tokens shared by neighbours, as Hugging Face's
    run_qa): each window is a training feature (a window without the answer points at [CLS]), and a dev
    question's answer is the best-scoring span over all its windows. Metrics: SQuAD exact match and F1 of the
    best span (at most ``max_answer_length`` tokens)."""

    metric = "f1"
    greater_is_better = True

    def encode(self, records, max_length):
        self._check_windows(max_length)
        questions = self._clip_questions([r["question"] for r in records])
        stride = self.config.doc_stride
        windows = {"truncation": "only_second", "return_overflowing_tokens": True, "stride": stride}
        if stride is None:  # one window per question: the longer text is cut
            windows = {"truncation": "longest_first"}
        try:
            enc = self.tokenizer(questions, [r["context"] for r in records],
                                 max_length=max_length, return_offsets_mapping=True, **windows)
        except ValueError as exc:  # a question that leaves no room for the context's windows
            raise ConfigError(f"{self.path}: {exc} (raise data.max_length, lower {self.path}.doc_stride or "
                              f"{self.path}.max_question_length, or set {self.path}.doc_stride=null to "
                              "truncate instead)") from None
        example_of = enc["overflow_to_sample_mapping"] if stride is not None else range(len(records))
        features = []
        for n, example in enumerate(example_of):
            record = records[example]
            sequence = enc.sequence_ids(n)
            offsets = [tuple(o) if s == 1 else None
                       for o, s in zip(enc["offset_mapping"][n], sequence, strict=True)]
            start_char = record["answers"]["answer_start"][0] if record["answers"]["answer_start"] else -1
            end_char = start_char + len(record["answers"]["text"][0]) if start_char >= 0 else -1
            start = end = 0  # [CLS]: the answer is not in this window of the context
            inside = [i for i, o in enumerate(offsets)
                      if o is not None and o[0] < end_char and o[1] > start_char]
            if inside and offsets[inside[0]][0] <= start_char and offsets[inside[-1]][1] >= end_char:
                start, end = inside[0], inside[-1]
            features.append({"input_ids": enc["input_ids"][n], "token_type_ids": enc["token_type_ids"][n],
                             "start_positions": start, "end_positions": end, "_offsets": offsets,
                             "_example": int(example), "_context": record["context"],
                             "_answers": list(record["answers"]["text"])})
        return features

    def _check_windows(self, max_length: int) -> None:
        """Refuse settings where the longest allowed question would leave a window no new context tokens,
        before any data is read (else the first such question would stop the run)."""
        stride, limit = self.config.doc_stride, self.config.max_question_length
        if limit is not None and limit < 1:
            raise ConfigError(f"{self.path}.max_question_length={limit}: must be at least 1, or null")
        if stride is not None and stride < 0:
            raise ConfigError(f"{self.path}.doc_stride={stride}: must be 0 or more, or null to truncate")
        if stride is not None and limit is not None and max_length - 3 - limit <= stride:
            raise ConfigError(
                f"{self.path}.doc_stride={stride} with {self.path}.max_question_length={limit} and "
                f"data.max_length={max_length}: a window holds max_length - 3 - max_question_length = "
                f"{max_length - 3 - limit} context tokens, which must exceed the stride; raise "
                f"data.max_length, or lower {self.path}.doc_stride or {self.path}.max_question_length")

    def _clip_questions(self, questions: list[str]) -> list[str]:
        """Questions cut to their first ``max_question_length`` tokens, so a long one leaves the context room
        (the original SQuAD scripts' max_query_length)."""
        limit = self.config.max_question_length
        if limit is None:
            return questions
        enc = self.tokenizer(questions, add_special_tokens=False, truncation=True, max_length=limit,
                             return_offsets_mapping=True)
        return [question[:offsets[-1][1]] if len(offsets) == limit else question
                for question, offsets in zip(questions, enc["offset_mapping"], strict=True)]

    def loss(self, module, batch, rng):
        return module(**batch).loss, {}

    @torch.no_grad()
    def evaluate(self, module, dev, batch_size, device, autocast):
        best: dict[int, tuple[float, str]] = {}  # example -> (score, text) of its best span over its windows
        answers: dict[int, list[str]] = {}
        for chunk, batch in self.batches(dev, batch_size, device):
            batch = {k: v for k, v in batch.items() if k not in ("start_positions", "end_positions")}
            with autocast:
                out = module(**batch)
            logits = zip(chunk, out.start_logits.float(), out.end_logits.float(), strict=True)
            for feature, starts, ends in logits:
                example = feature["_example"]
                answers[example] = feature["_answers"]
                span = self._best_span(feature, starts, ends)
                if example not in best or span[0] > best[example][0]:
                    best[example] = span
        order = sorted(answers)
        return metrics.squad([best[e][1] for e in order], [answers[e] for e in order])

    def _best_span(self, feature, starts: torch.Tensor, ends: torch.Tensor) -> tuple[float, str]:
        """The highest start + end logit over the window's context spans, and that span's text."""
        offsets = feature["_offsets"]
        context = [i for i, o in enumerate(offsets) if o is not None]
        if not context:
            return float("-inf"), ""
        idx = torch.tensor(context)
        s, e = starts[idx], ends[idx]
        scores = s[:, None] + e[None, :]  # (start, end) over context tokens
        n = len(context)
        valid = torch.ones(n, n, dtype=torch.bool).triu() & ~torch.ones(n, n, dtype=torch.bool).triu(
            self.config.max_answer_length)
        scores = scores.masked_fill(~valid, float("-inf"))
        best = int(scores.argmax())
        i, j = context[best // n], context[best % n]
        return float(scores.flatten()[best]), feature["_context"][offsets[i][0]:offsets[j][1]]


class MultipleChoice(Task):
    """Pick one of C continuations: each (context, choice) pair is scored, softmax over the choices.
    Metric: accuracy."""

    metric = "accuracy"
    greater_is_better = True

    def encode(self, records, max_length):
        _check_labels([r["label"] for r in records], self.config.head["num_labels"], self.path)
        features = []
        for record in records:
            choices = list(record["choices"])
            enc = self.tokenizer([record["context"]] * len(choices), choices, truncation="longest_first",
                                 max_length=max_length)
            features.append({"input_ids": enc["input_ids"], "token_type_ids": enc["token_type_ids"],
                             "labels": int(record["label"])})
        sizes = {len(f["input_ids"]) for f in features}
        if len(sizes) > 1:
            raise ConfigError(f"multiple choice records have different numbers of choices {sorted(sizes)}; "
                              "every record needs the same number (it is the head's num_labels)")
        return features

    def baseline(self, train, dev):
        return {"majority_accuracy": metrics.majority_accuracy([f["labels"] for f in train],
                                                               [f["labels"] for f in dev])}

    def chance_loss(self, train):
        return metrics.entropy([f["labels"] for f in train])

    @torch.no_grad()
    def evaluate(self, module, dev, batch_size, device, autocast):
        predictions = []
        for _, batch in self.batches(dev, max(1, batch_size // 4), device):
            with autocast:
                out = module(**batch)
            predictions += out.logits.argmax(-1).tolist()
        return {"accuracy": metrics.accuracy(predictions, [f["labels"] for f in dev])}


def make_task(config: Any, tokenizer: Any, path: str = "task") -> Task:
    """The Task for a validated task node (``schema.TASK_SCHEMAS``)."""
    if config.name == "pretrain_mlm":
        from convbert.train.mlm import MaskedLanguageModeling

        return MaskedLanguageModeling(config, tokenizer, path)
    if config.name == "pretrain_rtd":
        from convbert.train.rtd import ReplacedTokenDetectionTask

        return ReplacedTokenDetectionTask(config, tokenizer, path)
    classes = {"sequence_classification": SequenceClassification, "token_classification": TokenClassification,
               "question_answering": QuestionAnswering, "multiple_choice": MultipleChoice}
    return classes[config.name](config, tokenizer, path)
