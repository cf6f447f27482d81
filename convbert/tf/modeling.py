"""TFConvBertModel and TFConvBertFor*: Hugging Face's (removed) TensorFlow API over Keras 3 layers.

The same config, checkpoint directories, inputs, outputs and losses as the PyTorch classes. For Keras's
``fit``, compile without a loss: the model's own loss is used, from ``labels`` (``start_positions`` and
``end_positions`` for question answering) in the input dict, or from ``y``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from convbert.config import ConvBertConfig
from convbert.errors import InputError, NotExpressibleError
from convbert.interop import hf_keys
from convbert.interop.files import SAFE_WEIGHTS
from convbert.interop.hub import pop_hub_kwargs, resolve_pretrained
from convbert.tf import checkpoint, export, weights
from convbert.tf.backend import keras, ops, tf
from convbert.tf.encoder import EncoderOutput, TFConvBertEncoder
from convbert.tf.heads import HEADS
from convbert.tf.outputs import (
    TFBaseModelOutput,
    TFMaskedLMOutput,
    TFMultipleChoiceModelOutput,
    TFQuestionAnsweringModelOutput,
    TFSequenceClassifierOutput,
    TFTokenClassifierOutput,
)

INPUT_NAMES = ("input_ids", "attention_mask", "token_type_ids", "position_ids", "inputs_embeds")


def require_standard(config: ConvBertConfig) -> None:
    """convbert.tf implements Hugging Face's ConvBERT composition only; say so for any other."""
    if not config.hf_compatible:
        raise NotExpressibleError(
            "convbert.tf implements the standard ConvBERT composition (mixed self-attention + span-based "
            "dynamic convolution, dense or grouped FFN: the fields head_ratio, conv_kernel_size, num_groups, "
            "embedding_size, conv_mask_padding), but this config names a custom `composition` of registry "
            "blocks. Use the PyTorch classes (convbert.ConvBertModel ...) for it."
        )


