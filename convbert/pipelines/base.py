"""What every pipeline shares: the model and tokenizer, parameters, batching, and the model call.

A pipeline turns each input into one or more *features* (one row of token ids; a long question-answering
context gives several windows), runs the features through the model ``batch_size`` at a time, and turns each
input's feature outputs back into Hugging Face's result format. Features of consecutive inputs share batches
and are padded (on the tokenizer's ``padding_side``) to the longest in the batch, exactly as transformers'
pipelines collate them: ConvBERT's convolution sees padding (unless ``conv_mask_padding``), so this is what
keeps the numbers identical to ``transformers.pipeline`` at every ``batch_size``.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch

from convbert.errors import ConfigError, InputError
from convbert.modeling import ConvBertPreTrainedModel


class PipelineInputError(InputError):
    """One input of a call cannot be processed; ``index`` is its position in the call's list (the predict
    command turns it into file:line)."""

    def __init__(self, index: int, message: str) -> None:
        super().__init__(f"input {index}: {message}")
        self.index = index
        self.reason = message


@dataclass
class Feature:
    """One model row: ``inputs`` (input_ids, token_type_ids, attention_mask as lists) and what the task's
    postprocessing needs about it (offsets, masks, the tokenizer's encoding ...)."""

    inputs: dict[str, list[int]]
    meta: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.inputs["input_ids"])


@dataclass
class Prepared:
    """One input, ready for the model: its features and the input itself (for postprocessing)."""

    item: Any
    features: list[Feature]


def resolve_device(device: int | str | torch.device | None, model: torch.nn.Module) -> torch.device:
    """Hugging Face's ``device`` argument: -1 or "cpu" for the CPU, an int for that CUDA device, a string or
    ``torch.device`` as is; None keeps the model where it is."""
    if device is None:
        try:
            return next(model.parameters()).device
        except StopIteration:
            return torch.device("cpu")
    if isinstance(device, bool):
        raise ConfigError(f"device must be an int, a string or a torch.device, got {device!r}")
    if isinstance(device, int):
        resolved = torch.device("cpu") if device < 0 else torch.device("cuda", device)
    else:
        try:
            resolved = torch.device(device)
        except (RuntimeError, TypeError) as exc:
            raise ConfigError(f"device {device!r} is not a device torch knows (e.g. 'cpu', 'cuda', 'cuda:1', "
                              f"0, -1): {exc}") from None
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {device!r} asks for CUDA, which this torch cannot use here (no GPU or a "
                          "CPU-only build); leave device unset or pass 'cpu'")
    return resolved


def closest(name: str, choices: Sequence[str]) -> list[str]:
    """``choices`` with the ones closest to ``name`` first."""
    near = difflib.get_close_matches(name, choices, n=len(choices), cutoff=0.0)
    return near + [c for c in choices if c not in near]


