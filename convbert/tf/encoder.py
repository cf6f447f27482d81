"""The encoder: embeddings, then post-norm layers (mixed attention and an FFN, each with a residual)."""

from __future__ import annotations

from dataclasses import dataclass

from convbert.config import ConvBertConfig
from convbert.tf import weights
from convbert.tf.backend import keras, ops, tf
from convbert.tf.embeddings import TFConvBertEmbeddings
from convbert.tf.feed_forward import TFFeedForward
from convbert.tf.mixed_attention import TFMixedAttention


class TFConvBertLayer(keras.layers.Layer):
    """(B, L, H) -> (B, L, H): BERT's post-norm layer with ConvBERT's mixed attention as the token mixer."""

    def __init__(self, config: ConvBertConfig, **kwargs) -> None:
        super().__init__(**kwargs)
        self.hidden_size = config.hidden_size
        init = keras.initializers.RandomNormal(stddev=config.initializer_range)
        self.mixer = TFMixedAttention(config, name="mixer")
        self.mixer_out = keras.layers.Dense(config.hidden_size, kernel_initializer=init, name="mixer_out")
        self.mixer_norm = keras.layers.LayerNormalization(epsilon=config.layer_norm_eps, name="mixer_norm")
        self.ffn = TFFeedForward(config, name="ffn")
        self.ffn_norm = keras.layers.LayerNormalization(epsilon=config.layer_norm_eps, name="ffn_norm")
        self.dropout = keras.layers.Dropout(config.hidden_dropout_prob)

    def build(self, input_shape=None) -> None:
        hidden = (None, None, self.hidden_size)
        self.mixer.build(hidden)
        self.mixer_out.build((None, None, 2 * self.mixer.width))
        for layer in (self.mixer_norm, self.ffn, self.ffn_norm):
            layer.build(hidden)

    def call(self, hidden, keep=None, additive=None, output_attentions: bool = False, training=False):
        mixed, probs = self.mixer(hidden, keep=keep, additive=additive, output_attentions=output_attentions,
                                  training=training)
        hidden = self.mixer_norm(hidden + self.dropout(self.mixer_out(mixed), training=training))
        hidden = self.ffn_norm(hidden + self.dropout(self.ffn(hidden), training=training))
        return hidden, probs

    def hf_weights(self) -> weights.WeightMap:
        return {
            **weights.prefixed("attention.self.", self.mixer.hf_weights()),
            **weights.dense("attention.output.dense", self.mixer_out),
            **weights.norm("attention.output.LayerNorm", self.mixer_norm),
            **self.ffn.hf_weights(),
            **weights.norm("output.LayerNorm", self.ffn_norm),
        }


@dataclass
class EncoderOutput:
    last_hidden_state: object
    hidden_states: tuple | None
    attentions: tuple | None


class TFConvBertEncoder(keras.layers.Layer):
    """Embeddings, then ``num_hidden_layers`` layers; collects hidden states and attentions when asked."""

    def __init__(self, config: ConvBertConfig, **kwargs) -> None:
        super().__init__(**kwargs)
        self.embeddings = TFConvBertEmbeddings(config, name="embeddings")
        self.encoder_layers = [
            TFConvBertLayer(config, name=f"layer_{i}") for i in range(config.num_hidden_layers)
        ]

    def build(self, input_shape=None) -> None:
        self.embeddings.build(None)
        for layer in self.encoder_layers:
            layer.build(None)

    def call(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None,
             inputs_embeds=None, output_attentions: bool = False, output_hidden_states: bool = False,
             training: bool = False) -> EncoderOutput:
        hidden = self.embeddings(input_ids=input_ids, token_type_ids=token_type_ids,
                                 position_ids=position_ids, inputs_embeds=inputs_embeds, training=training)
        keep = additive = None
        if attention_mask is not None:
            keep = ops.cast(attention_mask, hidden.dtype)
            # Hugging Face's additive mask: the dtype's minimum, so a fully padded row stays finite
            additive = (1.0 - keep)[:, None, None, :] * tf.as_dtype(hidden.dtype).min
        all_hidden = [hidden] if output_hidden_states else None
        all_attentions = [] if output_attentions else None
        for layer in self.encoder_layers:
            hidden, probs = layer(hidden, keep=keep, additive=additive, output_attentions=output_attentions,
                                  training=training)
            if all_hidden is not None:
                all_hidden.append(hidden)
            if all_attentions is not None:
                all_attentions.append(probs)
        return EncoderOutput(hidden, tuple(all_hidden) if all_hidden is not None else None,
                             tuple(all_attentions) if all_attentions is not None else None)

    def hf_weights(self) -> weights.WeightMap:
        out = dict(self.embeddings.hf_weights())
        for i, layer in enumerate(self.encoder_layers):
            out.update(weights.prefixed(f"encoder.layer.{i}.", layer.hf_weights()))
        return out
