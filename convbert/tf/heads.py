"""The five task heads of Hugging Face's ConvBERT classes, in Keras; each one knows its loss.

Head settings come from ``ConvBertConfig.head_node`` (the same node the PyTorch classes build from), so a
config means the same head on both frameworks.
"""

from __future__ import annotations

from convbert.config import ConvBertConfig
from convbert.errors import ConfigError
from convbert.heads.classification import SequenceClassificationParams
from convbert.heads.multiple_choice import SUMMARY_TYPES, MultipleChoiceParams
from convbert.tf import losses, weights
from convbert.tf.activations import get_activation
from convbert.tf.backend import keras, ops


def _dense(units: int, config: ConvBertConfig, name: str) -> keras.layers.Dense:
    init = keras.initializers.RandomNormal(stddev=config.initializer_range)
    return keras.layers.Dense(units, kernel_initializer=init, name=name)


def _dropout(config: ConvBertConfig) -> keras.layers.Dropout:
    p = config.classifier_dropout if config.classifier_dropout is not None else config.hidden_dropout_prob
    return keras.layers.Dropout(p)


class TFMaskedLMHead(keras.layers.Layer):
    """(B, L, H) -> (B, L, V): dense to E, GELU, LayerNorm, decoder (by default the word embeddings)."""

    def __init__(self, config: ConvBertConfig, **kwargs) -> None:
        super().__init__(**kwargs)
        self.hidden_size, self.embedding_size = config.hidden_size, config.embedding_size
        self.vocab_size = config.vocab_size
        self.tie_word_embeddings = bool(config.tie_word_embeddings)
        self.dense = _dense(config.embedding_size, config, "dense")
        self.act = get_activation("gelu")  # Hugging Face's generator head uses GELU whatever hidden_act says
        self.norm = keras.layers.LayerNormalization(epsilon=config.layer_norm_eps, name="LayerNorm")
        self.decoder = None if self.tie_word_embeddings else _dense(config.vocab_size, config, "decoder")

    def build(self, input_shape=None) -> None:
        self.dense.build((None, None, self.hidden_size))
        self.norm.build((None, None, self.embedding_size))
        if self.decoder is not None:
            self.decoder.build((None, None, self.embedding_size))
            self.decoder_bias = self.decoder.bias
        else:
            self.decoder_bias = self.add_weight(shape=(self.vocab_size,), initializer="zeros", name="bias")

    def call(self, sequence_output, word_embeddings=None):
        x = self.norm(self.act(self.dense(sequence_output)))
        if self.decoder is not None:
            return self.decoder(x)
        return ops.matmul(x, ops.transpose(word_embeddings)) + self.decoder_bias

    def loss(self, logits, labels):
        return losses.cross_entropy(ops.reshape(logits, (-1, self.vocab_size)), ops.reshape(labels, (-1,)))

    def hf_weights(self) -> weights.WeightMap:
        out = {**weights.dense("generator_predictions.dense", self.dense),
               **weights.norm("generator_predictions.LayerNorm", self.norm)}
        if self.decoder is not None:
            out.update(weights.dense("generator_lm_head", self.decoder))
        else:
            out["generator_lm_head.bias"] = (self.decoder_bias, weights.SAME)
        return out


class TFSequenceClassificationHead(keras.layers.Layer):
    """The first token's state -> dropout, dense, activation, dropout, projection to num_labels."""

    def __init__(self, config: ConvBertConfig, **kwargs) -> None:
        super().__init__(**kwargs)
        node = config.head_node("sequence_classification")
        params = SequenceClassificationParams(**{k: v for k, v in node.items() if k != "name"})
        if params.problem_type is not None and params.problem_type not in losses.PROBLEM_TYPES:
            raise ConfigError(f"problem_type {params.problem_type!r} is not one of {losses.PROBLEM_TYPES}")
        self.hidden_size, self.num_labels = config.hidden_size, params.num_labels
        self.problem_type = params.problem_type
        self.dropout = keras.layers.Dropout(params.dropout)
        self.dense = _dense(config.hidden_size, config, "dense")
        self.act = get_activation(params.activation)
        self.out_proj = _dense(params.num_labels, config, "out_proj")

    def build(self, input_shape=None) -> None:
        self.dense.build((None, self.hidden_size))
        self.out_proj.build((None, self.hidden_size))

    def call(self, sequence_output, training=False):
        x = self.dropout(sequence_output[:, 0], training=training)
        return self.out_proj(self.dropout(self.act(self.dense(x)), training=training))

    def loss(self, logits, labels):
        if self.problem_type is None:  # Hugging Face infers it once and records it in the config
            self.problem_type = losses.infer_problem_type(self.num_labels, labels)
        return losses.sequence_classification_loss(logits, labels, self.problem_type)

    def hf_weights(self) -> weights.WeightMap:
        return {**weights.dense("classifier.dense", self.dense),
                **weights.dense("classifier.out_proj", self.out_proj)}


