"""Inference pipelines with transformers' names, arguments and result formats.

    from convbert.pipelines import pipeline
    fill = pipeline("fill-mask", model="path/to/checkpoint")
    fill("Paris is the [MASK] of France.", top_k=3)

Tasks: fill-mask, text-classification (alias sentiment-analysis), token-classification (alias ner),
question-answering, feature-extraction. ``model`` is a checkpoint (whatever ``ConvBertFor*.from_pretrained``
accepts) or a model instance; the tokenizer (ConvBertTokenizerFast) loads from the same place unless given.
transformers is never imported: same checkpoint, same inputs -> the results of ``transformers.pipeline``.
"""

from __future__ import annotations

import os
from typing import Any

from convbert.config import ConvBertConfig
from convbert.errors import CheckpointError, ConfigError
from convbert.modeling import ConvBertModel, ConvBertPreTrainedModel
from convbert.pipelines.base import Pipeline, PipelineInputError, closest
from convbert.pipelines.feature_extraction import FeatureExtractionPipeline
from convbert.pipelines.fill_mask import FillMaskPipeline
from convbert.pipelines.question_answering import QuestionAnsweringPipeline
from convbert.pipelines.text_classification import TextClassificationPipeline
from convbert.pipelines.token_classification import TokenClassificationPipeline
from convbert.tokenization import TokenizerBase
from convbert.tokenization_fast import ConvBertTokenizerFast

PIPELINES: tuple[type[Pipeline], ...] = (
    FillMaskPipeline,
    TextClassificationPipeline,
    TokenClassificationPipeline,
    QuestionAnsweringPipeline,
    FeatureExtractionPipeline,
)
TASKS: dict[str, type[Pipeline]] = {cls.task: cls for cls in PIPELINES}
ALIASES: dict[str, str] = {alias: cls.task for cls in PIPELINES for alias in cls.aliases}

__all__ = [
    "ALIASES", "TASKS", "FeatureExtractionPipeline", "FillMaskPipeline", "Pipeline", "PipelineInputError",
    "QuestionAnsweringPipeline", "TextClassificationPipeline", "TokenClassificationPipeline", "pipeline",
    "pipeline_class", "supported_tasks", "task_for_architecture", "task_of_checkpoint",
]


def supported_tasks() -> list[str]:
    """Every task name ``pipeline`` accepts, aliases included."""
    return sorted([*TASKS, *ALIASES])


def pipeline_class(task: str) -> type[Pipeline]:
    """The pipeline class of ``task`` (or of an alias); an unknown name lists the supported ones."""
    if not isinstance(task, str) or (task not in TASKS and task not in ALIASES):
        names = supported_tasks()
        listed = ", ".join(closest(task, names) if isinstance(task, str) else names)
        raise ConfigError(f"unknown task {task!r}; the supported tasks are: {listed}")
    return TASKS[ALIASES.get(task, task)]


def task_for_architecture(architecture: str) -> str:
    """The task of a checkpoint saved from ``architecture`` (config.json's ``architectures[0]``)."""
    for cls in PIPELINES:
        if cls.model_class.__name__ == architecture:
            return cls.task
    known = ", ".join(f"{cls.model_class.__name__} -> {cls.task}" for cls in PIPELINES)
    raise ConfigError(f"no pipeline for a {architecture} checkpoint (pipelines read {known}); pick the task "
                      "yourself (feature-extraction reads any ConvBERT checkpoint's encoder)")


def task_of_checkpoint(model: str | os.PathLike | ConvBertPreTrainedModel) -> str:
    """The task a checkpoint (or a model instance) was saved for, from its config's ``architectures``."""
    if isinstance(model, ConvBertPreTrainedModel):
        return task_for_architecture(type(model).__name__)
    architectures = ConvBertConfig.from_pretrained(model).architectures or []
    if not architectures:
        raise ConfigError(f"cannot tell the task of {str(model)!r}: its config.json names no architectures; "
                          f"choose one of: {', '.join(supported_tasks())}")
    return task_for_architecture(architectures[0])