class TFConvBertPreTrainedModel(keras.Model):
    """Construction from a config, Hugging Face checkpoints both ways, Keras fit and SavedModel export."""

    head_name: str | None = None
    label_names: tuple[str, ...] = ("labels",)

    def __init__(self, config: ConvBertConfig | None = None, **kwargs: Any) -> None:
        name = kwargs.pop("name", None) or re.sub(r"(?<!^)(?=[A-Z][a-z])", "_", type(self).__name__).lower()
        super().__init__(name=name, **kwargs)
        config = config if config is not None else ConvBertConfig()
        require_standard(config)
        self.config = config
        self.convbert = TFConvBertEncoder(config, name="convbert")
        self.head = HEADS[self.head_name](config, name="head") if self.head_name else None
        self.build()  # every variable exists from here on: from_pretrained assigns into them

    def build(self, input_shape=None) -> None:
        self.convbert.build(None)
        if self.head is not None:
            self.head.build(None)

    def get_config(self) -> dict[str, Any]:
        return {"name": self.name, "config": self.config.to_dict()}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> TFConvBertPreTrainedModel:
        return cls(ConvBertConfig.from_dict(config["config"]), name=config.get("name"))

    # -- checkpoints -----------------------------------------------------------------------------
    def hf_weights(self) -> weights.WeightMap:
        """Every variable under its Hugging Face checkpoint name (``convbert.`` prefix in task models)."""
        prefix = hf_keys.PREFIX if self.head is not None else ""
        out = weights.prefixed(prefix, self.convbert.hf_weights())
        if self.head is not None:
            out.update(self.head.hf_weights())
        return out

    @classmethod
    def from_pretrained(
        cls, pretrained_model_name_or_path: str | os.PathLike, config: ConvBertConfig | None = None,
        **kwargs: Any,
    ) -> TFConvBertPreTrainedModel:
        """Load a checkpoint directory written by the PyTorch classes (ours or transformers') or by these, or
        a Hugging Face Hub id such as ``"org/name"`` (its config.json and safetensors weights are fetched;
        ``revision``, ``cache_dir``, ``local_files_only``, ``token``, ``force_download``, ``subfolder`` as
        in the PyTorch classes).

        A task class loaded from a base-model checkpoint gets a freshly initialised head (as Hugging Face).
        """
        hub_kwargs = pop_hub_kwargs(kwargs)
        if config is None:
            config = ConvBertConfig.from_pretrained(pretrained_model_name_or_path, **hub_kwargs, **kwargs)
        path = resolve_pretrained(pretrained_model_name_or_path, for_what="tf_model", **hub_kwargs)
        model = cls(config)
        checkpoint.load_into(model.hf_weights(), checkpoint.read_state(path), cls.head_name, path)
        return model

    def save_pretrained(self, save_directory: str | os.PathLike) -> None:
        """Write config.json + model.safetensors in Hugging Face's names and PyTorch layouts (atomically):
        ``convbert.ConvBertFor*`` and ``transformers.ConvBertFor*`` load the directory."""
        path = Path(save_directory)
        self.config.architectures = [type(self).__name__[2:]]  # the PyTorch class, as Hugging Face's TF did
        self.config.save_pretrained(path)
        checkpoint.save(self.hf_weights(), path / SAFE_WEIGHTS)

    def export(self, filepath: str | os.PathLike, format: str = "tf_saved_model", verbose: bool | None = None,
               input_signature: Any = None, **kwargs: Any) -> None:
        """Write a SavedModel whose ``serve`` endpoint takes a dict of int32 ``input_ids``, ``attention_mask``
        and ``token_type_ids`` and returns a dict of the outputs (no loss, hidden states, attentions)."""
        if format != "tf_saved_model" or input_signature is not None or kwargs:
            raise InputError("convbert.tf exports format='tf_saved_model' with its own input signature only")
        export.export_saved_model(self, filepath, verbose=bool(verbose))

    def serving_signature(self) -> dict[str, tf.TensorSpec]:
        shape = (None, None, None) if self.head_name == "multiple_choice" else (None, None)
        return {name: tf.TensorSpec(shape, tf.int32, name=name)
                for name in ("input_ids", "attention_mask", "token_type_ids")}

    # -- inputs and outputs ------------------------------------------------------------------------
    def _gather(self, input_ids: Any, **named: Any) -> dict[str, Any]:
        """Hugging Face's TF convention: the first argument may be a dict of all inputs (fit, tokenizers)."""
        if not isinstance(input_ids, Mapping):
            return {"input_ids": input_ids, **named}
        for key in input_ids:
            if key != "input_ids" and key not in named:
                accepted = ", ".join(("input_ids", *named))
                raise InputError(f"unknown input {key!r}; {type(self).__name__} takes {accepted}")
            if key != "input_ids" and named[key] is not None:
                raise InputError(f"{key} was passed twice: in the input dict and as an argument")
        return {**named, **input_ids, "input_ids": input_ids.get("input_ids")}

    def _encode(self, inputs: dict[str, Any], output_attentions: bool | None,
                output_hidden_states: bool | None, training: bool | None, rank: int = 2) -> EncoderOutput:
        _check_inputs(inputs, rank)
        if rank == 3:  # (batch, choices, length) -> (batch * choices, length)
            inputs = {k: None if inputs[k] is None else _flatten(inputs[k], 2 if k == "inputs_embeds" else 1)
                      for k in INPUT_NAMES}
        return self.convbert(
            input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"],
            token_type_ids=inputs["token_type_ids"], position_ids=inputs["position_ids"],
            inputs_embeds=inputs["inputs_embeds"],
            output_attentions=_default(output_attentions, self.config.output_attentions),
            output_hidden_states=_default(output_hidden_states, self.config.output_hidden_states),
            training=bool(training),
        )

    def _finish(self, out, encoded: EncoderOutput, return_dict: bool | None):
        out.hidden_states = encoded.hidden_states
        out.attentions = encoded.attentions
        return out if _default(return_dict, self.config.return_dict) else out.to_tuple()

    # -- Keras training --------------------------------------------------------------------------
    def hf_compute_loss(self, labels: Any, outputs: Any):
        """The model's loss from labels given apart from the inputs (Keras's ``y``)."""
        if self.head is None:
            raise InputError(f"{type(self).__name__} has no task head and no loss; train a TFConvBertFor*")
        return self.head.loss(outputs["logits"], labels)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        """Keras's hook: the model's own loss, unless ``compile`` was given one (that one sees the logits)."""
        if self.loss is not None:
            return super().compute_loss(x, y, _prediction(y_pred), sample_weight, training=training)
        if y_pred.get("loss") is not None:
            return y_pred["loss"]
        if y is None:
            raise InputError(
                f"{type(self).__name__} needs labels to train: put {' and '.join(self.label_names)} in the "
                "input dict, pass them as y, or compile with a loss"
            )
        return self.hf_compute_loss(y, y_pred)

    def compute_metrics(self, x, y, y_pred, sample_weight=None):
        if y is None and isinstance(x, Mapping) and len(self.label_names) == 1:
            y = x.get(self.label_names[0])
        return super().compute_metrics(x, y, _prediction(y_pred), sample_weight=sample_weight)

    def predict_step(self, data):
        """A plain dict of the outputs, which Keras's ``predict`` concatenates over batches."""
        x, _, _ = keras.utils.unpack_x_y_sample_weight(data)
        return {k: v for k, v in self(x, training=False, return_dict=True).items() if k != "loss"}