class TFTokenClassificationHead(keras.layers.Layer):
    """Every token's state -> dropout -> num_labels logits; labels -100 are ignored."""

    def __init__(self, config: ConvBertConfig, **kwargs) -> None:
        super().__init__(**kwargs)
        self.hidden_size, self.num_labels = config.hidden_size, config.num_labels
        self.dropout = _dropout(config)
        self.classifier = _dense(config.num_labels, config, "classifier")

    def build(self, input_shape=None) -> None:
        self.classifier.build((None, None, self.hidden_size))

    def call(self, sequence_output, training=False):
        return self.classifier(self.dropout(sequence_output, training=training))

    def loss(self, logits, labels):
        return losses.cross_entropy(ops.reshape(logits, (-1, self.num_labels)), ops.reshape(labels, (-1,)))

    def hf_weights(self) -> weights.WeightMap:
        return weights.dense("classifier", self.classifier)


class TFQuestionAnsweringHead(keras.layers.Layer):
    """Start and end logits per token; needs num_labels == 2 as Hugging Face's class."""

    def __init__(self, config: ConvBertConfig, **kwargs) -> None:
        super().__init__(**kwargs)
        if config.num_labels != 2:
            raise ConfigError(f"question answering needs num_labels=2 (start, end), got {config.num_labels}")
        self.hidden_size = config.hidden_size
        self.qa_outputs = _dense(2, config, "qa_outputs")

    def build(self, input_shape=None) -> None:
        self.qa_outputs.build((None, None, self.hidden_size))

    def call(self, sequence_output):
        logits = self.qa_outputs(sequence_output)
        return logits[..., 0], logits[..., 1]

    def loss(self, start_logits, end_logits, start_positions, end_positions):
        return losses.span_loss(start_logits, end_logits, start_positions, end_positions)

    def hf_weights(self) -> weights.WeightMap:
        return weights.dense("qa_outputs", self.qa_outputs)


class TFMultipleChoiceHead(keras.layers.Layer):
    """(B * C, L, H) -> (B, C): Hugging Face's sequence summary (the LAST position by default), a score."""

    def __init__(self, config: ConvBertConfig, **kwargs) -> None:
        super().__init__(**kwargs)
        node = config.head_node("multiple_choice")
        params = MultipleChoiceParams(**{k: v for k, v in node.items() if k != "name"})
        if params.summary_type not in SUMMARY_TYPES:
            raise ConfigError(f"summary_type {params.summary_type!r} is not one of {SUMMARY_TYPES}")
        self.hidden_size = config.hidden_size
        self.summary_type = params.summary_type
        self.summary_size = config.hidden_size
        self.summary = None
        if params.summary_use_proj:
            to_labels = params.summary_proj_to_labels and params.num_labels > 0
            self.summary_size = params.num_labels if to_labels else config.hidden_size
            self.summary = _dense(self.summary_size, config, "summary")
        self.activation = get_activation(params.summary_activation) if params.summary_activation else None
        self.first_dropout = keras.layers.Dropout(params.summary_first_dropout)
        self.last_dropout = keras.layers.Dropout(params.summary_last_dropout)
        self.classifier = _dense(1, config, "classifier")

    def build(self, input_shape=None) -> None:
        if self.summary is not None:
            self.summary.build((None, self.hidden_size))
        self.classifier.build((None, self.summary_size))

    def call(self, sequence_output, num_choices: int = 1, training=False):
        if self.summary_type == "last":
            pooled = sequence_output[:, -1]
        elif self.summary_type == "first":
            pooled = sequence_output[:, 0]
        else:
            pooled = ops.mean(sequence_output, axis=1)
        pooled = self.first_dropout(pooled, training=training)
        if self.summary is not None:
            pooled = self.summary(pooled)
        if self.activation is not None:
            pooled = self.activation(pooled)
        pooled = self.last_dropout(pooled, training=training)
        return ops.reshape(self.classifier(pooled), (-1, num_choices))

    def loss(self, logits, labels):
        return losses.cross_entropy(logits, ops.reshape(labels, (-1,)))

    def hf_weights(self) -> weights.WeightMap:
        out = weights.dense("classifier", self.classifier)
        if self.summary is not None:
            out.update(weights.dense("sequence_summary.summary", self.summary))
        return out


HEADS: dict[str, type[keras.layers.Layer]] = {
    "masked_lm": TFMaskedLMHead,
    "sequence_classification": TFSequenceClassificationHead,
    "token_classification": TFTokenClassificationHead,
    "question_answering": TFQuestionAnsweringHead,
    "multiple_choice": TFMultipleChoiceHead,
}