class Pipeline:
    """Base class: subclasses set ``task`` and ``model_class`` and write ``sanitize``, ``preprocess`` and
    ``postprocess`` (and ``__call__`` when Hugging Face shapes that task's results specially).

    ``parameters`` given at construction are defaults for every call; a call's own keyword arguments override
    them. ``predict(inputs)`` always returns one result per input (the predict command uses it); ``__call__``
    returns what transformers' pipeline of the same task returns for the same arguments.
    """

    task: ClassVar[str]
    aliases: ClassVar[tuple[str, ...]] = ()
    model_class: ClassVar[type[ConvBertPreTrainedModel]]
    needs_offsets: ClassVar[bool] = False  # word alignment: ConvBertTokenizerFast only
    output_names: ClassVar[tuple[str, ...]] = ("logits",)

    def __init__(
        self,
        model: ConvBertPreTrainedModel,
        tokenizer: Any,
        device: int | str | torch.device | None = None,
        batch_size: int = 1,
        **parameters: Any,
    ) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.device = resolve_device(device, model)
        if self.device != resolve_device(None, model):
            self.model.to(self.device)
        self.model.eval()
        self.batch_size = check_batch_size(batch_size)
        self._defaults = dict(parameters)
        self.sanitize(dict(parameters))  # a bad default fails now, not at the first call

    def __repr__(self) -> str:
        return f"{type(self).__name__}(task={self.task!r}, model={type(self.model).__name__})"

    # -- what subclasses write -------------------------------------------------------------------------------
    def sanitize(self, params: dict[str, Any]) -> dict[str, Any]:
        """Check the call's parameters and fill in the defaults; unknown names are an InputError."""
        return self.reject_unknown(params, {})

    def preprocess(self, index: int, item: Any, params: dict[str, Any]) -> list[Feature]:
        raise NotImplementedError

    def postprocess(self, prepared: Prepared, outputs: list[dict[str, torch.Tensor]], params: dict[str, Any]):
        raise NotImplementedError

    # -- running -------------------------------------------------------------------------------------------
    def __call__(self, inputs: Any, **kwargs: Any) -> Any:
        if isinstance(inputs, (list, tuple)):
            return self.predict(list(inputs), **kwargs)
        return self.predict([inputs], **kwargs)[0]

    def predict(self, inputs: Sequence[Any], batch_size: int | None = None, **kwargs: Any) -> list[Any]:
        """One result per input, in order, whatever the number of inputs."""
        params = self.parameters(**kwargs)
        return self.run(self.prepare(inputs, params), params, batch_size)

    def parameters(self, **kwargs: Any) -> dict[str, Any]:
        """The construction defaults overridden by ``kwargs``, checked and completed."""
        return self.sanitize({**self._defaults, **kwargs})

    def prepare(self, inputs: Sequence[Any], params: dict[str, Any]) -> list[Prepared]:
        """Tokenize every input (cheap), so that a bad one fails before the model has run on any."""
        return [Prepared(item, self.preprocess(index, item, params)) for index, item in enumerate(inputs)]

    def run(self, prepared: list[Prepared], params: dict[str, Any],
            batch_size: int | None = None) -> list[Any]:
        """The model on every feature, ``batch_size`` rows at a time, then each input's result."""
        size = self.batch_size if batch_size is None else check_batch_size(batch_size)
        rows = [(i, feature) for i, p in enumerate(prepared) for feature in p.features]
        outputs: list[list[dict[str, torch.Tensor]]] = [[] for _ in prepared]
        for start in range(0, len(rows), size):
            chunk = rows[start:start + size]
            for (i, _), out in zip(chunk, self.forward([f for _, f in chunk]), strict=True):
                outputs[i].append(out)
        return [self.postprocess(p, out, params) for p, out in zip(prepared, outputs, strict=True)]

    def forward(self, features: list[Feature]) -> list[dict[str, torch.Tensor]]:
        """The model on one batch of features; per feature, its (padded) row of each output and of the model
        inputs, on the CPU."""
        batch = self.collate(features)
        with torch.inference_mode():
            out = self.model(**{k: v.to(self.device) for k, v in batch.items()}, return_dict=True)
        results = []
        for row in range(len(features)):
            values = {name: out[name][row].cpu() for name in self.output_names}
            values.update({name: tensor[row] for name, tensor in batch.items()})
            results.append(values)
        return results

    def collate(self, features: list[Feature]) -> dict[str, torch.Tensor]:
        """Pad the rows to the longest, on the tokenizer's padding side, as transformers' pipelines do: input
        ids with the pad id, the rest with 0."""
        longest = max(len(f) for f in features)
        pad_values = {"input_ids": self.tokenizer.pad_token_id}
        side = self.tokenizer.padding_side
        batch = {}
        for key in features[0].inputs:
            value = pad_values.get(key, 0)
            batch[key] = torch.tensor([pad(f.inputs[key], longest, value, side) for f in features],
                                      dtype=torch.long)
        return batch

    # -- helpers for subclasses ----------------------------------------------------------------------------
    def max_positions(self) -> int:
        return int(getattr(self.model.config, "max_position_embeddings", 512))

    def check_length(self, index: int, ids: list[int], fix: str) -> None:
        """A row longer than the model's position table is the user's to fix (e.g. truncation)."""
        limit = self.max_positions()
        if len(ids) > limit:
            raise PipelineInputError(index, f"it is {len(ids)} tokens long but the model reads at most "
                                            f"{limit} (max_position_embeddings); {fix}")

    def encode(self, index: int, *args: Any, **kwargs: Any) -> Any:
        """The tokenizer, with its refusals (bad types, impossible truncation) as this input's InputError."""
        try:
            return self.tokenizer(*args, **kwargs)
        except (TypeError, ValueError) as exc:
            if isinstance(exc, InputError):
                raise
            raise PipelineInputError(index, str(exc)) from None

    def reject_unknown(self, params: dict[str, Any], known: dict[str, Any]) -> dict[str, Any]:
        """``known`` (name -> default) completed from ``params``; any other name is an InputError."""
        unknown = [name for name in params if name not in known]
        if unknown:
            listed = ", ".join(closest(unknown[0], list(known))) or "none"
            raise InputError(f"{self.task} does not take {', '.join(map(repr, unknown))}; its parameters "
                             f"are: {listed} (and batch_size)")
        return {**known, **params}


def pad(values: list, length: int, value: Any, side: str) -> list:
    """``values`` padded with ``value`` to ``length`` on ``side`` ("right" or "left")."""
    filler = [value] * (length - len(values))
    return filler + list(values) if side == "left" else list(values) + filler


def check_batch_size(batch_size: Any) -> int:
    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
        raise ConfigError(f"batch_size must be a positive int, got {batch_size!r}")
    return batch_size


def check_positive(name: str, value: Any, allow_none: bool = False) -> None:
    if value is None and allow_none:
        return
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise InputError(f"{name} must be a positive int{' or None' if allow_none else ''}, got {value!r}")