@keras.saving.register_keras_serializable(package="convbert")
class TFConvBertModel(TFConvBertPreTrainedModel):
    """The encoder: ``last_hidden_state`` (B, L, H), and per-layer ``hidden_states`` / ``attentions``."""

    label_names = ()

    def call(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None,
             inputs_embeds=None, output_attentions=None, output_hidden_states=None, return_dict=None,
             training=False):
        inputs = self._gather(input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids,
                              position_ids=position_ids, inputs_embeds=inputs_embeds)
        encoded = self._encode(inputs, output_attentions, output_hidden_states, training)
        out = TFBaseModelOutput(last_hidden_state=encoded.last_hidden_state)
        return self._finish(out, encoded, return_dict)


@keras.saving.register_keras_serializable(package="convbert")
class TFConvBertForMaskedLM(TFConvBertPreTrainedModel):
    """Masked-LM logits (B, L, V); labels -100 are ignored."""

    head_name = "masked_lm"

    def call(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None,
             inputs_embeds=None, labels=None, output_attentions=None, output_hidden_states=None,
             return_dict=None, training=False):
        inputs = self._gather(input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids,
                              position_ids=position_ids, inputs_embeds=inputs_embeds, labels=labels)
        encoded = self._encode(inputs, output_attentions, output_hidden_states, training)
        word_embeddings = self.convbert.embeddings.word_embeddings  # the tied decoder
        logits = self.head(encoded.last_hidden_state, word_embeddings=word_embeddings)
        loss = None if inputs["labels"] is None else self.head.loss(logits, inputs["labels"])
        return self._finish(TFMaskedLMOutput(loss=loss, logits=logits), encoded, return_dict)


@keras.saving.register_keras_serializable(package="convbert")
class TFConvBertForSequenceClassification(TFConvBertPreTrainedModel):
    """Logits (B, num_labels) from the first token; regression, single- or multi-label loss (problem_type)."""

    head_name = "sequence_classification"

    def call(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None,
             inputs_embeds=None, labels=None, output_attentions=None, output_hidden_states=None,
             return_dict=None, training=False):
        inputs = self._gather(input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids,
                              position_ids=position_ids, inputs_embeds=inputs_embeds, labels=labels)
        encoded = self._encode(inputs, output_attentions, output_hidden_states, training)
        logits = self.head(encoded.last_hidden_state, training=bool(training))
        labels = inputs["labels"]
        loss = None if labels is None else self.hf_compute_loss(labels, {"logits": logits})
        return self._finish(TFSequenceClassifierOutput(loss=loss, logits=logits), encoded, return_dict)

    def hf_compute_loss(self, labels: Any, outputs: Any):
        loss = self.head.loss(outputs["logits"], labels)
        self.config.problem_type = self.head.problem_type  # Hugging Face records the inferred problem type
        return loss


@keras.saving.register_keras_serializable(package="convbert")
class TFConvBertForTokenClassification(TFConvBertPreTrainedModel):
    """Logits (B, L, num_labels); labels -100 (padding, sub-word pieces) are ignored."""

    head_name = "token_classification"

    def call(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None,
             inputs_embeds=None, labels=None, output_attentions=None, output_hidden_states=None,
             return_dict=None, training=False):
        inputs = self._gather(input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids,
                              position_ids=position_ids, inputs_embeds=inputs_embeds, labels=labels)
        encoded = self._encode(inputs, output_attentions, output_hidden_states, training)
        logits = self.head(encoded.last_hidden_state, training=bool(training))
        loss = None if inputs["labels"] is None else self.head.loss(logits, inputs["labels"])
        return self._finish(TFTokenClassifierOutput(loss=loss, logits=logits), encoded, return_dict)