def pipeline(
    task: str | None = None,
    model: str | os.PathLike | ConvBertPreTrainedModel | None = None,
    tokenizer: str | os.PathLike | TokenizerBase | None = None,
    device: int | str | Any | None = None,
    **kwargs: Any,
) -> Pipeline:
    """A pipeline for ``task`` (None: the task the checkpoint was saved for) on ``model``.

    ``tokenizer`` defaults to the checkpoint's own (ConvBertTokenizerFast); ``device`` as transformers (-1 or
    "cpu", a CUDA index, "cuda:1", a torch.device; None keeps the model where it is). Other keyword arguments
    (``batch_size``, ``top_k``, ``aggregation_strategy`` ...) become the defaults of every call.
    """
    if model is None:
        raise ConfigError("pipeline needs model=...: a checkpoint directory written by save_pretrained "
                          "(or anything ConvBertFor*.from_pretrained accepts) or a model instance; convbert "
                          "ships no default model")
    if task is None:
        task = task_of_checkpoint(model)
    cls = pipeline_class(task)
    loaded = load_model(cls, model)
    return cls(loaded, load_tokenizer(cls, tokenizer, model), device=device, **kwargs)


def load_model(cls: type[Pipeline], model: Any) -> ConvBertPreTrainedModel:
    """``model`` as the class ``cls`` needs: a checkpoint is loaded as that class, an instance is checked."""
    needed = cls.model_class
    if isinstance(model, ConvBertPreTrainedModel):
        if needed is ConvBertModel:
            return model.base_model
        if not isinstance(model, needed) and getattr(model, "head_name", None) != needed.head_name:
            raise ConfigError(f"{cls.task} needs a {needed.__name__}, got a {type(model).__name__}; load or "
                              f"fine-tune a {needed.__name__} (or pick the task this model was made for)")
        return model
    if not isinstance(model, (str, os.PathLike)):
        raise ConfigError("model must be a checkpoint (a directory or a Hub id) or a ConvBERT model "
                          f"instance, got {type(model).__name__}")
    if needed is not ConvBertModel:
        saved_as = (ConvBertConfig.from_pretrained(model).architectures or [None])[0]
        known = {c.model_class.__name__ for c in PIPELINES} | {"ConvBertForMultipleChoice"}
        if saved_as in known and saved_as != needed.__name__:
            raise ConfigError(
                f"{str(model)!r} is a {saved_as} checkpoint (architectures in its config.json) but "
                f"{cls.task} needs a {needed.__name__}: use a checkpoint trained for {cls.task}, or the task "
                "this one was trained for; to try a freshly initialised head anyway, pass "
                f"model={needed.__name__}.from_pretrained(...)"
            )
    return needed.from_pretrained(model)


def load_tokenizer(cls: type[Pipeline], tokenizer: Any, model: Any) -> TokenizerBase:
    """The given tokenizer, or ConvBertTokenizerFast from where the model came from."""
    if isinstance(tokenizer, TokenizerBase):
        if cls.needs_offsets and not isinstance(tokenizer, ConvBertTokenizerFast):
            raise ConfigError(f"{cls.task} maps tokens back to characters, which needs "
                              f"ConvBertTokenizerFast; got {type(tokenizer).__name__}")
        return tokenizer
    source = tokenizer
    if source is None:
        source = model.name_or_path if isinstance(model, ConvBertPreTrainedModel) else model
        if not source:
            raise ConfigError("this model instance does not say where it was loaded from: pass tokenizer=... "
                              "(a directory with the tokenizer's files, or ConvBertTokenizerFast())")
    try:
        return ConvBertTokenizerFast.from_pretrained(source)
    except FileNotFoundError as exc:
        shipped = "ConvBertTokenizerFast() (the shipped bert-base-uncased vocabulary)"
        raise CheckpointError(f"no tokenizer at {str(source)!r} ({exc}); save the tokenizer with the model "
                              f"(tokenizer.save_pretrained(dir)) or pass tokenizer=..., e.g. {shipped} if "
                              "the model was trained with it") from None