@keras.saving.register_keras_serializable(package="convbert")
class TFConvBertForQuestionAnswering(TFConvBertPreTrainedModel):
    """Start and end logits (B, L); positions outside the input are ignored in the loss."""

    head_name = "question_answering"
    label_names = ("start_positions", "end_positions")

    def call(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None,
             inputs_embeds=None, start_positions=None, end_positions=None, output_attentions=None,
             output_hidden_states=None, return_dict=None, training=False):
        inputs = self._gather(input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids,
                              position_ids=position_ids, inputs_embeds=inputs_embeds,
                              start_positions=start_positions, end_positions=end_positions)
        encoded = self._encode(inputs, output_attentions, output_hidden_states, training)
        start_logits, end_logits = self.head(encoded.last_hidden_state)
        loss = None
        start, end = inputs["start_positions"], inputs["end_positions"]
        if start is not None and end is not None:
            loss = self.head.loss(start_logits, end_logits, start, end)
        out = TFQuestionAnsweringModelOutput(loss=loss, start_logits=start_logits, end_logits=end_logits)
        return self._finish(out, encoded, return_dict)

    def hf_compute_loss(self, labels: Any, outputs: Any):
        """``labels``: a dict with start_positions and end_positions, or the pair (start, end)."""
        if isinstance(labels, Mapping):
            labels = labels["start_positions"], labels["end_positions"]
        start, end = labels
        return self.head.loss(outputs["start_logits"], outputs["end_logits"], start, end)


@keras.saving.register_keras_serializable(package="convbert")
class TFConvBertForMultipleChoice(TFConvBertPreTrainedModel):
    """Inputs (B, C, L) -> choice logits (B, C); hidden states and attentions are per (B * C) sequence."""

    head_name = "multiple_choice"

    def call(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None,
             inputs_embeds=None, labels=None, output_attentions=None, output_hidden_states=None,
             return_dict=None, training=False):
        inputs = self._gather(input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids,
                              position_ids=position_ids, inputs_embeds=inputs_embeds, labels=labels)
        source = inputs["input_ids"] if inputs["input_ids"] is not None else inputs["inputs_embeds"]
        if source is None or len(source.shape) < 3:
            raise InputError(
                "TFConvBertForMultipleChoice takes input_ids of shape (batch, num_choices, length) (or "
                f"inputs_embeds with a hidden axis); got {None if source is None else tuple(source.shape)}"
            )
        num_choices = source.shape[1] if source.shape[1] is not None else ops.shape(source)[1]
        encoded = self._encode(inputs, output_attentions, output_hidden_states, training, rank=3)
        logits = self.head(encoded.last_hidden_state, num_choices=num_choices, training=bool(training))
        loss = None if inputs["labels"] is None else self.head.loss(logits, inputs["labels"])
        return self._finish(TFMultipleChoiceModelOutput(loss=loss, logits=logits), encoded, return_dict)


# -- helpers ----------------------------------------------------------------------------------------
def _default(value: bool | None, fallback: bool) -> bool:
    return fallback if value is None else bool(value)


def _prediction(y_pred: Any):
    """What a compiled Keras loss or metric sees: the logits (the pair of them for question answering)."""
    if "start_logits" in y_pred:
        return y_pred["start_logits"], y_pred["end_logits"]
    return y_pred["logits"] if "logits" in y_pred else y_pred["last_hidden_state"]


def _flatten(t, keep: int):
    t = ops.convert_to_tensor(t)
    return ops.reshape(t, (-1, *[ops.shape(t)[i] for i in range(len(t.shape) - keep, len(t.shape))]))


def _check_inputs(inputs: dict[str, Any], rank: int) -> None:
    """Shapes checked up front, so that a mistake reads as a sentence, not as an error deep in TensorFlow."""
    input_ids, inputs_embeds = inputs["input_ids"], inputs["inputs_embeds"]
    if (input_ids is None) == (inputs_embeds is None):
        raise InputError("pass exactly one of input_ids or inputs_embeds")
    if input_ids is not None:
        if len(input_ids.shape) != rank:
            axes = "batch, num_choices, length" if rank == 3 else "batch, length"
            raise InputError(f"input_ids must have {rank} axes ({axes}), got shape {tuple(input_ids.shape)}")
        if "float" in keras.backend.standardize_dtype(input_ids.dtype):
            raise InputError(f"input_ids must hold integer token ids, got dtype {input_ids.dtype}")
        shape = tuple(input_ids.shape)
    else:
        if len(inputs_embeds.shape) != rank + 1:
            raise InputError(f"inputs_embeds must have {rank + 1} axes (..., length, embedding_size), "
                             f"got {tuple(inputs_embeds.shape)}")
        shape = tuple(inputs_embeds.shape[:-1])
    for name in ("attention_mask", "token_type_ids", "position_ids"):
        t = inputs[name]
        if t is None:
            continue
        got = tuple(t.shape)
        if name == "position_ids" and len(got) == rank and got[0] == 1:
            continue
        known = [(a, b) for a, b in zip(got, shape, strict=False) if a is not None and b is not None]
        if len(got) != len(shape) or any(a != b for a, b in known):
            raise InputError(f"{name} has shape {got} but the input is {shape}: one {name} entry per token")
